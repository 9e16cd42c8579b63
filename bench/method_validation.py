"""Simulated plans of the issue-5 methods against published relief (held out, nothing tuned).

Runs every ``[plan_validation]`` case of ``data/nerve_model.toml`` through
``neurolysis.relief_validation.plan_relief`` (the same function as
``tests/validation/test_method_plans.py``): the method's default plan at the template,
simulated end to end, its relief median judged by the case's rule. Results go to
``bench/results/method_validation.json`` and docs/validation.md section 6.2; with ``--cases``
only those run, written to ``--out`` (merged into what the file holds).

    OPENBLAS_NUM_THREADS=1 python bench/method_validation.py [--cases ID ...] [--out FILE.json]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from dataclasses import asdict  # noqa: E402
from pathlib import Path  # noqa: E402

from neurolysis.relief_validation import plan_relief, plan_relief_cases  # noqa: E402

OUT = Path(__file__).parent / "results" / "method_validation.json"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", nargs="+", choices=plan_relief_cases(), help="only these cases (default: every case)")
    parser.add_argument("--out", type=Path, default=OUT, help="results file (JSON)")
    args = parser.parse_args()
    partial = args.cases is not None  # rerun only these: the file keeps the other cases' rows, in catalogue order
    kept = json.loads(args.out.read_text(encoding="utf-8")) if partial and args.out.exists() else []
    rows = {row["id"]: row for row in (kept.values() if isinstance(kept, dict) else kept)}
    for case_id in args.cases or plan_relief_cases():
        c = plan_relief(case_id)
        rows[case_id] = asdict(c)
        print(f"{case_id:32s} {'pass' if c.passed else 'MISS'}: {c.model}  [{c.values['wall_time_s']:.0f} s]", flush=True)
    order = {case_id: k for k, case_id in enumerate(plan_relief_cases())}
    rows = sorted(rows.values(), key=lambda row: order.get(row["id"], len(order)))
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
