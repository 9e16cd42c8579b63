"""Benchmark: one plan per method through the user's path (`simulate(plan)`), on a template.

Each method's default plan (`new_plan(template, method=M)`: the defaults a user gets from
`neurolysis plan new --method M`) is simulated end to end (anatomy, physics, nerve
outcome with per-injection / frozen-length extras, critical-structure risk), each in a
fresh process so that its peak memory is its own. The axisymmetric default RF lesion is
timed in this process first as the reference (ratios printed).

    OPENBLAS_NUM_THREADS=1 python bench/method_plans.py [--template lumbar-medial-branch] [--methods cryo chemical ...]

Issue 5 target: each <= 30 s on the 2-core machine in 3D anatomy.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from rf_lesion import machine  # noqa: E402

METHODS = ("rf", "chemical", "cryo", "surgical", "block")
RESULTS = Path(__file__).parent / "results"
TARGET_S = 30.0


def _run(template: str, method: str, queue) -> None:
    from neurolysis import new_plan, simulate

    started = time.perf_counter()
    d = simulate(new_plan(template, method=method)).to_dict()
    wall = time.perf_counter() - started
    t = d["target"]
    summary = {
        "method": method,
        "wall_time_s": wall,
        "peak_memory_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "pain_fibres_killed_fraction": t["pain_fibres_killed_fraction"],
        "relief_months": t["relief_months"],
        "lesion_mm": [d["lesion"]["width_mm"], d["lesion"]["length_mm"]],
        "injured": [c["name"] for c in d["critical"] if c["injured"]],
    }
    section = d[d["method"]] if d["method"] in d else d.get("rf", {})
    if method == "chemical":
        summary["injections_to_full_strip"] = section["injections_to_full_strip"]
        summary["pain_per_injection"] = [p["pain_fibres_killed_fraction"] for p in section["per_injection"]]
    if method == "cryo":
        summary["nerve"] = {k: v for k, v in section["nerve"].items() if k != "note"}
        summary["ice_ball_mm"] = [section["ice_ball"]["width_mm"], section["ice_ball"]["length_mm"]]
    if method == "block":
        summary["sensory_block_h"] = section["sensory_block_h"]
    queue.put(summary)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default="lumbar-medial-branch")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    args = parser.parse_args(argv)
    from neurolysis.engines.rf.engine2d import simulate_rf
    from neurolysis.examples import conventional_rf

    print(f"machine: {machine()}")
    started = time.perf_counter()
    simulate_rf(conventional_rf())
    reference_s = time.perf_counter() - started
    print(f"reference: axisymmetric default RF lesion {reference_s:.2f} s")
    ctx = mp.get_context("spawn")
    results = []
    for method in args.methods:
        queue = ctx.Queue()
        proc = ctx.Process(target=_run, args=(args.template, method, queue))
        proc.start()
        summary = queue.get()
        proc.join()
        summary["ratio_to_reference"] = summary["wall_time_s"] / reference_s
        summary["meets_30s"] = summary["wall_time_s"] <= TARGET_S
        results.append(summary)
        print(f"{method:9s} {summary['wall_time_s']:6.1f} s  (x{summary['ratio_to_reference']:.0f} reference)  "
              f"{summary['peak_memory_gib']:.2f} GiB  pain killed {summary['pain_fibres_killed_fraction']:.0%}  "
              f"relief {summary['relief_months']['median']} months  {'OK' if summary['meets_30s'] else 'OVER 30 s'}", flush=True)
    out = RESULTS / f"method_plans_{args.template}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "template": args.template, "reference_s": reference_s, "plans": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
