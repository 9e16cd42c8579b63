"""The database under the case store: tables of the newest schema, the engine, and migrations.

SQLite: write-ahead log flushed at every commit, a 60 s busy timeout, and ``BEGIN IMMEDIATE`` for every writing
transaction (the writer lock is taken at the start, so two writers queue instead of failing
on a lock upgrade). PostgreSQL: psycopg 3, read committed; migrations hold an advisory lock.
The schema is created or brought to the newest Alembic revision under that lock, so any
number of processes may open a new database at once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from neurolysis.validation import ValidationError

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 60.0
POSTGRES_CONNECT_TIMEOUT_S = 10
MIGRATION_LOCK_KEY = 0x6E6575726F6C7973  # "neurolys": PostgreSQL advisory lock held while migrating
WRITE = "neurolysis_write"
"""Execution option of a connection whose transactions write (SQLite: ``BEGIN IMMEDIATE``)."""

metadata = sa.MetaData()

cases = sa.Table(
    "cases", metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("content_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("plan_toml", sa.Text, nullable=False),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("outcome", sa.JSON, nullable=False),
    sa.Column("parent_id", sa.String(16), nullable=True, index=True),
    sa.Column("notes", sa.Text, nullable=False, server_default=""),
)  # fmt: skip

reports = sa.Table(
    "reports", metadata,
    sa.Column("case_id", sa.String(16), sa.ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("html", sa.Text, nullable=False),
)  # fmt: skip

case_tags = sa.Table(
    "case_tags", metadata,
    sa.Column("case_id", sa.String(16), sa.ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("tag", sa.String(64), primary_key=True),
)  # fmt: skip


def utc(moment: datetime) -> datetime:
    """A stored time as timezone-aware UTC (SQLite returns it naive, PostgreSQL in the session's zone)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def now_utc() -> datetime:
    """Now, in UTC, to the microsecond."""
    return datetime.now(UTC)


def _strict_json(value) -> str:
    return json.dumps(value, allow_nan=False)


def _sqlite_events(engine: sa.Engine) -> None:
    """Hand transaction control to SQLAlchemy (the recipe of its SQLite docs), with the journal in WAL."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # sqlite3 emits no BEGIN of its own; ours follows
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")  # the log is flushed at every commit: a saved case survives a power cut
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.get_execution_options().get(WRITE) else "BEGIN")


def create_engine(url: str) -> sa.Engine:
    """An engine for a checked store URL (``location.store_url``); no connection is made yet."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, json_serializer=_strict_json, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        _sqlite_events(engine)
        return engine
    return sa.create_engine(url, json_serializer=_strict_json, connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S})


def alembic_config() -> Config:
    """Alembic's configuration, in code: the packaged migrations, no ini file."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    """The database's schema revision (None: no schema yet)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    """Create the schema or upgrade it to ``revision``, in one transaction under a lock.

    The second of two processes opening a new database waits for the first and then finds the
    schema in place. A revision this version does not know (a newer program wrote the database)
    raises ValidationError."""
    cfg = alembic_config()
    script = ScriptDirectory.from_config(cfg)
    current = current_revision(engine)
    known = {r.revision for r in script.walk_revisions()}
    if current is not None and current not in known:
        raise ValidationError(
            f"store = {engine.url.render_as_string(hide_password=True)!r}: schema revision {current!r} is newer than this version of neurolysis knows ({script.get_current_head()}); upgrade neurolysis"
        )
    target = script.get_current_head() if revision == "head" else revision
    if current == target:
        return
    with engine.connect() as connection:
        connection.execution_options(**{WRITE: True})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, target)


__all__ = ["case_tags", "cases", "create_engine", "current_revision", "head_revision", "metadata", "migrate", "now_utc", "reports", "utc"]
