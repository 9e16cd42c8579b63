"""What the stimulation test costs: on the default lumbar RF plan, in its placement cohort, and per
offset of ``neurolysis stimulate``; each as a ratio to the plan's own solve in the same process.

Gate (issue 19): the test adds <= 30 % to a plan's time.

    .venv/bin/python bench/stimulation.py [--samples N] [--json]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import time
import tomllib

from neurolysis.planning.plan import apply_overrides, new_plan, plan_from_dict, plan_toml
from neurolysis.planning.simulate import prepare, solve
from neurolysis.planning.stimulate import offset_scan
from neurolysis.stimulation_validation import case_ids, threshold_case


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=100, help="placement-cohort samples")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    plan = new_plan("lumbar-medial-branch", "L4 medial branch")
    started = time.perf_counter()
    outcome = solve(prepare(plan))
    plan_s = time.perf_counter() - started
    stim = outcome.to_dict()["stimulation"]

    cohort_plan = plan_from_dict(apply_overrides(tomllib.loads(plan_toml(plan)), [f"uncertainty.samples={args.samples}"]))
    started = time.perf_counter()
    cohort = solve(prepare(cohort_plan)).to_dict()["uncertainty"]
    cohort_s = time.perf_counter() - started

    ctx = prepare(plan)
    started = time.perf_counter()
    rows = offset_scan(ctx, (0.0,), (0.0, 1.0, 2.0, 3.0, 5.0, 7.0))
    scan_s = time.perf_counter() - started

    summary = {
        "plan_wall_time_s": round(plan_s, 2),
        "stimulation_wall_time_s": stim["wall_time_s"],
        "stimulation_share_of_plan": round(stim["wall_time_s"] / plan_s, 4),
        "sensory_threshold_v": stim["sensory_threshold_v"],
        "motor_threshold_v": stim["motor_threshold_v"],
        "impedance_ohm": stim["impedance_ohm"],
        "cohort_samples": args.samples,
        "cohort_wall_time_s": round(cohort_s, 2),
        "cohort_stimulation_s": cohort["stimulation"]["wall_time_s"],
        "cohort_stimulation_share": round(cohort["stimulation"]["wall_time_s"] / cohort_s, 4),
        "p_sensory_below_cutoff": cohort["stimulation"]["p_sensory_below_cutoff"],
        "cohort_sensory_threshold_v": cohort["stimulation"]["sensory_threshold_v"],
        "scan_offsets": len(rows),
        "scan_s_per_offset": round(scan_s / len(rows), 2),
        "scan_s_per_offset_over_plan": round(scan_s / len(rows) / plan_s, 4),
        "scan": [r.as_dict() for r in rows],
        "validation": [{"id": c.id, "distance_mm": c.distance_mm, "pulse_ms": c.pulse_ms, "published_ma": c.published_ma, "model_ma": round(c.model_ma, 3),
                        "published_over_model": round(c.ratio, 3), "passed": c.passed} for c in map(threshold_case, case_ids())],
    }  # fmt: skip
    if args.json:
        print(json.dumps(summary, indent=1))
        return
    for key, value in summary.items():
        if key not in ("scan", "validation"):
            print(f"{key:32s} {value}")
    for row in summary["scan"]:
        print(f"  across {row['across_mm']:4.1f} mm: {row['distance_mm']:5.2f} mm to the nerve, sensory {row['sensory_threshold_v']:.3f} V "
              f"({row['sensory_threshold_ma']:.2f} mA), motor {row['motor_threshold_v']:.3f} V")
    for c in summary["validation"]:
        print(f"  {c['id']:16s} {c['distance_mm']:4.1f} mm {c['pulse_ms']:.2f} ms: published {c['published_ma']:.2f} mA, model {c['model_ma']:.2f} mA "
              f"(x{c['published_over_model']:.2f}) {'pass' if c['passed'] else 'MISS'}")


if __name__ == "__main__":
    main()
