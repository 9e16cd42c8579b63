"""The plan file contract: fields, units, --set overrides and one-line errors."""

import math
import tomllib

import pytest

from neurolysis.methods.rf import rf_settings
from neurolysis.planning.plan import PlacementSpec, Plan, ProcedureSpec, apply_overrides, load_plan, new_plan, parse_override, plan_from_dict, plan_toml
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
        (["patient.age_years=-3"], "patient.age_years = -3"),
        (["patient.age_years=500"], "patient.age_years = 500"),
        (["patient.age_years='old'"], "patient.age_years"),
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
    s = rf_settings(ProcedureSpec()).resolved()
    assert (s.gauge, s.tip_mm, s.set_temp_c, s.time_s) == (18, 10.0, 80.0, 90.0)
    assert Plan().placement == PlacementSpec()
    assert math.isclose(rf_settings(ProcedureSpec(method="cooled-rf")).resolved().set_temp_c, 60.0)


# --- inputs found by the fuzz (tests/fuzz/test_plan_fuzz.py): each fails with one line naming the field


def _one_line(info) -> str:
    message = str(info.value)
    assert message and len(message.splitlines()) == 1, repr(message)
    return message


def test_unknown_key_with_a_control_character_stays_one_line():
    """[anatomy] "\\u001e" = 0.0 (and a section named "\\x85à") printed the key raw: two lines."""
    with pytest.raises(ValidationError) as info:
        plan_from_dict({"anatomy": {"template": "celiac-plexus", "\x1e": 0.0}})
    assert _one_line(info).startswith("anatomy.'\\x1e': unknown field")
    with pytest.raises(ValidationError) as info:
        plan_from_dict({"\x85à": {}})
    assert _one_line(info).startswith("plan section ['\\x85à']: unknown")
    with pytest.raises(ValidationError, match=r"^procedure\.colour: unknown field"):  # a plain name is shown as is
        plan_from_dict({"procedure": {"colour": 1}})


def test_integer_longer_than_python_reads_is_malformed_toml(tmp_path):
    """A 5001-digit integer made tomllib raise ValueError (not TOMLDecodeError): a traceback."""
    path = tmp_path / "plan.toml"
    path.write_text(ISSUE_PLAN + "[simulation]\nseed = 1" + "0" * 5000 + "\n")
    with pytest.raises(ValidationError) as info:
        load_plan(path)
    assert "malformed TOML (an integer of more than 4300 digits)" in _one_line(info)
    path.write_text(ISSUE_PLAN)
    with pytest.raises(ValidationError) as info:
        load_plan(path, ["simulation.seed=1" + "0" * 5000])
    assert _one_line(info).startswith("simulation.seed = 1000") and "an integer of more than 4300 digits" in str(info.value)


def test_arrays_nested_too_deeply_are_malformed_toml(tmp_path):
    """tomllib recurses per nesting level: 600 levels raised RecursionError."""
    path = tmp_path / "plan.toml"
    path.write_text(ISSUE_PLAN.replace("offset_mm = [0.0, 0.0, 0.0]", "offset_mm = " + "[" * 600 + "]" * 600))
    with pytest.raises(ValidationError) as info:
        load_plan(path)
    assert "malformed TOML (arrays or tables nested too deeply)" in _one_line(info)
    path.write_text(ISSUE_PLAN)
    with pytest.raises(ValidationError) as info:
        load_plan(path, ["placement.offset_mm=" + "[" * 600 + "]" * 600])
    assert "nested too deeply" in _one_line(info)


def test_integers_beyond_64_bits_are_refused_with_the_field():
    """--set patient.weight_kg=0xfff... (5000 hex digits): str() of the int raised ValueError in the message."""
    data = apply_overrides(tomllib.loads(ISSUE_PLAN), ["patient.weight_kg=0x" + "f" * 5000])
    with pytest.raises(ValidationError) as info:
        plan_from_dict(data)
    assert _one_line(info) == ("patient.weight_kg = <integer of 19 or more digits>: allowed range is "
                               "[-9223372036854775808, 9223372036854775807] (TOML integers are 64-bit)")  # fmt: skip
    with pytest.raises(ValidationError, match=r"^placement\.offset_mm\[0\] = <integer"):
        plan_from_dict({"placement": {"offset_mm": [2**64, 0, 0]}})


def test_check_number_refuses_integers_beyond_the_float_range():
    from neurolysis.validation import check_number

    with pytest.raises(ValidationError, match=r"^x = <integer of 1329 bits>: must be a finite number$"):
        check_number("x", 10**400)


def test_label_paths_must_be_text():
    """[anatomy] labels = [], labels_map = [0.0, 0.0, 0.0]: Path([]) raised TypeError at --check."""
    with pytest.raises(ValidationError) as info:
        plan_from_dict({"anatomy": {"labels": [], "labels_map": [0.0, 0.0, 0.0]}})
    assert _one_line(info) == "anatomy.labels = []: must be a file path (text), e.g. \"case.nii.gz\""
    with pytest.raises(ValidationError) as info:  # the fuzz's input: the template's huge integer is refused first
        plan_from_dict({"anatomy": {"template": [18446744073709551616, -5.651831240247045e16, -730.1260726167056], "labels_map": [0.0, 0.0, 0.0], "labels": []}})
    _one_line(info)


def test_huge_explicit_direction_is_refused_before_its_norm_overflows():
    """direction = [12696, 1e300, -17281] overflowed numpy's norm (RuntimeWarning) when the pose was built."""
    placement = {"approach": "explicit", "tip_mm": [12696, 10**300, -17281], "direction": [12696, 10**300, -17281]}
    with pytest.raises(ValidationError) as info:  # the fuzz's input: its integers are beyond TOML's 64 bits
        plan_from_dict({"placement": placement})
    _one_line(info)
    placement = {"approach": "explicit", "tip_mm": [12696, 1e300, -17281], "direction": [12696, 1e300, -17281]}
    with pytest.raises(ValidationError) as info:
        plan_from_dict({"placement": placement})
    assert _one_line(info) == "placement.direction[1] = 1e+300: allowed range is [-1e+06, 1e+06]"
    ok = plan_from_dict({"placement": {"approach": "explicit", "tip_mm": [0, 0, 0], "direction": [0, 0, 2]}})
    assert ok.placement.direction == (0.0, 0.0, 2.0)  # a valid direction is kept as given


def test_override_value_is_one_toml_value():
    """--set procedure.time_s='nan\\nx = 1': the NaN message printed the raw text over two lines."""
    section, name, value = parse_override("procedure.time_s=nan\nx = 1")
    assert (section, name, value) == ("procedure", "time_s", "nan\nx = 1")  # not one value: taken as text
    with pytest.raises(ValidationError) as info:
        plan_from_dict(apply_overrides(tomllib.loads(ISSUE_PLAN), ["procedure.time_s=nan\nx = 1"]))
    assert _one_line(info).startswith("procedure.time_s = 'nan\\nx = 1'")
    with pytest.raises(ValidationError, match=r"^procedure\.time_s = nan: must be a finite number$"):
        parse_override("procedure.time_s=nan")


def test_unreadable_plan_path_is_one_line(tmp_path):
    """A plan path longer than the file system allows raised OSError (ENAMETOOLONG)."""
    with pytest.raises(ValidationError) as info:
        load_plan(tmp_path / ("a" * 300 + ".toml"))
    assert "cannot be read (OSError)" in _one_line(info)


def test_seed_within_the_generators_range():
    """simulation.seed = 2**63 - 1 passed --check, then failed in the solve ('seed = ...: allowed range is [0, 4.29497e+09]')."""
    with pytest.raises(ValidationError) as info:
        plan_from_dict({"simulation": {"seed": 2**63 - 1}})
    assert _one_line(info) == "simulation.seed = 9223372036854775807: must be a whole number from 0 to 4294967295"
    assert plan_from_dict({"simulation": {"seed": 2**32 - 1}}).simulation.seed == 2**32 - 1
