"""``neurolysis simulate --save`` and ``neurolysis cases ...`` end to end on a block plan (about 1 s
to solve), on SQLite and PostgreSQL: JSON contracts, exports, and one-line errors (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neurolysis.cli import main
from neurolysis.planning.plan import new_plan, plan_toml
from tests.store.conftest import table_counts


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("plan") / "block.toml"
    path.write_text(plan_toml(new_plan("lumbar-medial-branch", method="block")) + "# written by hand \u2713\n", encoding="utf-8")
    return path


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exit_:  # argparse refusing an argument
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("neurolysis: error: "), err
    return lines[0]


def test_simulate_save_then_list_show_export_tag_note_delete(capsys, store_url, plan_file, tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROLYSIS_STORE", store_url)  # every command below reads the store from the environment
    status, out, err = _run(capsys, "simulate", str(plan_file), "--save", "--tag", "t", "--tag", "cohort", "--note", "first", "--json", "--quiet")
    assert status == 0
    outcome = json.loads(out)  # stdout is exactly one JSON object: the outcome
    assert outcome["method"] == "block"
    case_id = err.split("neurolysis: saved case ", 1)[1].split()[0]
    assert len(case_id) == 16 and err.strip().endswith(store_url.split("://")[0] + "://" + store_url.split("://")[1])

    status, out, _ = _run(capsys, "cases", "list", "--json")
    listed = json.loads(out)
    assert status == 0 and [c["id"] for c in listed["cases"]] == [case_id]
    assert listed["cases"][0]["tags"] == ["cohort", "t"] and listed["cases"][0]["has_report"] is True and "report_html" not in listed["cases"][0]

    status, out, _ = _run(capsys, "cases", "show", case_id[:6], "--json")
    shown = json.loads(out)
    assert status == 0 and shown["id"] == case_id and shown["notes"] == "first"
    assert shown["plan_toml"] == plan_file.read_text(encoding="utf-8") and shown["outcome"] == outcome

    status, out, _ = _run(capsys, "cases", "show", case_id)
    assert status == 0 and case_id in out and "# written by hand \u2713" in out and "pain conduction blocked" in out

    status, out, _ = _run(capsys, "cases", "list", "--tag", "t")
    assert status == 0 and case_id in out and "temporary" in out

    (tmp_path / "out").mkdir()
    export = tmp_path / "out" / "exported"
    status, out, _ = _run(capsys, "cases", "export", case_id, "-o", str(export), "--json")
    assert status == 0 and json.loads(out) == {"case": case_id, "directory": str(export), "files": ["case.json", "outcome.json", "plan.toml", "report.html", "settings.json"]}
    assert (export / "plan.toml").read_bytes() == plan_file.read_bytes()
    assert json.loads((export / "outcome.json").read_text()) == outcome
    assert json.loads((export / "settings.json").read_text()) == outcome["settings"]
    assert json.loads((export / "case.json").read_text())["content_hash"].startswith(case_id)
    assert "<html" in (export / "report.html").read_text(encoding="utf-8")[:200].lower()
    assert sorted(p.name for p in export.parent.iterdir()) == ["exported"], "no staging folder left behind"
    status, _, err = _run(capsys, "cases", "export", case_id, "-o", str(export))
    assert status == 2 and "output = " in _one_error_line(err) and "not an empty folder" in err

    status, out, _ = _run(capsys, "cases", "tag", case_id, "reviewed", "--json")
    assert status == 0 and json.loads(out)["tags"] == ["cohort", "reviewed", "t"]
    status, out, _ = _run(capsys, "cases", "note", case_id, "second look", "--json")
    assert status == 0 and json.loads(out)["notes"] == "second look" and json.loads(out)["outcome"] == outcome

    status, out, _ = _run(capsys, "simulate", str(plan_file), "--save", "--parent", case_id, "--set", "procedure.volume_ml=3", "--quiet")
    assert status == 0
    status, out, _ = _run(capsys, "cases", "list", "--json")
    child = json.loads(out)["cases"][0]
    assert child["parent_id"] == case_id and child["settings"]["procedure"]["volume_ml"] == 3

    status, out, _ = _run(capsys, "cases", "delete", case_id, "--json")
    assert status == 0 and json.loads(out) == {"deleted": case_id, "store": json.loads(out)["store"]}
    status, _, err = _run(capsys, "cases", "show", case_id)
    assert status == 2 and _one_error_line(err).startswith(f"neurolysis: error: case = '{case_id}': not found in ")
    assert table_counts(store_url) == {"cases": 1, "reports": 1, "case_tags": 0}


def test_refused_input_stores_nothing(capsys, store_url, plan_file, tmp_path):
    """A refused plan, an unknown parent, an unknown id: one line naming the field, exit 2, no case."""
    status, _, err = _run(capsys, "simulate", str(plan_file), "--save", "--store", store_url, "--set", "procedure.volume_ml=-1")
    assert status == 2 and "procedure.volume_ml = -1" in _one_error_line(err)
    status, _, err = _run(capsys, "simulate", str(plan_file), "--save", "--store", store_url, "--parent", "abcdef12", "--quiet", "--json")
    assert status == 2 and _one_error_line(err).startswith("neurolysis: error: parent_id = 'abcdef12': not found in ")
    status, _, err = _run(capsys, "cases", "show", "0123456789abcdef", "--store", store_url)
    assert status == 2 and _one_error_line(err).startswith("neurolysis: error: case = '0123456789abcdef': not found in ")
    assert table_counts(store_url) == {"cases": 0, "reports": 0, "case_tags": 0}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--store", "/no/such/folder/cases.db"],
            "argument --store: store = '/no/such/folder/cases.db': directory '/no/such/folder' does not exist; allowed: a file path, sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB",
        ),
        (["--store", "mysql://u@h/db"], "argument --store: store = 'mysql://u@h/db': unknown kind of database 'mysql'"),
        (["--store", "postgresql://u:secret@h/db"], "argument --store: store = 'postgresql://u:***@h/db': PostgreSQL goes through the psycopg 3 driver"),
        (["--store", "sqlite://"], "argument --store: store = 'sqlite://': an in-memory or URI database keeps nothing"),
        (["--tag", "a,b"], "argument --tag: tag = 'a,b': allowed"),
        (["--parent", "nothex"], "argument --parent: parent_id = 'nothex': allowed"),
    ],
)
def test_bad_save_options_fail_before_the_solve(capsys, plan_file, argv, message):
    start = time.perf_counter()
    status, out, err = _run(capsys, "simulate", str(plan_file), "--save", *argv)
    assert time.perf_counter() - start < 1.0, "refused before any solve"
    assert (status, out) == (2, "")
    assert message in _one_error_line(err) and "secret" not in err


def test_a_store_that_cannot_be_opened_is_one_line(capsys, tmp_path):
    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("not SQLite " * 100)
    status, _, err = _run(capsys, "cases", "list", "--store", str(not_a_database))
    assert (
        status == 2
        and _one_error_line(err)
        == f"neurolysis: error: store = 'sqlite:///{not_a_database}': the file is not an SQLite database; allowed: a file path, sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB"
    )
    status, _, err = _run(capsys, "cases", "list", "--store", "postgresql+psycopg://nobody:pw@127.0.0.1:1/none")
    assert status == 2 and _one_error_line(err).startswith("neurolysis: error: store = 'postgresql+psycopg://nobody:***@127.0.0.1:1/none': cannot open (")


def test_the_cli_imports_no_database_library_and_names_the_missing_extra(tmp_path):
    """With SQLAlchemy, Alembic and psycopg unimportable, the CLI still starts (it imports them only
    when the store is opened) and says in one line which extra to install."""
    without = "import sys; sys.modules.update(dict.fromkeys(('sqlalchemy', 'alembic', 'psycopg'))); from neurolysis.cli import main; sys.exit(main(sys.argv[1:]))"
    run = subprocess.run([sys.executable, "-c", without, "cases", "list", "--store", str(tmp_path / "c.db")], capture_output=True, text=True, encoding="utf-8")
    assert (run.returncode, run.stdout, run.stderr) == (2, "", "neurolysis: error: the case store needs the store extra: pip install 'neurolysis[store]'\n")


def test_check_save_refuses_before_the_solve(plan_file, tmp_path, monkeypatch):
    """``check_save`` (for ``simulate`` to call before solving): annotations without --save, a
    store from $NEUROLYSIS_STORE that cannot be opened, an unknown parent."""
    from neurolysis.cli import build_parser
    from neurolysis.store.command import check_save
    from neurolysis.validation import ValidationError

    def check(*options: str) -> None:
        check_save(build_parser().parse_args(["simulate", str(plan_file), *options]))

    with pytest.raises(ValidationError, match=r"^--tag = \['x'\]: allowed only with --save$"):
        check("--tag", "x")
    monkeypatch.setenv("NEUROLYSIS_STORE", "/no/such/folder/cases.db")
    with pytest.raises(ValidationError, match=r"^store = '/no/such/folder/cases.db': directory '/no/such/folder' does not exist"):
        check("--save")
    monkeypatch.setenv("NEUROLYSIS_STORE", str(tmp_path / "cases.db"))
    with pytest.raises(ValidationError, match=r"^parent_id = 'abcdef': not found in sqlite:///"):
        check("--save", "--parent", "abcdef")
    check("--save")
    check()
