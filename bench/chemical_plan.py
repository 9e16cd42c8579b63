"""Chemical neurolysis in 3D at the lumbar medial branch: wall time, memory, per-injection kill.

100 % ethanol, 0.5 mL x 3 injections 24 h apart, 1 mL/min, at the template's perpendicular
placement on its target nerve. Gate: <= 30 s on 2 cores. Prints the pain-fibre kill after
each injection (``outcome.axons.nerve_outcome``) and ``first_full_strip`` (>= 95 %).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/chemical_plan.py [--agent ethanol --pct 100 --ml 0.5 --n 3 --interval-h 24]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # BLAS threads only contend on the short vectors of CG

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from neurolysis.anatomy.templates import load_template  # noqa: E402
from neurolysis.engines.chemical import simulate_chemical  # noqa: E402
from neurolysis.methods.chemical import first_full_strip  # noqa: E402
from neurolysis.outcome.axons import nerve_outcome  # noqa: E402

OUT = Path(__file__).parent / "results" / "chemical_plan.json"


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB -> GiB


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", default="ethanol")
    ap.add_argument("--pct", type=float, default=100.0)
    ap.add_argument("--ml", type=float, default=0.5)
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--interval-h", type=float, default=24.0)
    ap.add_argument("--rate", type=float, default=1.0)
    args = ap.parse_args()

    scene = load_template("lumbar-medial-branch")
    pose = scene.placements[(scene.target, "perpendicular")]
    t0 = time.perf_counter()
    result = simulate_chemical(args.agent, args.pct, args.ml, args.n, args.interval_h, args.rate, pose, scene)
    sim_s = time.perf_counter() - t0
    nerve = scene.nerve(scene.target)
    fractions = [nerve_outcome(nerve, result.sampler_after(i), "chemical").pain_fibres_killed_fraction for i in range(result.injections)]
    n_full = first_full_strip(fractions)
    total_s = time.perf_counter() - t0
    summary = {
        "plan": vars(args),
        "nerve": scene.target,
        "simulate_wall_time_s": sim_s,
        "total_with_nerve_outcome_s": total_s,
        "peak_memory_gib": peak_gib(),
        "pain_fibres_killed_fraction_per_injection": fractions,
        "injections_to_full_strip": n_full,
        "lethal_volume_ml": list(result.lethal_volume_ml),
        "spread_volume_ml": list(result.spread_volume_ml),
        "mass_balance_relative_error": [m["relative_error"] for m in result.mass_balance],
        "mesh": result.mesh,
        "warnings": list(result.warnings),
        "gate_30s": total_s <= 30.0,
    }
    for i, f in enumerate(fractions):
        print(f"after injection {i + 1}: pain fibres killed {f:.1%}, lethal volume {result.lethal_volume_ml[i]:.2f} mL")
    print(f"injections_to_full_strip = {n_full}")
    print(f"wall time {sim_s:.1f} s (with nerve outcome {total_s:.1f} s), peak memory {peak_gib():.2f} GiB, "
          f"{result.mesh['nodes']} nodes, steps/injection {result.mesh['time_steps_per_injection']}")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(summary, indent=1, default=str))


if __name__ == "__main__":
    main()
