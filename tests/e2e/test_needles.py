"""Several needles in one plan (issue 18): `plan new --template genicular` writes three lesions,
`simulate --json` gives every target, the territory and each needle; one needle's error names it;
the single-needle form gives the answers it gave before several needles existed (golden numbers
computed by commit e9ca023, the last one without them, with the same coarse settings; the
intercostal cryo entry was recomputed when issue 19 changed the cryo dose on purpose: its
"note" says what it was).

Behaviour on a coarse mesh (``simulation.mesh_refinement=0.7``): the right structure and the
right comparisons, not the verified accuracy.
"""

import json
import tomllib
from pathlib import Path

import pytest

from neurolysis.cli import main
from neurolysis.planning.plan import apply_overrides, new_plan, plan_from_dict, plan_toml
from neurolysis.planning.simulate import simulate
from neurolysis.report.html import _needle_rows
from neurolysis.validation import ValidationError

COARSE = "simulation.mesh_refinement=0.7"
KNEE = ("superomedial genicular nerve", "superolateral genicular nerve", "inferomedial genicular nerve")
GOLDEN = json.loads((Path(__file__).parent / "golden_single_needle.json").read_text(encoding="utf-8"))


def _plan(template: str, target=None, method: str = "rf", extra=()):
    data = tomllib.loads(plan_toml(new_plan(template, target, method=method)))
    return plan_from_dict(apply_overrides(data, [COARSE, *extra]))


def _knee() -> dict:
    """The three-lesion plan with a small placement cohort and 60 s lesions (the checks are of the plan's structure)."""
    return simulate(_plan("genicular", extra=["uncertainty.samples=16", "procedure.time_s=60"])).to_dict()


def test_plan_new_genicular_writes_the_three_standard_needles(tmp_path, capsys):
    assert main(["plan", "new", "--template", "genicular"]) == 0
    data = tomllib.loads(capsys.readouterr().out)
    assert [n["target"] for n in data["needles"]] == list(KNEE) and "placement" not in data
    assert main(["plan", "new", "--template", "genicular", "--target", KNEE[1]]) == 0
    one = tomllib.loads(capsys.readouterr().out)
    assert "needles" not in one and one["target"]["nerve"] == KNEE[1]


def test_three_lesions_give_every_target_the_territory_each_needle_a_cohort_and_a_report_row():
    """One three-lesion solve (the slowest plan here) serves every check of it."""
    d = _knee()
    assert [t["nerve"] for t in d["targets"]] == list(KNEE) and d["target"] == d["targets"][0]
    assert [n["target"] for n in d["needles"]] == list(KNEE)
    tips = [n["tip_mm"] for n in d["needles"]]
    assert min(sum((a - b) ** 2 for a, b in zip(p, q, strict=True)) ** 0.5 for i, p in enumerate(tips) for q in tips[i + 1 :]) > 20.0  # three separate sites
    assert len(d["rf"]["lesions"]) == 3
    t = d["territory"]
    assert [m["nerve"] for m in t["members"]] == list(KNEE) and all(m["treated"] for m in t["members"])
    assert t["untreated_share"] == pytest.approx(0.15, abs=1e-3)
    blocked = all(x["pain_block"] for x in d["targets"])
    assert t["pain_block"] == blocked
    if blocked:  # the territory regrows no sooner than its slowest-but-one nerve and no later than the last
        assert min(x["relief_months"]["median"] for x in d["targets"]) * 0.8 <= t["relief_months"]["median"] <= max(x["relief_months"]["median"] for x in d["targets"]) * 1.2
        ends = t["relief_by_endpoint"]
        assert ends["fifty_percent"]["median"] > ends["complete"]["median"] == t["relief_months"]["median"]
    # the placement cohort moves every needle
    u = d["uncertainty"]
    assert u["samples"] == 16 and 0.0 <= u["p_block"] <= 1.0
    assert [t["nerve"] for t in u["targets"]] == list(KNEE)
    p_each = [t["p_block"] for t in u["targets"]]
    assert u["p_block"] <= min(p_each) + 1e-9  # complete relief needs every nerve blocked
    # the report lists every needle
    rows = _needle_rows(d)
    assert [label for label, _ in rows] == [f"needle {k + 1} ({nerve})" for k, nerve in enumerate(KNEE)]
    assert all(text.startswith("tip [") and "direction [" in text for _, text in rows)


def test_one_needle_more_settings_and_its_error_names_it():
    plan = _plan("genicular", extra=["needles[1].time_s=60"])
    assert plan.needles[1].settings["time_s"] == 60 and "time_s" not in plan.needles[0].settings
    with pytest.raises(ValidationError, match=r"needles\[1\].*offset_mm"):
        simulate(_plan("genicular", extra=["needles[1].offset_mm=[0, 0, 400]"]))


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_single_needle_plans_give_the_answer_they_gave_before_several_needles(case):
    g = GOLDEN[case]
    template, method = case.split("/")
    d = simulate(plan_from_dict(apply_overrides(tomllib.loads(plan_toml(new_plan(template, g["target"], method=method))), g["overrides"]))).to_dict()
    t = d["target"]
    assert t["pain_fibres_killed_fraction"] == pytest.approx(g["pain_fibres_killed_fraction"], abs=1e-9)
    assert t["lesioned_length_mm"] == pytest.approx(g["lesioned_length_mm"], abs=1e-6)
    assert t["relief_months"] == pytest.approx(g["relief_months"], abs=1e-9)
    assert {k: d["lesion"][k] for k in g["lesion"]} == pytest.approx(g["lesion"], rel=1e-6)
    assert d["placement"]["tip_mm"] == pytest.approx(g["tip_mm"], abs=1e-9)
    now = {c["name"]: c for c in d["critical"]}
    for name, c in g["critical"].items():
        assert now[name]["injured"] == c["injured"], name
        if c["peak_temp_c"] is not None:
            assert now[name]["peak_temp_c"] == pytest.approx(c["peak_temp_c"], abs=1e-6), name
