"""`neurolysis compare` and `neurolysis optimize` through the real CLI (issue 11, parts 1-2)."""

import json

import pytest

from neurolysis.cli import main
from neurolysis.compare import not_applicable
from neurolysis.decide_cli import print_comparison
from neurolysis.optimize import pareto_front
from neurolysis.planning.plan import plan_from_dict, plan_toml
from tests.plans import one_needle_plan

METHODS = {"rf", "cooled-rf", "pulsed-rf", "chemical", "cryo", "surgical", "block"}


def _plan(tmp_path, template="lumbar-medial-branch", method="rf"):
    path = tmp_path / "plan.toml"
    path.write_text(plan_toml(one_needle_plan(template, method)))
    return path


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("neurolysis: error:") and "\n" not in err, err
    return err


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys):
    plan = _plan(tmp_path)
    assert "template" in _one_line_error(capsys, ["compare", "--template", "nope"])
    assert "target" in _one_line_error(capsys, ["compare", "--template", "celiac-plexus", "--target", "vagus"])
    assert "horizon_months" in _one_line_error(capsys, ["compare", "--template", "celiac-plexus", "--horizon-months", "0"])
    assert "monte_carlo" in _one_line_error(capsys, ["compare", "--template", "celiac-plexus", "--monte-carlo", "0"])
    assert "either" in _one_line_error(capsys, ["compare", str(plan), "--template", "celiac-plexus"])
    assert "methods" in _one_line_error(capsys, ["compare", "--template", "celiac-plexus", "--methods", "rf,laser"])
    assert "--report" in _one_line_error(capsys, ["compare", "--template", "celiac-plexus", "--report", str(tmp_path / "missing" / "r.html")])
    assert "--max-risk" in _one_line_error(capsys, ["optimize", str(plan), "--max-risk", "2"])
    assert "--output" in _one_line_error(capsys, ["optimize", str(plan), "-o", str(tmp_path / "missing" / "best.toml")])
    assert "full_solves = 1" in _one_line_error(capsys, ["optimize", str(plan), "--full-solves", "1"])
    assert "workers" in _one_line_error(capsys, ["compare", "--template", "celiac-plexus", "--workers", "0"])
    assert "--workers" in _one_line_error(capsys, ["compare", "--template", "celiac-plexus", "--workers", "2", "--report", str(tmp_path / "r.html")])
    assert "optimize searches" in _one_line_error(capsys, ["optimize", str(_plan(tmp_path, method="block"))])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.toml"]


def test_methods_that_do_not_apply_have_reasons():
    assert "not neurolytic" in not_applicable("lumbar-medial-branch", "pulsed-rf")
    assert not_applicable("lumbar-medial-branch", "rf") is None
    assert "splanchnic" in not_applicable("celiac-plexus", "surgical")
    for method in ("rf", "chemical", "cryo", "surgical"):
        assert "foot drop" in not_applicable("common-peroneal", method)
    assert not_applicable("common-peroneal", "block") is None


def test_pareto_front_keeps_only_non_dominated():
    class E:
        def __init__(self, p, r):
            self.p_block, self.worst_p_injury = p, r

    evals = [E(0.9, 0.0), E(0.95, 0.02), E(0.8, 0.01), E(0.95, 0.03), E(0.99, 0.1)]
    front = pareto_front(evals)
    assert [(e.p_block, e.worst_p_injury) for e in front] == [(0.9, 0.0), (0.95, 0.02), (0.99, 0.1)]


@pytest.mark.slow
def test_compare_celiac_lists_every_method_and_the_blocks_options_are_simulated(tmp_path, capsys):
    report = tmp_path / "compare.html"
    assert main(["compare", "--template", "celiac-plexus", "--methods", "chemical,surgical,pulsed-rf,block", "--json", "--quiet", "--report", str(report)]) == 0
    d = json.loads(capsys.readouterr().out)
    html = report.read_text(encoding="utf-8")
    assert 'id="comparison"' in html and "splanchnic" in html  # the comparison, with the reason surgery does not apply
    assert d["target"] == "celiac plexus" and d["horizon_months"] == 12.0
    entries = {e["method"]: e for e in d["methods"]}
    assert set(entries) == {"chemical", "surgical", "pulsed-rf", "block"}  # the full set: bench/decide.py and the lumbar test
    assert not entries["pulsed-rf"]["applicable"] and entries["pulsed-rf"]["reason"]
    assert not entries["surgical"]["applicable"] and "splanchnic" in entries["surgical"]["reason"]
    chem = entries["chemical"]
    assert chem["applicable"] and chem["p_block"] == 1.0 and chem["relief_months"]["median"] > 0 and chem["systemic"]
    assert chem["recovery"]["disease_course"]["median_survival_months"] > 0  # the cancer indication's competing end
    assert chem["relief_end"] in ("recovery", "progression", "death")  # issue 19: what ends the plan's relief
    block = entries["block"]
    assert block["anaesthetic_mg"]["per_block"] > 0 and block["procedures_needed"] > 1
    options = {o["method"]: o for o in block["neurolytic_options"]}
    assert options["chemical"]["relief_months"] == chem["relief_months"]  # from the simulation, not a typical length
    assert "pulsed-rf" not in options and "surgical" not in options


def test_compare_in_two_processes_gives_the_same_answer(capsys):
    """issue 20: --workers 2 solves the methods in two spawned processes; only the wall times differ."""
    answers = []
    for workers in ("1", "2"):
        assert main(["compare", "--template", "lumbar-medial-branch", "--methods", "surgical,block,pulsed-rf", "--workers", workers, "--json", "--quiet"]) == 0
        d = json.loads(capsys.readouterr().out)
        answers.append([{k: v for k, v in e.items() if k != "wall_time_s"} for e in d["methods"]])
    assert {e["method"] for e in answers[0]} == {"pulsed-rf", "surgical", "block"} and all(e["simulated"] for e in answers[0] if e["applicable"])
    assert answers[0] == answers[1]


@pytest.mark.slow
def test_compare_lumbar_plan_with_monte_carlo(tmp_path, capsys):
    plan = _plan(tmp_path)
    plan.write_text(plan.read_text(encoding="utf-8").replace("mesh_refinement = 1.0", "mesh_refinement = 0.7"), encoding="utf-8")  # behaviour, not accuracy
    chosen = {"rf", "chemical", "block"}  # each kind of cohort: moved RF fields, a bolus, a block without a placement spread
    assert main(["compare", str(plan), "--monte-carlo", "16", "--methods", ",".join(sorted(chosen)), "--json", "--quiet"]) == 0
    d = json.loads(capsys.readouterr().out)
    rf = next(e for e in d["methods"] if e["method"] == "rf")
    assert rf["uncertainty"]["samples"] == 16 and 0 <= rf["p_block"] <= 1 and len(rf["p_block_95ci"]) == 2
    assert all({"name", "injured", "p_injury"} <= set(c) for c in rf["critical"])
    assert {e["method"] for e in d["methods"]} == chosen and all(e["uncertainty"]["samples"] == 16 for e in d["methods"])
    print_comparison(d)  # the table of the same result
    table = capsys.readouterr().out
    assert "Methods at the L4 medial branch" in table and "research and education tool" in table


@pytest.mark.slow
def test_optimize_is_reproducible_and_its_best_plan_runs(tmp_path, capsys):
    plan = _plan(tmp_path)
    text = plan.read_text(encoding="utf-8")
    assert "time_s = 90" in text and "mesh_refinement = 1.0" in text
    # a lesion short of the best score (the search has work to do), on a coarser mesh (behaviour, not accuracy)
    plan.write_text(text.replace("time_s = 90", "time_s = 60").replace("mesh_refinement = 1.0", "mesh_refinement = 0.7"), encoding="utf-8")
    argv = ["optimize", str(plan), "--budget", "8", "--full-solves", "2", "--samples", "8", "--json", "--quiet", "-o", str(tmp_path / "best.toml"), "--plot", str(tmp_path / "front.png")]
    assert main(argv) == 0
    a = json.loads(capsys.readouterr().out)
    assert 5 <= a["n_evaluations"] <= 8 and a["best"]["feasible"] and a["best"]["worst_p_injury"] <= a["max_risk"]
    kinds = [e["solve"] for e in a["evaluations"]]
    assert a["n_full_solves"] == kinds.count("full") <= 2 and kinds.count("moved") >= 3 and a["best"]["solve"] == "full"
    assert len(a["moved_checks"]) == kinds.count("full") - 1 and all(c["moved"]["score"] > a["baseline"]["score"] for c in a["moved_checks"])
    assert a["best"]["score"] >= a["baseline"]["score"]
    assert (tmp_path / "front.png").stat().st_size > 10_000
    best = plan_from_dict(a["best_plan"])
    assert best.placement.approach == "explicit"
    assert main(["simulate", str(tmp_path / "best.toml"), "--check", "--quiet"]) == 0
    capsys.readouterr()
    assert main(argv) == 0
    b = json.loads(capsys.readouterr().out)
    assert [e["score"] for e in b["evaluations"]] == [e["score"] for e in a["evaluations"]]
