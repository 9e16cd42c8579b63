"""Benchmark and verification of the placement Monte Carlo (issue 10, part 4).

1. Time: the default lumbar RF plan with N samples (default 1000) through the user's path;
   the cohort's own time, the one full plan solve of the same run (the ratio), peak memory.
2. Shortcut against full re-simulation (issue 20: with the samples the verdict band flags as
   "could change" besides): the first K samples' poses (default 20) are each
   simulated as an explicit-placement plan (the whole engine at that pose) and compared
   with the cohort's rigid-move reading: pain and motor fibres killed, pain block, injury
   flags; the error in P(block) over the K samples, and which samples were flagged inexact.

    OPENBLAS_NUM_THREADS=1 python bench/monte_carlo.py [--samples 1000] [--verify 20] [--verify-flagged 5] [--template lumbar-medial-branch] [--target NERVE] [--method rf] [--anchors K]

Targets (issue 10): 1000 samples <= 60 s on the 2-core machine, <= 4 GiB. Results go to
bench/results/monte_carlo_<template>_<method>.json and docs/benchmarks.md.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from rf_lesion import machine  # noqa: E402

from neurolysis import new_plan, plan_toml, simulate  # noqa: E402
from neurolysis.planning.plan import apply_overrides, plan_from_dict  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def _plan(template: str, method: str, overrides: list[str], target: str | None = None):
    import tomllib

    return plan_from_dict(apply_overrides(tomllib.loads(plan_toml(new_plan(template, target, method=method))), overrides))


def _explicit(cohort, i: int) -> list[str]:
    """Overrides placing sample ``i``'s needle (every needle's, for a plan with several) explicitly."""

    def placed(prefix: str, pose) -> list[str]:
        tip = ", ".join(f"{v:.6f}" for v in pose.tip_m * 1e3)
        d = ", ".join(f"{v:.9f}" for v in pose.direction)
        return [f'{prefix}.approach="explicit"', f"{prefix}.tip_mm=[{tip}]", f"{prefix}.direction=[{d}]"]

    if not cohort.lesion_poses:
        return placed("placement", cohort.poses[i])
    return [item for k, drawn in enumerate(cohort.lesion_poses) for item in placed(f"needles[{k}]", drawn[i])]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default="lumbar-medial-branch")
    parser.add_argument("--target", help="one target nerve of the template (default: plan new's, which may be several needles)")
    parser.add_argument("--method", default="rf")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--verify", type=int, default=20)
    parser.add_argument("--verify-flagged", type=int, default=5, help="also solve in full this many samples the verdict band flags (could change)")
    parser.add_argument("--anchors", type=int, default=0, help="[uncertainty] anchors: poses solved besides the plan")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")

    started = time.perf_counter()
    planned = simulate(_plan(args.template, args.method, [], args.target))
    solve_s = time.perf_counter() - started
    print(f"one full plan solve: {solve_s:.1f} s")

    started = time.perf_counter()
    out = simulate(_plan(args.template, args.method, [f"uncertainty.samples={args.samples}", f"uncertainty.anchors={args.anchors}"], args.target))
    total_s = time.perf_counter() - started
    cohort = out.uncertainty
    u = cohort.to_dict()
    memory = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"{args.samples} samples: plan + cohort {total_s:.1f} s (cohort alone {cohort.wall_time_s:.1f} s, x{cohort.wall_time_s / solve_s:.2f} one plan solve), "
          f"peak memory {memory:.2f} GiB; P(block) {u['p_block']} {u['p_block_95ci']}, relief {u['relief_months']}, inexact {u['inexact_fraction']}, "
          f"could change {u['could_change_fraction']}")  # fmt: skip

    rows = []
    flagged = [] if cohort.could_change is None else [int(i) for i in np.flatnonzero(cohort.could_change) if i >= args.verify][: args.verify_flagged]
    for i in [*range(min(args.verify, args.samples)), *flagged]:
        t0 = time.perf_counter()
        try:
            full = simulate(_plan(args.template, args.method, _explicit(cohort, i), args.target))
        except Exception as error:  # a sampled pose can be refused (tip in bone): reported, not hidden
            rows.append({"sample": i, "refused": str(error), "inexact": bool(cohort.inexact[i])})
            print(f"  sample {i:2d}: full solve refused: {error}")
            continue
        t = full.target
        several = bool(cohort.lesion_poses)  # several needles: the verdict is the territory's, as in the cohort
        row = {
            "sample": i,
            "pain_killed_full": t.pain_fibres_killed_fraction,
            "pain_killed_cohort": float(cohort.pain_killed[i]),
            "motor_killed_full": t.motor_fibres_killed_fraction,
            "motor_killed_cohort": None if cohort.motor_killed is None else float(cohort.motor_killed[i]),
            "block_full": full.territory.pain_block if several else t.pain_block,
            "block_cohort": bool(cohort.pain_block[i]),
            "targets_block_full": [o.pain_block for o in full.targets] if several else None,
            "targets_block_cohort": [bool(b[i]) for _, _, b in cohort.targets] if several else None,
            "injured_full": [r.injured for r in full.critical],
            "injured_cohort": [bool(v) for v in cohort.injured[i]],
            "inexact": bool(cohort.inexact[i]),
            "could_change": None if cohort.could_change is None else bool(cohort.could_change[i]),
            "full_solve_s": time.perf_counter() - t0,
        }
        rows.append(row)
        print(f"  sample {i:2d}: pain killed full {row['pain_killed_full']:.3f} cohort {row['pain_killed_cohort']:.3f}; block {row['block_full']}/{row['block_cohort']}; "
              f"inexact {row['inexact']}", flush=True)  # fmt: skip
    solved = [r for r in rows if "refused" not in r]
    summary = {}
    if solved:
        err = np.array([abs(r["pain_killed_full"] - r["pain_killed_cohort"]) for r in solved])
        exact = [r for r in solved if not r["inexact"]]
        random = [r for r in solved if r["sample"] < args.verify]
        flagged_rows = [r for r in solved if r["could_change"]]
        share_flagged = float(np.mean(cohort.could_change)) if cohort.could_change is not None else 0.0
        disagree = lambda rows_: float(np.mean([r["block_full"] != r["block_cohort"] for r in rows_])) if rows_ else 0.0
        summary = {
            # the P(block) error of the shortcut, stratified: flagged share x disagreement among flagged + the rest x disagreement among unflagged random samples
            "p_block_error_estimate": share_flagged * disagree(flagged_rows) + (1 - share_flagged) * disagree([r for r in random if not r["could_change"]]),
            "disagreement_flagged": disagree(flagged_rows),
            "disagreement_unflagged_random": disagree([r for r in random if not r["could_change"]]),
            "verified_samples": len(solved),
            "refused_samples": len(rows) - len(solved),
            "p_block_full": float(np.mean([r["block_full"] for r in solved])),
            "p_block_cohort": float(np.mean([r["block_cohort"] for r in solved])),
            "pain_killed_abs_error_max": float(err.max()),
            "pain_killed_abs_error_mean": float(err.mean()),
            "pain_killed_abs_error_max_exact_samples": float(max((abs(r["pain_killed_full"] - r["pain_killed_cohort"]) for r in exact), default=0.0)),
            "block_disagreements": int(sum(r["block_full"] != r["block_cohort"] for r in solved)),
            "block_disagreements_not_flagged": int(sum(r["block_full"] != r["block_cohort"] and not r["could_change"] for r in solved)),  # the verdict band missed these
            "flagged_could_change": int(sum(bool(r["could_change"]) for r in solved)),
            "injury_disagreements": int(sum(a != b for r in solved for a, b in zip(r["injured_full"], r["injured_cohort"], strict=True))),
        }
        print(f"verification over {len(solved)} samples: {summary}")
    RESULTS.mkdir(exist_ok=True)
    result = {"machine": machine(), "template": args.template, "method": args.method, "samples": args.samples, "one_plan_solve_s": solve_s,
              "plan_and_cohort_s": total_s, "cohort_s": cohort.wall_time_s, "peak_memory_gib": memory, "uncertainty": u,
              "planned": {"pain_block": planned.target.pain_block, "relief_months": planned.target.relief_months},
              "verification": summary, "verified": rows}  # fmt: skip
    suffix = (f"_{args.target.split()[0]}" if args.target else "") + (f"_needles{len(cohort.lesion_poses)}" if cohort.lesion_poses else "")
    suffix += (f"_anchors{args.anchors}" if args.anchors else "") + ("_timing" if not rows else "")  # a run without full solves keeps the verified runs' file
    (RESULTS / f"monte_carlo_{args.template}_{args.method}{suffix}.json").write_text(json.dumps(result, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
