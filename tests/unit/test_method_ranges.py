"""The ranges `neurolysis methods --json` publishes (and the web form uses) are the ones the plan checks enforce."""

import math

import pytest

from neurolysis.methods import METHODS, method_names, method_summary
from neurolysis.planning.plan import new_plan, plan_from_dict
from neurolysis.validation import ValidationError

TEMPLATE = {"block": "lumbar-medial-branch", "surgical": "genicular"}


def _cases():
    for method in method_names():
        summary = method_summary(method)
        for name, r in summary["ranges"].items():
            yield method, name, r


def _plan_with(method: str, name: str, value):
    data = new_plan(TEMPLATE.get(method, "lumbar-medial-branch"), method=method).as_dict()
    data["procedure"][name] = [["freeze", value]] if name == "cycles" else value
    return plan_from_dict(data)


@pytest.mark.parametrize(("method", "name", "r"), list(_cases()), ids=lambda v: v if isinstance(v, str) else "")
def test_values_outside_the_published_range_are_refused_naming_the_field(method, name, r):
    step = 1 if isinstance(r["high"], int) and isinstance(r["low"], int) else max(1e-6, 1e-3 * (r["high"] - r["low"]))
    for outside in (r["high"] + step, r["low"] if not r["low_inclusive"] else r["low"] - step):
        with pytest.raises(ValidationError, match=rf"{name}"):
            _plan_with(method, name, outside)


@pytest.mark.parametrize(("method", "name", "r"), list(_cases()), ids=lambda v: v if isinstance(v, str) else "")
def test_the_published_high_is_accepted_by_the_fields_own_check(method, name, r):
    """At the high end the field's own range check passes (another check may still refuse the plan, never naming this range)."""
    try:
        _plan_with(method, name, r["high"])
    except ValidationError as error:
        assert f"{name} = " not in str(error) or "must be" not in str(error), error


def test_every_number_field_has_a_unit_and_a_range():
    for method in method_names():
        summary = method_summary(method)
        for f in METHODS[method].fields:
            if f.number:
                assert f.name in summary["ranges"] and summary["units"].get(f.name), (method, f.name)
                assert math.isfinite(summary["ranges"][f.name]["high"])


def test_a_concentration_range_follows_the_agent():
    moved = method_summary("chemical")["ranges_by_choice"]["concentration_pct"]["agent"]
    assert moved["phenol-water"][1] < moved["ethanol"][1]
    with pytest.raises(ValidationError, match="concentration_pct"):
        data = new_plan("lumbar-medial-branch", method="chemical").as_dict()
        data["procedure"] |= {"agent": "phenol-water", "concentration_pct": moved["phenol-water"][1] + 0.1}
        plan_from_dict(data)
