"""Simulated chemical, cryo and surgical plans against published relief (docs/validation.md 6.2).

Each case (``data/nerve_model.toml [plan_validation]``) is a full plan in 3D anatomy,
compared by a rule fixed in the data file before it was run and never tuned. The misses
are listed with their reason and run as strict xfails: they fail loudly the day the
model starts to agree, and docs/validation.md must then be updated.
"""

import pytest

from neurolysis._catalog import load_catalog
from neurolysis.relief_validation import plan_relief, plan_relief_cases

KNOWN_MISSES: dict[str, str] = {
    "genicular-conventional": "cohort median 22.9 vs 2.6 months at the >= 50 % endpoint the trial counted (x8.8; 3.8 at the complete endpoint): a block of the one simulated nerve relieves about two years before the input climbs to theta + (1 - theta) / 2 (maturation over 36.5 months, linear pain-from-input mapping, UNVERIFIED)",
    "genicular-cooled": "cohort median 21.4 vs 11.1 months at the >= 50 % endpoint (x1.93; 3.4 at the complete endpoint): as the conventional case; the cooled lesion captures the one nerve no more often (P(block) 0.66 vs 0.71)",
    "genicular-conventional-three-nerves": "three nerves, >= 50 % endpoint: P(block) 0.77 (any two nerves), cohort median 15.3 vs 2.6 months (x5.9); each block lasts about two years (same cause as the one-nerve case)",
    "genicular-cooled-three-nerves": "three nerves, >= 50 % endpoint: cohort median 14.4 vs 11.1 months, x1.30 at the rule's limit and not inside it; near only because every block lasts about two years, while conventional RF gives 15.3 (the published 4x cooled advantage is not reproduced)",
    "genicular-phenol-shaikh-2023": "97 % of the cohort still relieved at 9.9 months at the >= 50 % endpoint vs 33.5-54.1 % (16.5 % at the complete endpoint): the endpoint's threshold is reached about two years after a block",
    "celiac-until-death-eisenberg-1995": "relief lasts until death in 61 % vs 70-90 %: with exponential survival (median 6.3 months) 28 % of patients outlive the nerve's 11.6-month regrowth and 20 % see progression first; the exponential's long tail (an assumption) and a progression hazard taken as the whole of Eisenberg's 10 % both push the share down",
    "sacroiliac-rf-salman-2016": "three lateral branches at the >= 50 % endpoint: still relieved at 6 months 76.0 % vs 30.1-75.2 % (53 % of 15); P(block) 0.76 matches the 73 % at 1 month, but a block lasts ~2 years (territory 28.9 months at the planned poses), so the published decline 73 -> 60 -> 53 % over 6 months is not reproduced (the same cause as the genicular misses)",
    "shp-phenol-plancarte-1997": "P(block) 1.00 vs 65-79 %: the 10 mL phenol bolus (about 40 mm wide) covers the plexus from every sampled pose; failures the trial saw (tumour encasing the plexus and deflecting the spread, pain carried by somatic nerves) are not modelled",
    "knee-cryo-iovera": "P(block) 0.09 in the cohort, so the cohort median is 0: the 27 G iovera probe's small ice ball at the SMGN captures the nerve only when the tip is within ~1 mm, and the genicular placement spread (mean 2-3 mm) mostly misses; since issue 19 (3 s cool-down, 5 s hold at -20 C, the genicular artery's lumen at 37 C) even the planned pose kills only 53 % of pain fibres (was 100 %); the trial treated the infrapatellar branch with several insertions along a line, which one needle pose does not represent",
}


CASES = load_catalog("nerve_model")["plan_validation"]


def _marks(case_id: str):
    """Cohorts refined by anchor solves take 1-3 min each: `heavy` (pytest -m heavy; their
    numbers are in bench/results/method_validation.json and docs/validation.md 6.2)."""
    return [pytest.mark.heavy] if CASES[case_id].get("anchors") or CASES[case_id].get("heavy") else [pytest.mark.slow]


@pytest.mark.parametrize("case_id", [pytest.param(c, marks=_marks(c)) for c in plan_relief_cases()])
def test_simulated_plan_relief(case_id, request):
    if case_id in KNOWN_MISSES:
        request.applymarker(pytest.mark.xfail(reason=f"validation miss: {KNOWN_MISSES[case_id]}", strict=True))
    c = plan_relief(case_id)
    assert c.values["pain_fibres_killed_fraction"] > 0.9, c.model  # every case's planned pose is a complete lesion
    assert c.passed, c.model
