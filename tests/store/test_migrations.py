"""Schema migrations on SQLite and PostgreSQL: from an empty database, and from revision 0001
with cases in it (written with the 0001 schema), to the newest revision (0003 adds the web jobs), keeping every case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from neurolysis.store import db, open_store
from neurolysis.validation import ValidationError

REVISIONS = ["0001", "0002", "0003"]

# The 0001 schema as that revision wrote it (not the current tables of neurolysis.store.db).
_OLD = sa.MetaData()
_OLD_CASES = sa.Table(
    "cases", _OLD,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("content_hash", sa.String(64)),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("version", sa.String(32)),
    sa.Column("plan_toml", sa.Text),
    sa.Column("settings", sa.JSON),
    sa.Column("outcome", sa.JSON),
    sa.Column("report_html", sa.Text),
)  # fmt: skip


def _old_rows() -> list[dict]:
    start = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    return [
        {
            "id": f"{n:016x}", "content_hash": f"{n:064x}", "created_at": start + timedelta(hours=n), "version": "0.0.9",
            "plan_toml": f"# plan {n}\n[procedure]\nmethod = \"rf\"    # ünïcode ✓\r\n", "settings": {"n": n, "nested": {"list": [1.5, None, "x"]}},
            "outcome": {"method": "rf", "target": {"pain_block": n % 2 == 0, "relief_months": {"median": 9.5 + n}}},
            "report_html": None if n == 2 else f"<html>report {n}</html>",
        }
        for n in (1, 2, 3)
    ]  # fmt: skip


def test_the_revisions_are_0001_0002_0003():
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(db.alembic_config())
    assert [r.revision for r in reversed(list(script.walk_revisions()))] == REVISIONS
    assert db.head_revision() == REVISIONS[-1]


def test_an_empty_database_gets_the_newest_schema(store_url):
    with open_store(store_url) as store:
        assert store.list() == []
    engine = db.create_engine(store_url)
    try:
        assert db.current_revision(engine) == REVISIONS[-1]
        tables = set(sa.inspect(engine).get_table_names())
        assert {"cases", "reports", "case_tags", "jobs", "alembic_version"} <= tables
        for table in (db.cases, db.jobs):
            assert {c["name"] for c in sa.inspect(engine).get_columns(table.name)} == set(table.c.keys())
    finally:
        engine.dispose()


def test_migration_from_0001_keeps_every_case(store_url):
    """Cases written by the 0001 schema (report in a column) are all there after the upgrade, with
    the same content, time and report; then the store annotates them and saves new cases."""
    engine = db.create_engine(store_url)
    try:
        db.migrate(engine, "0001")
        assert db.current_revision(engine) == "0001"
        with engine.begin() as connection:
            connection.execute(sa.insert(_OLD_CASES), _old_rows())
    finally:
        engine.dispose()

    with open_store(store_url) as store:
        cases = {c.id: c for c in store.list()}
        assert sorted(cases) == [row["id"] for row in _old_rows()]
        for row in _old_rows():
            case = store.get(row["id"])
            assert (case.content_hash, case.created_at, case.version, case.plan_toml, case.settings, case.outcome, case.report_html) == (
                row["content_hash"], row["created_at"], row["version"], row["plan_toml"], row["settings"], row["outcome"], row["report_html"],
            )  # fmt: skip
            assert (case.has_report, cases[row["id"]].has_report) == (row["report_html"] is not None,) * 2
            assert (case.tags, case.notes, case.parent_id) == ((), "", None)
        assert [c.id for c in store.list()] == [row["id"] for row in reversed(_old_rows())], "newest first"
        tagged = store.add_tags(_old_rows()[0]["id"], ["migrated"])
        assert tagged.tags == ("migrated",) and tagged.report_html == _old_rows()[0]["report_html"]
        child = store.save(plan_toml="# changed", settings={}, outcome={}, parent_id=tagged.id)
        assert child.parent_id == tagged.id
    engine = db.create_engine(store_url)
    try:
        assert db.current_revision(engine) == REVISIONS[-1]
    finally:
        engine.dispose()


def test_a_newer_schema_is_refused(store_url):
    open_store(store_url).close()
    engine = db.create_engine(store_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    finally:
        engine.dispose()
    with pytest.raises(ValidationError, match=r"^store = '.*': schema revision '9999' is newer than this version of neurolysis knows \(0003\); upgrade neurolysis$"):
        open_store(store_url)
