"""The database under the case store: tables of the newest schema, the engine, and migrations.

SQLite: write-ahead log flushed at every commit, a 60 s busy timeout, and ``BEGIN IMMEDIATE`` for every writing
transaction (the writer lock is taken at the start, so two writers queue instead of failing
on a lock upgrade). PostgreSQL: psycopg 3, read committed; migrations hold an advisory lock.
The schema is created or brought to the newest Alembic revision under that lock, so any
number of processes may open a new database at once.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from neurolysis.validation import ValidationError

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 60.0
POSTGRES_CONNECT_TIMEOUT_S = 10
MIGRATION_LOCK_KEY = 0x6E6575726F6C7973  # "neurolys": PostgreSQL advisory lock held while migrating
WRITE_ATTEMPTS = 30
"""Tries of one writing transaction: a lost race on a unique key, a lock or a deadlock is retried."""
_TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock not available
_TRANSIENT_SQLITE = ("database is locked", "database table is locked", "database schema has changed")
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


jobs = sa.Table(
    "jobs", metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("starts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("request", sa.JSON, nullable=False),
    sa.Column("work", sa.JSON, nullable=False),
    sa.Column("plan_toml", sa.Text, nullable=True),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("report_html", sa.Text, nullable=True),
    sa.Column("figure_png", sa.LargeBinary, nullable=True),
)  # fmt: skip
"""The web planner's jobs (``neurolysis.store.jobs``); ``work`` holds the arguments that run it again."""


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


def _transient(error: DBAPIError) -> bool:
    """A failure that a new try of the same transaction may not meet (locks, deadlocks, serialization)."""
    if getattr(error.orig, "sqlstate", None) in _TRANSIENT_SQLSTATES:
        return True
    return isinstance(error, OperationalError) and any(s in str(error.orig).lower() for s in _TRANSIENT_SQLITE)


class Transactions:
    """Reading and writing transactions on one engine; ``url`` is its URL with any password masked."""

    def __init__(self, engine: sa.Engine):
        self._engine = engine
        self.url = engine.url.render_as_string(hide_password=True)

    def _write(self, work: Callable[[sa.Connection], object]):
        """Run ``work`` in one writing transaction; retried on a lost race, a lock or a deadlock."""
        for attempt in range(WRITE_ATTEMPTS):
            try:
                with self._engine.connect() as connection:
                    connection.execution_options(**{WRITE: True})
                    with connection.begin():
                        return work(connection)
            except IntegrityError:  # another writer stored the same key first: the next try sees it
                if attempt == WRITE_ATTEMPTS - 1:
                    raise
            except DBAPIError as error:
                if not _transient(error) or attempt == WRITE_ATTEMPTS - 1:
                    raise
                time.sleep(min(1.0, 0.01 * 2**attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    def _read(self, work: Callable[[sa.Connection], object]):
        with self._engine.connect() as connection, connection.begin():
            return work(connection)


__all__ = ["Transactions", "case_tags", "cases", "create_engine", "current_revision", "head_revision", "jobs", "metadata", "migrate", "now_utc", "reports", "utc"]
