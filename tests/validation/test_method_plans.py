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
    "genicular-conventional": "cohort median 3.8 vs 2.6 months (x1.47): with anchors the cohort blocks in 71 % of placements (the rigid move alone said 60 % and passed at 2.9, a bias the anchors remove); each block relieves ~5-6 months at the knee",
    "genicular-cooled": "cohort median 3.4 vs 11.1 months: the cooled lesion captures the one simulated nerve no more often than the conventional one (P(block) 0.66 vs 0.71) and its shorter coagulated core regrows sooner; the published 4x advantage probably comes from capturing more of the variable articular branches, which one simulated nerve cannot show; the 0.15 untreated share at the knee is a judgement",
    "genicular-phenol-shaikh-2023": "16.5 % of the cohort still relieved at 9.9 months vs 33.5-54.1 %: P(block) is 0.97 but each block relieves ~6 months at the knee (0.15 untreated input, a judgement), so few are relieved at 9.9 months",
    "celiac-ethanol-rct-2021": "relief lived 6.5 months vs the 3-5 month group difference: the model's relief (11.6 months) is cut only by survival (median 193 days, exponential); a trial loses power as patients die and tumour progression (not modelled) brings new pain",
    "knee-cryo-iovera": "P(block) 0.10 in the cohort, so the cohort median is 0: the 27 G iovera probe's small ice ball at the SMGN captures the nerve only when the tip is within ~1 mm, and the genicular placement spread (mean 2-3 mm) mostly misses; the trial treated the infrapatellar branch with several insertions along a line, which one needle pose does not represent",
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
