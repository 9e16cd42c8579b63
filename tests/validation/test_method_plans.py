"""Simulated chemical, cryo and surgical plans against published relief (docs/validation.md 6.2).

Each case (``data/nerve_model.toml [plan_validation]``) is a full plan in 3D anatomy,
compared by a rule fixed in the data file before it was run and never tuned. The misses
are listed with their reason and run as strict xfails: they fail loudly the day the
model starts to agree, and docs/validation.md must then be updated.
"""

import pytest

from neurolysis.literature import plan_relief, plan_relief_cases

KNOWN_MISSES: dict[str, str] = {
    "genicular-phenol-shaikh-2023": "model 22.9 vs 9.9 months: chemical injury borrows the RF scar rate, and the 1.5 mL bolus (filling soft tissue only, issue 10) lesions 26.5 mm of nerve",
    "celiac-ethanol-rct-2021": "model 29.5 months vs a 3-5 month band: 34 mm of plexus lesioned at the RF scar rate; cancer patients' survival also cuts follow-up",
    "lumbar-cryo-birkenmaier-2007": "model 1.1 months vs 6-12: axonotmesis keeps the tubes, regrowth at 1-2 mm/day over a short path; human cryo relief outlasts it",
    "knee-cryo-iovera": "model 0.84 months vs 1-5: as the lumbar cryo case; the template's 25 mm to the end organ is short",
    "intercostal-neurectomy-2021": "model 10.3 months vs >= 12: the gap is crossed as if unmanaged; stump burial or capping is not modelled",
}


@pytest.mark.slow
@pytest.mark.parametrize("case_id", plan_relief_cases())
def test_simulated_plan_relief(case_id, request):
    if case_id in KNOWN_MISSES:
        request.applymarker(pytest.mark.xfail(reason=f"validation miss: {KNOWN_MISSES[case_id]}", strict=True))
    c = plan_relief(case_id)
    assert c.values["pain_fibres_killed_fraction"] > 0.9, c.model  # every case is a complete lesion
    assert c.passed, c.model
