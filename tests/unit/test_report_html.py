"""The HTML report (neurolysis/report/html.py): sections, escaping, no remote resources,
traffic lights, validation status copied from docs/validation.md, and the atomic write."""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
from importlib.resources import files
from pathlib import Path

import pytest

from neurolysis import output
from neurolysis._catalog import load_catalog
from neurolysis.about import DISCLAIMER
from neurolysis.cli import build_parser, main
from neurolysis.planning.plan import new_plan, plan_toml
from neurolysis.planning.simulate import simulate
from neurolysis.report import command
from neurolysis.report.html import SECTIONS, build_report, check_output_path, traffic_light, write_report
from neurolysis.validation import ValidationError

REPO = Path(__file__).resolve().parents[2]


def cli_has_report() -> bool:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return "report" in sub.choices


needs_cli = pytest.mark.skipif(not cli_has_report(), reason="`report` is not registered in neurolysis.cli yet")


def run_report(argv: list[str]) -> int:
    """``neurolysis report ...`` through the command module's own parser (works before cli.py registers it)."""
    parser = argparse.ArgumentParser(prog="neurolysis report")
    command.add_arguments(parser)
    return command.run(parser.parse_args(argv))


def comparison_from(outcomes: dict, horizon_months: float = 12.0) -> dict:
    """A ``neurolysis compare --json`` dict built from real outcomes (no cohort: P(block) 1 or 0)."""
    methods = []
    for method, out in outcomes.items():
        d = out.to_dict()
        t = d["target"]
        median = t["relief_months"]["median"] if t["relief_months"] else None
        methods.append({
            "method": method, "applicable": True, "reason": None, "p_block": 1.0 if t["pain_block"] else 0.0, "p_block_95ci": None,
            "relief_months": t["relief_months"], "procedures_needed": math.ceil(horizon_months / median) if median else None,
            "motor_deficit": t["motor_deficit"], "critical": [{"name": c["name"], "injured": c["injured"], "p_injury": 1.0 if c["injured"] else 0.0} for c in d["critical"]],
            "burden": {"procedures_in_horizon": math.ceil(horizon_months / median) if median else None}, "wall_time_s": round(out.wall_time_s, 2),
        })  # fmt: skip
    return {"target": next(iter(outcomes.values())).nerve.name, "horizon_months": horizon_months, "methods": methods}


@pytest.fixture(scope="module")
def surgical():
    return simulate(new_plan("intercostal", method="surgical"))


@pytest.fixture(scope="module")
def report(surgical):
    return build_report(surgical)


def test_every_section_in_order_and_the_disclaimer(report):
    ids = re.findall(r'<section id="([a-z-]+)"', report)
    assert ids == list(SECTIONS)
    assert DISCLAIMER in report
    assert 'id="verdict-block">yes<' in report
    assert "no critical structure injured" in report
    assert "Method comparison not run" in report
    assert "No indication named in the plan." in report
    assert "No Monte Carlo cohort" in report and "--monte-carlo" in report


def test_plan_derived_strings_are_escaped(surgical):
    evil = "<script>alert('x')</script>"
    out = dataclasses.replace(surgical, warnings=(evil,))
    page = build_report(out, indication={"name": evil, "category": "<b>c</b>", "evidence": {"grade": "<img src=x onerror=alert(1)>"}, "coverage": [evil], "sources": [evil]})
    assert "<script" not in page.lower()
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "&lt;b&gt;c&lt;/b&gt;" in page


def test_no_remote_resources(report):
    """Self-contained: no script, no link, no import, no remote src/href/url(), figures as data: URIs."""
    lower = report.lower()
    assert "http://" not in lower and "https://" not in lower
    assert "<script" not in lower and "<link" not in lower and "@import" not in lower and "<iframe" not in lower
    srcs = re.findall(r'src="([^"]*)"', report)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r"url\(\s*['\"]?(?!data:)", report)


def test_comparison_of_two_real_methods(surgical):
    block = simulate(new_plan("intercostal", method="block"))
    comparison = comparison_from({"surgical": surgical, "block": block})
    page = build_report(surgical, comparison=comparison)
    assert "Method comparison not run" not in page
    rows = re.findall(r'<tr class="([^"]*)" data-method="([^"]+)">', page)
    assert rows == [("current", "surgical"), ("", "block")]
    assert "surgical (this plan)" in page
    assert f"{100 * comparison['methods'][1]['p_block']:.0f} %" in page


def test_indication_rendered(surgical):
    page = build_report(surgical, indication={"name": "intercostal neuralgia", "category": "neuropathic", "evidence": {"level": "case series"},
                                              "coverage": "not covered here", "typical_outcomes": ["13/13 relieved at 12 months"], "sources": ["Pain Physician 2021"]})  # fmt: skip
    assert 'id="indication-table"' in page and "No indication named" not in page
    for text in ("intercostal neuralgia", "neuropathic", "case series", "not covered here", "13/13 relieved at 12 months", "Pain Physician 2021"):
        assert text in page


def test_traffic_lights(surgical):
    d = {c["name"]: c for c in surgical.to_dict()["critical"]}
    assert traffic_light(d["skin"], None)[0] == "green"  # 25 mm away, 37 C
    assert traffic_light(d["intercostal artery"], None)[0] == "amber"  # the excised segment 0.47 mm from it
    assert traffic_light(d["skin"], 0.02)[0] == "amber"  # injured in 2 % of the cohort
    assert traffic_light(d["skin"] | {"peak_temp_c": 46.0}, None)[0] == "amber"  # rise 9 C of the 16.4 C to 53.4 C
    assert traffic_light(d["skin"] | {"peak_temp_c": 44.0}, None)[0] == "green"
    assert traffic_light(d["skin"] | {"injured": True}, None)[0] == "red"


def test_validation_status_is_copied_from_docs():
    """Every line's check sits in a table row of docs/validation.md whose verdict cell starts with the same verdict."""
    doc = (REPO / "docs" / "validation.md").read_text(encoding="utf-8")
    rows = [r for r in doc.splitlines() if r.startswith("|")]
    cat = load_catalog("validation_status")
    for line in cat["line"]:
        assert line["verdict"] in ("pass", "miss", "verification", "recorded")
        verdicts = [r.strip("|").split("|")[-1].strip().strip("*").lower() for r in rows if line["check"] in r]
        assert any(v.startswith(line["verdict"]) for v in verdicts), (line["check"], verdicts)
        for section in line["section"].split(", "):
            assert re.search(rf"^#+ {re.escape(section)}[. ]", doc, re.MULTILINE), section


def test_template_is_package_data():
    assert files("neurolysis.report").joinpath("templates", "report.html.j2").is_file()
    assert "report/templates/*.j2" in (REPO / "pyproject.toml").read_text(encoding="utf-8")


def test_unwritable_output_path(tmp_path):
    afile = tmp_path / "plain.txt"
    afile.write_text("x")
    for bad in (tmp_path / "missing" / "r.html", tmp_path, afile / "r.html"):
        with pytest.raises(ValidationError) as err:
            check_output_path(bad)
        assert "\n" not in str(err.value) and "output" in str(err.value)
        with pytest.raises(ValidationError):
            write_report("<html></html>", bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.txt"]


def test_write_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "report.html"
    assert write_report("<p>one</p>", target) == target
    assert target.read_text(encoding="utf-8") == "<p>one</p>"

    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output.os, "replace", broken)
    with pytest.raises(ValidationError, match="cannot write"):
        write_report("<p>two</p>", target)
    assert target.read_text(encoding="utf-8") == "<p>one</p>"  # the old report untouched
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary file left


def test_report_command_checks_the_output_before_any_solve(tmp_path, monkeypatch):
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_toml(new_plan("intercostal", method="surgical")))
    monkeypatch.setattr(command, "solve", lambda ctx: pytest.fail("solved before the output path was checked"))
    with pytest.raises(ValidationError, match="does not exist"):
        run_report([str(plan), "-o", str(tmp_path / "nowhere" / "r.html")])
    assert not (tmp_path / "nowhere").exists()


def test_report_command_writes_the_report(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_toml(new_plan("intercostal", method="surgical")))
    assert run_report([str(plan), "-o", str(tmp_path / "r.html"), "--quiet"]) == 0
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and 'id="verdict-block">yes<' in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.toml", "r.html"]


@needs_cli
def test_cli_report(tmp_path, capsys):
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_toml(new_plan("intercostal", method="surgical")))
    assert main(["report", str(plan), "-o", str(tmp_path / "r.html")]) == 0
    assert 'id="summary"' in (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "report written to" in capsys.readouterr().err


@needs_cli
def test_cli_report_bad_output_is_one_line_exit_2(tmp_path, capsys):
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_toml(new_plan("intercostal", method="surgical")))
    assert main(["report", str(plan), "-o", str(tmp_path / "nowhere" / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("neurolysis: error: output = ") and err.count("\n") == 1


def test_indication_named_in_the_plan(surgical):
    """The Outcome JSON's ``indication`` (neurolysis.indications) is read when none is passed: lines with their sources."""
    indications = pytest.importorskip("neurolysis.indications")
    summary = indications.outcome_indication("chest-wall-cancer-pain")
    page = build_report(surgical, indication=summary)
    assert summary["name"] in page.replace("&#39;", "'")
    assert summary["evidence_level"]["text"].split(" ")[0] in page
    key = next(iter(summary["sources"]))
    assert f"{key}: " in page
