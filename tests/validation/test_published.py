"""The RF model against published lesion data (neurolysis.literature, docs/validation.md).

A comparison that misses its published band is not tuned away: it is listed in
KNOWN_MISSES with the reason found, and runs as a strict xfail, so it fails loudly the
day the model starts to agree (and the docs must then be updated).
"""

import pytest

from neurolysis import literature

KNOWN_MISSES: dict[str, str] = {
    "cohen-radius": "model radius 3.9-5.2 mm vs 1.1-2.2 mm; see docs/validation.md section 3",
    "provenzano-2013-power": "model 4.0 W vs 1.4-3.25 W; no injected fluid and uncertain chicken properties (docs/validation.md)",
    "cosman-2014-scaling": "width saturates with tip length above 10 mm (Goldberg 1995 agrees with the model there)",
    "goldberg-1995-max-diameter": "no desiccation/charring or hyperaemia in the model: long lesions keep growing (docs/validation.md)",
    "cardiac-temperature": "liver Arrhenius set gives no lesion at 50 C in 30 s (docs/validation.md)",
}

SLOW = {"goldberg_max_diameter", "cosman_scaling", "pulsed_nonlesional", "pulsed_spikes", "pulsed_field"}


def _params():
    for check in literature.ALL:
        marks = [pytest.mark.slow] if check.__name__ in SLOW else []
        yield pytest.param(check, marks=marks, id=check.__name__)


@pytest.mark.parametrize("check", list(_params()))
def test_published_comparison(check, request):
    comparison = check()
    assert comparison.model and comparison.source and comparison.tag in {"READ", "READ-2nd", "DERIVED"}
    if comparison.passed is None:
        return  # recorded without a gate (qualitative or not a literature number)
    if comparison.id in KNOWN_MISSES:
        request.applymarker(pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[comparison.id]))
    assert comparison.passed, f"{comparison.id}: {comparison.model} vs {comparison.claim}"
