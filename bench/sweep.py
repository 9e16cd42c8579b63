"""Wall time of a 64-point RF sweep (`neurolysis sweep`) on a Dask LocalCluster of 2 worker
processes, against the same points run serially in this process (the ratio and the mean per
point). The default lumbar RF plan (18 G, 10 mm tip), varied 4 x 4 x 4 over the set temperature,
the lesion time and the needle offset. Results: bench/results/sweep.json and docs/benchmarks.md.

    OPENBLAS_NUM_THREADS=1 python bench/sweep.py [--points N] [--workers 2]

The full run takes about 11 min serial + 6 min on the cluster on the idle 2-core machine;
``--points 4`` is a quick check.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402

from neurolysis.about import __version__  # noqa: E402
from neurolysis.planning.plan import new_plan, plan_toml  # noqa: E402
from neurolysis.sweep import load_sweep  # noqa: E402
from neurolysis.sweep.results import without_timings  # noqa: E402
from neurolysis.sweep.run import run_sweep, simulate_point  # noqa: E402

OUT = Path(__file__).parent / "results" / "sweep.json"
SWEEP = """base = "rf.toml"
[vary]
"procedure.set_temp_c" = [70, 75, 80, 85]
"procedure.time_s" = [60, 90, 120, 150]
"placement.offset_mm" = [[0, 0, 0], [1, 0, 0], [0, -1, 0], [0, 0, -1]]
"""


def _load() -> str:
    """The 1, 5 and 15 min load averages (other processes sharing the 2 cores show here)."""
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=64, help="run only the first N of the 64 points (a quick check)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, NumPy {np.__version__}, SciPy {scipy.__version__}"
    load_before = _load()
    print(f"machine: {machine}; load average before: {load_before}", flush=True)
    with tempfile.TemporaryDirectory(prefix="neurolysis-sweep-bench-") as tmp:
        folder = Path(tmp)
        (folder / "rf.toml").write_text(plan_toml(new_plan("lumbar-medial-branch")))
        (folder / "bench.toml").write_text(SWEEP)
        sweep = load_sweep(folder / "bench.toml")
        sweep = replace(sweep, points=sweep.points[: args.points])
        n = len(sweep.points)
        print(f"{n} RF points (set temperature x lesion time x offset), {args.workers} local workers, one thread each", flush=True)

        started = time.perf_counter()
        done = run_sweep(sweep, folder / "results", workers=args.workers)
        parallel = time.perf_counter() - started
        assert not done.failed, done.failed
        print(f"dask LocalCluster: {parallel:.1f} s ({parallel / n:.2f} s per point, cluster start included); load average: {_load()}", flush=True)

        serial_times, identical = [], 0
        started = time.perf_counter()
        for point in sweep.points:
            task = simulate_point(point.plan_text, str(folder), __version__)
            serial_times.append(task["wall_time_s"])
            record = json.loads((folder / "results" / "points" / f"{point.key}.json").read_text())
            identical += without_timings(record["outcome"]) == without_timings(json.loads(json.dumps(task["outcome"])))  # as the point file holds it
        serial = time.perf_counter() - started
        print(f"serial, one process: {serial:.1f} s ({serial / n:.2f} s per point; median {statistics.median(serial_times):.2f} s); load average: {_load()}", flush=True)

        worker_times = [json.loads(p.read_text())["row"]["wall_time_s"] for p in (folder / "results" / "points").glob("*.json")]
    ratio = serial / parallel
    print(f"ratio serial / parallel: {ratio:.2f}x; outcomes identical to the serial run: {identical} of {n}; "
          f"mean point time on a worker {statistics.mean(worker_times):.2f} s vs {statistics.mean(serial_times):.2f} s serial", flush=True)  # fmt: skip
    out = {"machine": machine, "points": n, "workers": args.workers, "parallel_wall_s": round(parallel, 1), "serial_wall_s": round(serial, 1),
           "ratio": round(ratio, 2), "serial_per_point_s": round(serial / n, 2), "parallel_per_point_s": round(parallel / n, 2),
           "worker_mean_point_s": round(statistics.mean(worker_times), 2), "identical_outcomes": identical, "load_before": load_before, "load_after": _load(),
           "serial_peak_memory_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}  # fmt: skip
    if n == 64:
        OUT.parent.mkdir(exist_ok=True)
        OUT.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
