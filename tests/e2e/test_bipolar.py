"""Bipolar RF in plans and on the command line (issue 18): `procedure.electrodes = "bipolar"` with
[[needles]] in pairs, each pair one lesion with the current between its tips; the `bipolar` reading
(joined, strip width, length, gap); `neurolysis rf --electrodes bipolar --spacing-mm S --json`; the
errors a user meets (odd needles, a pair over two nerves, needles not parallel, one needle).

Coarse meshes and short lesions: structure and comparisons, not the verified accuracy (that is
bench/bipolar.py and docs/validation.md).
"""

import json
import tomllib
from functools import cache
from pathlib import Path

import pytest

from neurolysis.cli import main
from neurolysis.planning.plan import apply_overrides, plan_from_dict
from neurolysis.planning.simulate import prepare, simulate
from neurolysis.validation import ValidationError

STRIP_KEYS = {"joined", "strip_width_mm", "strip_length_mm", "gap_mm", "spacing_mm"}
S1 = "S1 lateral branch"
PAIR_PLAN = Path(__file__).parents[2] / "examples" / "plans" / "sacroiliac-bipolar-pair.toml"


def _plan(upper=1.0, lower=-7.0, second=S1, direction=(0.0, 1.0, 0.0), extra=()):
    """The example pair (examples/plans/sacroiliac-bipolar-pair.toml), short and coarse, with its
    tips' z, the second needle's target and direction changed."""
    data = _pair_data()
    first, other = data["needles"]
    first["tip_mm"][2], other["tip_mm"][2] = upper, lower
    other["target"], other["direction"] = second, list(direction)
    return plan_from_dict(apply_overrides(data, ["procedure.time_s=60", "simulation.mesh_refinement=0.7", *extra]))


def _pair_data() -> dict:
    return tomllib.loads(PAIR_PLAN.read_text(encoding="utf-8"))


@cache
def _pair() -> dict:
    """One bipolar pair 8 mm apart straddling the S1 lateral branch (one solve serves the tests)."""
    return simulate(_plan()).to_dict()


def test_a_pair_across_the_branch_is_one_lesion_with_its_strip():
    d = _pair()
    rf = d["rf"]
    assert rf["electrodes"] == "bipolar" and set(rf["bipolar"]) == STRIP_KEYS
    strip = rf["bipolar"]
    assert strip["spacing_mm"] == pytest.approx(8.0)
    assert strip["joined"] is True and strip["gap_mm"] == 0.0  # 8 mm at 80 C for 60 s with 18 G: joined (Wondra 2024: < 12 mm)
    assert strip["strip_length_mm"] > strip["spacing_mm"] and 0.0 < strip["strip_width_mm"] < strip["strip_length_mm"]
    assert [n["target"] for n in d["needles"]] == [S1, S1]
    assert [n["tip_mm"][2] for n in d["needles"]] == pytest.approx([1.0, -7.0])
    assert len(rf["lesions"]) == 1 and rf["lesions"][0]["partner_tip_mm"][2] == pytest.approx(-7.0) and rf["lesions"][0]["bipolar"] == strip
    assert [t["nerve"] for t in d["targets"]] == [S1]
    assert d["target"]["pain_block"] is True  # the strip crosses the branch between the needles
    json.dumps(d)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"second": "S2 lateral branch"}, r"needles\[1\]\.target = 'S2 lateral branch': the two needles of a bipolar pair .* treat one nerve"),
        ({"direction": (0.0, 1.0, 0.5)}, r"needles\[0\] and needles\[1\] \(a bipolar pair\): bipolar needle angle = 26\.57 deg"),
        ({"lower": 0.0}, r"needles\[0\] and needles\[1\] \(a bipolar pair\): bipolar spacing_mm = 1: allowed range is"),
        ({"extra": ["needles[1].time_s=90"]}, r"needles\[1\]: a bipolar pair shares one generator"),
    ],
)
def test_a_bad_pair_is_refused_before_the_solve_naming_the_needles(kwargs, message):
    extra = kwargs.pop("extra", ())
    with pytest.raises(ValidationError, match=message):
        prepare(_plan(**kwargs, extra=extra))


def test_odd_needles_or_one_needle_are_refused():
    data = _pair_data()
    data["needles"] = data["needles"][:1]
    with pytest.raises(ValidationError, match=r"procedure.electrodes = 'bipolar': needs \[\[needles\]\] in pairs .* the plan has 1 needle"):
        prepare(plan_from_dict(data))
    with pytest.raises(ValidationError, match=r"procedure.electrodes = 'bipolar': not used by method 'cooled-rf'"):
        prepare(plan_from_dict(apply_overrides(data, ["procedure.method=cooled-rf"])))


def test_rf_command_bipolar_json(capsys):
    code = main(["rf", "--electrodes", "bipolar", "--spacing-mm", "6", "--time-s", "30", "--json", "--quiet"])
    assert code == 0
    d = json.loads(capsys.readouterr().out)
    assert d["electrodes"] == "bipolar" and set(d["bipolar"]) == STRIP_KEYS and d["bipolar"]["spacing_mm"] == 6.0
    assert len(d["poses"]) == 2 and d["poses"][1]["tip_mm"] == pytest.approx([6.0, 0.0, 0.0])


def test_rf_command_spacing_needs_bipolar(capsys):
    assert main(["rf", "--spacing-mm", "6", "--json"]) == 2
    assert "spacing_mm = 6: only used with --electrodes bipolar" in capsys.readouterr().err
    assert main(["rf", "--electrodes", "bipolar", "--spacing-mm", "0.5", "--json", "--quiet"]) == 2
    assert "bipolar spacing_mm = 0.5: allowed range is" in capsys.readouterr().err


def test_optimize_moves_a_pair_as_one():
    """The second needle of a pair takes the first's offset and tilt: the pair stays parallel."""
    from neurolysis.optimize import candidate, search_space
    from neurolysis.planning.simulate import prepare as placed

    plan = _plan()
    names = [v.name for v in search_space(plan)]
    assert "needles[0].dx_mm" in names and not any(n.startswith("needles[1].") for n in names)
    ctx = placed(plan)
    poses = [ctx.lesions[0].pose, ctx.lesions[0].partner]
    values = {v.name: (v.low + v.high) / 2 for v in search_space(plan)} | {"needles[0].dx_mm": 2.0, "needles[0].tilt_a_deg": 5.0}
    moved = candidate(plan, poses, values, samples=8)
    first, second = moved.needles[0].placement, moved.needles[1].placement
    assert first.direction == second.direction and first.tip_mm[0] == pytest.approx(12.0) and second.tip_mm[0] == pytest.approx(12.0)
    prepare(moved)  # still a valid pair
