"""Wall time of `neurolysis compare` (per template, no Monte Carlo) and `neurolysis optimize`
(default lumbar plan, default budget and samples), with the ratio to one plan solve in the same
process. Targets (issue 11): compare <= 2 minutes per template, optimize <= 5 minutes (issue 20: <= 60 s) on the
2-core machine. Results: bench/results/decide.json (``latest_run`` beside the runs recorded before) and docs/benchmarks.md.

    OPENBLAS_NUM_THREADS=1 python bench/decide.py [--templates lumbar-medial-branch celiac-plexus] [--skip-optimize]
    (``--templates`` with no name: optimize only)
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402

from neurolysis.compare import compare_methods  # noqa: E402
from neurolysis.optimize import optimize_plan  # noqa: E402
from neurolysis.planning.plan import new_plan  # noqa: E402
from neurolysis.planning.simulate import simulate  # noqa: E402

OUT = Path(__file__).parent / "results" / "decide.json"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", nargs="*", default=["lumbar-medial-branch", "celiac-plexus"])
    parser.add_argument("--skip-optimize", action="store_true")
    parser.add_argument("--workers", nargs="*", type=int, default=[1, 2], help="compare with each of these process counts (issue 20: 1 and 2)")
    args = parser.parse_args(argv)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, NumPy {np.__version__}, SciPy {scipy.__version__}"
    print(f"machine: {machine}", flush=True)
    t = time.perf_counter()
    simulate(new_plan("lumbar-medial-branch"))
    reference = time.perf_counter() - t
    print(f"one lumbar RF plan solve: {reference:.1f} s", flush=True)
    out = {"machine": machine, "reference_plan_solve_s": round(reference, 2), "compare": {}}
    for template in args.templates:
        for workers in args.workers:
            t = time.perf_counter()
            d = compare_methods(template, workers=workers)
            wall = time.perf_counter() - t
            per = {e["method"]: e["wall_time_s"] for e in d["methods"]}
            out["compare"][f"{template} workers={workers}"] = {"wall_s": round(wall, 1), "ratio_to_plan_solve": round(wall / reference, 2), "per_method_s": per,
                                                               "summary": {e["method"]: {"applicable": e["applicable"], "p_block": e["p_block"], "relief_months": e["relief_months"]} for e in d["methods"]}}  # fmt: skip
            print(f"compare {template} --workers {workers}: {wall:.1f} s ({wall / reference:.1f}x one plan solve; issue 20 target <= 30 s lumbar, <= 60 s celiac); per method {per}", flush=True)
    if not args.skip_optimize:
        t = time.perf_counter()
        r = optimize_plan(new_plan("lumbar-medial-branch"))
        wall = time.perf_counter() - t
        out["optimize"] = {"wall_s": round(wall, 1), "ratio_to_plan_solve": round(wall / reference, 2), "n_evaluations": r["n_evaluations"],
                           "n_full_solves": r["n_full_solves"], "moved_checks": r["moved_checks"], "evaluations": r["evaluations"], "baseline": r["baseline"], "best": r["best"], "improvement": r["improvement"], "front": r["front"], "best_plan": r["best_plan"]}  # fmt: skip
        # the search saw 64 poses per evaluation; check baseline and best on 1000 (the same seed for both)
        from neurolysis.planning.plan import plan_from_dict

        check = {}
        for name, plan in (("baseline", new_plan("lumbar-medial-branch")), ("best", plan_from_dict(r["best_plan"]))):
            data = plan.as_dict()
            data["uncertainty"] = dict(data.get("uncertainty", {})) | {"samples": 1000}
            u = simulate(plan_from_dict(data)).uncertainty.to_dict()
            check[name] = {"p_block": u["p_block"], "p_block_95ci": u["p_block_95ci"], "relief_months": u["relief_months"], "worst_p_injury": max((c["p_injury"] for c in u["critical"]), default=0.0)}
        out["optimize"]["check_1000_samples"] = check
        print(f"check with 1000 samples: {check}", flush=True)
        print(f"optimize lumbar default: {wall:.1f} s ({wall / reference:.1f}x; issue 20 target <= 60 s), {r['n_evaluations']} evaluations ({r['n_full_solves']} full solves); "
              f"baseline P(block) {r['baseline']['p_block']:.3f} relief {r['baseline']['relief_median_months']:.2f}; best P(block) {r['best']['p_block']:.3f} "
              f"relief {r['best']['relief_median_months']:.2f} worst P(injury) {r['best']['worst_p_injury']:.3f}; values {r['best']['values']}", flush=True)  # fmt: skip
    out["peak_memory_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    OUT.parent.mkdir(exist_ok=True)
    runs = json.loads(OUT.read_text()) if OUT.exists() else {}
    runs["latest_run"] = out  # earlier runs stay beside it (a --skip-optimize run must not erase the optimize figures)
    OUT.write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
