"""Simulated plans of the issue-5 methods against published relief (held out, nothing tuned).

Runs every ``[plan_validation]`` case of ``data/nerve_model.toml`` through
``neurolysis.relief_validation.plan_relief`` (the same function as
``tests/validation/test_method_plans.py``): the method's default plan at the template,
simulated end to end, its relief median judged by the case's rule. Results go to
``bench/results/method_validation.json`` and docs/validation.md section 6.2.

    OPENBLAS_NUM_THREADS=1 python bench/method_validation.py
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import json  # noqa: E402
import sys  # noqa: E402
from dataclasses import asdict  # noqa: E402
from pathlib import Path  # noqa: E402

from neurolysis.relief_validation import plan_relief, plan_relief_cases  # noqa: E402

OUT = Path(__file__).parent / "results" / "method_validation.json"


def main() -> int:
    rows = []
    for case_id in plan_relief_cases():
        c = plan_relief(case_id)
        rows.append(asdict(c))
        print(f"{case_id:32s} {'pass' if c.passed else 'MISS'}: {c.model}  [{c.values['wall_time_s']:.0f} s]", flush=True)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
