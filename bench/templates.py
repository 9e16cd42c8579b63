"""Benchmark: each template's default plan for each method that applies there (issue 18), wall time
and peak memory, with the three-needle genicular plan among them.

    OPENBLAS_NUM_THREADS=1 python bench/templates.py [--templates T1 T2 ...] [--json bench/results/templates.json]

Each plan is `plan new --template T --method M` as a user writes it (the template's session
targets: three needles at the knee and the sacroiliac joint, two at the cervical spine) solved
in its own process (peak = that process's maximum resident set, getrusage), so one plan's
memory does not hide another's. The default lumbar RF plan is solved first in the same way as
the reference (ratio printed). Methods a template lists as not applicable (data/compare.toml)
are skipped; pulsed RF (not neurolytic) is skipped everywhere.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from rf_lesion import machine  # noqa: E402

NEW = ("superior-hypogastric-plexus", "ganglion-impar", "lateral-femoral-cutaneous", "neuroma", "cervical-medial-branch", "trigeminal-ganglion", "sacroiliac")
METHODS = ("rf", "cooled-rf", "chemical", "cryo", "surgical", "block")


def _case(template: str, method: str, queue) -> None:
    from neurolysis.planning.plan import new_plan
    from neurolysis.planning.simulate import simulate

    started = time.perf_counter()
    out = simulate(new_plan(template, method=method))
    wall = time.perf_counter() - started
    targets = out.targets or (out.target,)
    queue.put({
        "template": template, "method": method, "needles": max(1, len(out.lesions)), "wall_s": round(wall, 2),
        "peak_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "pain_killed": [round(t.pain_fibres_killed_fraction, 3) for t in targets],
        "relief_median_months": out.territory.relief.median if out.territory is not None else out.target.relief.median,
        "injured": [c.name for c in out.critical if c.injured],
    })  # fmt: skip


def run(template: str, method: str) -> dict:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=_case, args=(template, method, queue))
    p.start()
    row = queue.get()
    p.join()
    return row


def applicable(template: str) -> list[str]:
    from neurolysis._catalog import load_catalog

    blocked = load_catalog("compare").get("no_access", {}).get(template, {})
    return [m for m in METHODS if m not in blocked]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", nargs="*", default=["genicular", *NEW])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    reference = run("lumbar-medial-branch", "rf")
    print(f"reference lumbar-medial-branch rf: {reference['wall_s']:.1f} s, {reference['peak_gib']:.2f} GiB", flush=True)
    rows = []
    for template in args.templates:
        for method in (["rf"] if template == "genicular" else applicable(template)):
            row = run(template, method) | {"ratio_to_reference": None}
            row["ratio_to_reference"] = round(row["wall_s"] / reference["wall_s"], 2)
            rows.append(row)
            print(f"{template:28s} {method:9s} {row['needles']} needle(s): {row['wall_s']:6.1f} s (x{row['ratio_to_reference']:.2f}), {row['peak_gib']:.2f} GiB; "
                  f"pain killed {row['pain_killed']}, relief {row['relief_median_months']} months, injured {row['injured'] or 'none'}", flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "reference": reference, "rows": rows}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
