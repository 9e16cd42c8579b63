"""`neurolysis indications` and the plan's [indication] section through the real command line."""

import json

from neurolysis.cli import main

ERROR = "neurolysis: error: "


def _run(argv, capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr); an argparse usage error (SystemExit) gives its code."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


def _plan(tmp_path, capsys, *argv: str, extra: str = "") -> str:
    code, out, _ = _run(["plan", "new", *argv], capsys)
    assert code == 0
    path = tmp_path / "plan.toml"
    path.write_text(out + extra)
    return str(path)


def test_indications_json_lists_peroneal_decompression(capsys):
    code, out, _ = _run(["indications", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["disclaimer"] == "research and education tool, not for clinical decisions"
    peroneal = next(i for i in data["indications"] if i["id"] == "peroneal-entrapment")
    assert peroneal["category"] == "entrapment" and peroneal["templates"] == ["common-peroneal"]
    assert "decompression" in peroneal["treatment"][0]["text"].lower() and peroneal["methods"] == []
    assert {"rf", "chemical", "cryo", "surgical"} <= set(peroneal["not_appropriate"])


def test_indications_table_and_template_filter(capsys):
    code, out, _ = _run(["indications"], capsys)
    assert code == 0 and "lumbar-facet-pain" in out and "peroneal-entrapment" in out
    code, out, _ = _run(["indications", "--json", "--template", "celiac-plexus"], capsys)
    assert code == 0 and [i["id"] for i in json.loads(out)["indications"]] == ["pancreatic-cancer-pain"]


def test_indications_unknown_template_exits_2_one_line(capsys):
    code, out, err = _run(["indications", "--template", "nope"], capsys)
    assert code == 2 and out == ""
    assert err.startswith(ERROR) and err.count("\n") == 1 and "nope" in err


def test_unknown_indication_in_plan_check_exits_2_one_line(tmp_path, capsys):
    path = _plan(tmp_path, capsys, "--template", "intercostal", "--method", "surgical", extra='\n[indication]\nname = "unknown"\n')
    code, out, err = _run(["simulate", path, "--check"], capsys)
    assert code == 2 and out == ""
    assert err.startswith(ERROR + "indication.name = 'unknown': allowed values are ") and err.count("\n") == 1
    code, _, err = _run(["simulate", path, "--check", "--set", "indication.name=chest-wall-cancer-pain"], capsys)
    assert code == 0, err


def test_valid_indication_in_simulate_json(tmp_path, capsys):
    path = _plan(tmp_path, capsys, "--template", "intercostal", "--method", "surgical", extra='\n[indication]\nname = "chest-wall-cancer-pain"\n')
    code, out, err = _run(["simulate", path, "--json", "--quiet"], capsys)
    assert code == 0, err
    d = json.loads(out)
    ind = d["indication"]
    assert ind["id"] == "chest-wall-cancer-pain" and ind["category"] == "cancer"
    assert ind["evidence"] and ind["coverage"] and ind["typical_outcomes"] and ind["sources"]
    assert all(line["tag"] in ("READ", "READ-2nd", "DERIVED", "UNVERIFIED") for line in ind["coverage"])
    assert d["settings"]["indication"] == {"name": "chest-wall-cancer-pain"}
    assert not any("FOOT DROP" in w for w in d["warnings"])
    code, out, _ = _run(["simulate", path, "--json", "--quiet", "--set", 'indication.name="post-thoracic-surgery-cryo"'], capsys)
    assert code == 0 and any("is not appropriate for indication 'post-thoracic-surgery-cryo'" in w for w in json.loads(out)["warnings"])


def test_plan_without_indication_has_null_indication(tmp_path, capsys):
    path = _plan(tmp_path, capsys, "--template", "intercostal", "--method", "surgical")
    assert "[indication]" not in (tmp_path / "plan.toml").read_text()
    code, out, _ = _run(["simulate", path, "--json", "--quiet"], capsys)
    assert code == 0 and json.loads(out)["indication"] is None


def test_rf_on_common_peroneal_warns_foot_drop(tmp_path, capsys):
    """A short RF lesion on the common peroneal template (~15 s): warned whether or not the plan names an indication."""
    path = _plan(tmp_path, capsys, "--template", "common-peroneal", "--method", "rf")
    code, out, err = _run(["simulate", path, "--json", "--set", "procedure.time_s=30"], capsys)
    assert code == 0, err
    warnings = json.loads(out)["warnings"]
    assert any(w.startswith("FOOT DROP RISK: this rf plan") for w in warnings)
    assert "neurolysis: warning: FOOT DROP RISK" in err
    assert json.loads(out)["indication"] is None
