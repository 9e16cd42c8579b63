"""Simulated plans of the issue-5 methods against published relief (held out, nothing tuned).

Each case is a full plan (template, method, the template's recommended placement, the
method's defaults for that template unless overridden) simulated end to end; the model's
relief median is compared with the published figure by the rule fixed in
``data/nerve_model.toml`` (median within x1/1.3..x1.3, or inside a band). Results go to
``bench/results/method_validation.json`` and ``docs/validation.md`` section 6.

    OPENBLAS_NUM_THREADS=1 python bench/method_validation.py
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tomllib  # noqa: E402
from pathlib import Path  # noqa: E402

from neurolysis.planning.plan import apply_overrides, new_plan, plan_from_dict, plan_toml  # noqa: E402
from neurolysis.planning.simulate import simulate  # noqa: E402

OUT = Path(__file__).parent / "results" / "method_validation.json"
RATIO = 1.3

CASES = [
    {
        "id": "genicular-phenol-shaikh-2023",
        "template": "genicular", "method": "chemical", "overrides": [],
        "published": "genicular phenol: >= 50 % sustained relief at mean 9.9 +/- 6.1 months (43.5 % of patients)",
        "source": "Shaikh W et al., Pain Med 2023;24(7):768 (literature-2.md 4d, READ)",
        "median_months": 9.9,
    },
    {
        "id": "celiac-ethanol-rct-2021",
        "template": "celiac-plexus", "method": "chemical", "overrides": [],
        "published": "neurolytic splanchnic alcohol vs saline: better pain relief for 3 months, lower opioid use for 5 months (cancer patients; survival limits follow-up)",
        "source": "Anesthesiology 2021;135(4):686 (literature.md F table, READ)",
        "band_months": [3.0, 5.0],
    },
    {
        "id": "lumbar-cryo-birkenmaier-2007",
        "template": "lumbar-medial-branch", "method": "cryo", "overrides": [],
        "published": "lumbar medial-branch cryo: VAS 7.7 -> 3.2 (6 wk), 3.3 (3 mo), 3.0 (6 mo), 4.2 (12 mo): benefit held to 6 months, waning by 12",
        "source": "Birkenmaier C et al., Eur Spine J 2007 (PMC2267642), literature.md E, READ",
        "band_months": [6.0, 12.0],
    },
    {
        "id": "knee-cryo-iovera",
        "template": "genicular", "method": "cryo", "overrides": ["procedure.probe=iovera-27g-6.9mm"],
        "published": "knee cryoneurolysis (iovera, infrapatellar branch): better than sham at 30, 60, 90 days; effect at 1-5 months",
        "source": "Radnovich R et al., Osteoarthritis Cartilage 2017;25:1247; iovera 510(k) K173763 (literature-2.md 3c, 8, READ)",
        "band_months": [1.0, 5.0],
    },
    {
        "id": "intercostal-neurectomy-2021",
        "template": "intercostal", "method": "surgical", "overrides": [],
        "published": "endoscopic intercostal neurectomy: 13/13 relieved to 12 months, no recurrence",
        "source": "Pain Physician 2021;24(7):E1147 (literature-2.md 5, READ)",
        "at_least_months": 12.0,
    },
]


def verdict(case: dict, median: float | None) -> str:
    if median is None:
        return "no relief predicted"
    if "median_months" in case:
        r = median / case["median_months"]
        return f"{'pass' if 1 / RATIO <= r <= RATIO else 'MISS'} (x{r:.2f})"
    if "band_months" in case:
        lo, hi = case["band_months"]
        return "pass" if lo <= median <= hi else f"MISS ({'below' if median < lo else 'above'} {lo:g}-{hi:g})"
    return "pass" if median >= case["at_least_months"] else f"MISS (below {case['at_least_months']:g})"


def main() -> int:
    rows = []
    for case in CASES:
        started = time.perf_counter()
        data = apply_overrides(tomllib.loads(plan_toml(new_plan(case["template"], method=case["method"]))), case["overrides"])
        d = simulate(plan_from_dict(data)).to_dict()
        t = d["target"]
        median = t["relief_months"]["median"] if t["pain_block"] else None
        row = {
            **case,
            "procedure": d["settings"]["procedure"],
            "pain_fibres_killed_fraction": t["pain_fibres_killed_fraction"],
            "lesioned_length_mm": t["lesioned_length_mm"],
            "relief_months": t["relief_months"],
            "verdict": verdict(case, median),
            "injured": [c["name"] for c in d["critical"] if c["injured"]],
            "wall_time_s": time.perf_counter() - started,
        }
        rows.append(row)
        r = t["relief_months"]
        print(f"{case['id']:32s} killed {t['pain_fibres_killed_fraction']:.0%}, nerve lesioned {t['lesioned_length_mm']:.1f} mm, "
              f"relief {r['median']} ({r['p10']}-{r['p90']}) months -> {row['verdict']}  [{row['wall_time_s']:.0f} s]", flush=True)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
