"""The plan file contract: fields, units, --set overrides and one-line errors."""

import math
import tomllib

import pytest

from neurolysis.planning.plan import (
    Plan,
    PlacementSpec,
    ProcedureSpec,
    apply_overrides,
    load_plan,
    new_plan,
    parse_override,
    plan_from_dict,
    plan_toml,
)
from neurolysis.validation import ValidationError

ISSUE_PLAN = """
[anatomy]
template = "lumbar-medial-branch"
[target]
nerve = "L4 medial branch"
[procedure]
method = "rf"
gauge = 18
tip_mm = 10
set_temp_c = 80
time_s = 90
[placement]
approach = "parallel"
offset_mm = [0.0, 0.0, 0.0]
[patient]
weight_kg = 70
"""


def test_issue_plan_reads(tmp_path):
    path = tmp_path / "plan.toml"
    path.write_text(ISSUE_PLAN)
    plan = load_plan(path)
    assert plan.anatomy.template == "lumbar-medial-branch"
    assert plan.target.nerve == "L4 medial branch"
    assert plan.procedure.gauge == 18 and plan.procedure.time_s == 90
    assert plan.placement.offset_mm == (0.0, 0.0, 0.0)
    assert plan.patient.weight_kg == 70


def test_set_overrides_any_field(tmp_path):
    path = tmp_path / "plan.toml"
    path.write_text(ISSUE_PLAN)
    plan = load_plan(path, ["placement.offset_mm=[3,0,0]", "procedure.time_s=120", "procedure.method=cooled-rf", "procedure.set_temp_c=60"])
    assert plan.placement.offset_mm == (3.0, 0.0, 0.0)
    assert plan.procedure.time_s == 120 and plan.procedure.method == "cooled-rf"


def test_override_bare_string_and_toml_values():
    assert parse_override("anatomy.template=genicular") == ("anatomy", "template", "genicular")
    assert parse_override("placement.offset_mm=[1, 2.5, -3]") == ("placement", "offset_mm", [1, 2.5, -3])
    assert parse_override('target.nerve="L4 medial branch"') == ("target", "nerve", "L4 medial branch")


def test_overrides_do_not_mutate_input():
    data = {"placement": {"offset_mm": [0, 0, 0]}}
    apply_overrides(data, ["placement.offset_mm=[1,0,0]"])
    assert data["placement"]["offset_mm"] == [0, 0, 0]


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["anatomy.template=spleen"], "anatomy.template = 'spleen'"),
        (["placement.offset_mm=[nan,0,0]"], "placement.offset_mm[0] = nan"),
        (["placement.offset_mm=[1,0]"], "placement.offset_mm"),
        (["placement.offset_mm=[500,0,0]"], "allowed range"),
        (["procedure.gauge=19"], "procedure.gauge = 19"),
        (["procedure.time_s=-5"], "procedure.time_s = -5"),
        (["procedure.method=laser"], "procedure.method = 'laser'"),
        (["procedure.colour=3"], "unknown field 'colour'"),
        (["surgery.x=1"], "unknown section 'surgery'"),
        (["offset=1"], "section.field=value"),
        (["placement.approach=explicit"], "needs placement.tip_mm and placement.direction"),
        (["placement.approach=explicit", "placement.tip_mm=[0,0,0]", "placement.direction=[0,0,0]"], "non-zero"),
        (["placement.tip_mm=[0,0,0]"], "only used with approach = 'explicit'"),
        (["procedure.method=pulsed-rf", "procedure.set_temp_c=80"], "procedure.set_temp_c"),
        (["patient.weight_kg=-70"], "patient.weight_kg = -70"),
        (["simulation.seed=-1"], "simulation.seed"),
    ],
)
def test_bad_plans_fail_with_one_line(tmp_path, overrides, fragment):
    path = tmp_path / "plan.toml"
    path.write_text(ISSUE_PLAN)
    with pytest.raises(ValidationError) as info:
        load_plan(path, overrides)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_malformed_and_missing_files(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[anatomy\ntemplate = ")
    with pytest.raises(ValidationError, match="malformed TOML"):
        load_plan(bad)
    with pytest.raises(ValidationError, match="no such file"):
        load_plan(tmp_path / "absent.toml")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[anatomy]\ntemplate = 'lumbar-medial-branch'\n[needle]\nx = 1\n")
    with pytest.raises(ValidationError, match=r"section \[needle\]"):
        load_plan(unknown)


def test_new_plan_round_trips_through_toml(tmp_path):
    plan = new_plan("lumbar-medial-branch")
    text = plan_toml(plan)
    data = tomllib.loads(text)
    assert data["procedure"] == {"method": "rf", "gauge": 18, "tip_mm": 10.0, "set_temp_c": 80.0, "time_s": 90.0}
    assert data["placement"]["approach"] == "parallel"
    path = tmp_path / "plan.toml"
    path.write_text(text)
    again = load_plan(path)
    assert again.as_dict() == plan.as_dict()


def test_label_map_anatomy_needs_its_map():
    with pytest.raises(ValidationError, match="anatomy.labels_map"):
        plan_from_dict({"anatomy": {"labels": "case.nii.gz"}})
    plan = plan_from_dict({"anatomy": {"labels": "case.nii.gz", "labels_map": "labels.toml"}}, base_dir="/data/case")
    assert plan.anatomy.template is None
    assert str(plan.path(plan.anatomy.labels)) == "/data/case/case.nii.gz"


def test_defaults_are_the_device_defaults():
    s = ProcedureSpec().rf_settings().resolved()
    assert (s.gauge, s.tip_mm, s.set_temp_c, s.time_s) == (18, 10.0, 80.0, 90.0)
    assert Plan().placement == PlacementSpec()
    assert math.isclose(ProcedureSpec(method="cooled-rf").rf_settings().resolved().set_temp_c, 60.0)
