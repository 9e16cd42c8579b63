"""Fixtures of the case-store tests: one fresh database per test on each backend, and one solved plan.

``store_url`` runs a test twice: on an SQLite file in the test's temporary folder and on a new
database (random name, dropped afterwards) of the PostgreSQL server that
``scripts/with-postgres.sh`` starts (``make test`` runs pytest through it). Without
``NEUROLYSIS_TEST_POSTGRES_URL`` the PostgreSQL runs skip, unless ``NEUROLYSIS_REQUIRE_POSTGRES=1``:
then they fail.
"""

from __future__ import annotations

import os
import uuid
from functools import cache

import pytest

REQUIRED = os.environ.get("NEUROLYSIS_REQUIRE_POSTGRES") == "1"  # `make test` sets it: in CI a missing server fails, not skips
POSTGRES_URL = os.environ.get("NEUROLYSIS_TEST_POSTGRES_URL")
if REQUIRED:
    import sqlalchemy as sa
else:
    sa = pytest.importorskip("sqlalchemy", reason="the store extra (SQLAlchemy, Alembic, psycopg) is not installed")


def _postgres_database(request) -> str:
    if not POSTGRES_URL:
        if REQUIRED:
            pytest.fail("NEUROLYSIS_REQUIRE_POSTGRES=1 but NEUROLYSIS_TEST_POSTGRES_URL is not set (run through scripts/with-postgres.sh)")
        pytest.skip("no PostgreSQL server: run through scripts/with-postgres.sh (make test does)")
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"neurolysis_t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop():
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    request.addfinalizer(drop)
    return sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """The URL of an empty database (no schema yet) on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cases.db'}"
    return _postgres_database(request)


@cache
def _block_case() -> tuple[str, object]:
    from neurolysis.planning.plan import new_plan, plan_toml
    from neurolysis.planning.simulate import simulate

    plan = new_plan("lumbar-medial-branch", method="block")
    return plan_toml(plan), simulate(plan)


@pytest.fixture
def store(store_url):
    """An open case store on each backend (closed after the test)."""
    from neurolysis.store import open_store

    with open_store(store_url) as opened:
        yield opened


@pytest.fixture(scope="session")
def block_case() -> tuple[str, object]:
    """(plan file text, Outcome) of the default lumbar medial-branch block (about 1 s, solved once)."""
    return _block_case()


def table_counts(url: str) -> dict[str, int]:
    """Rows in every table of the store's schema, read with plain SQL."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return {t: connection.exec_driver_sql(f"SELECT COUNT(*) FROM {t}").scalar_one() for t in ("cases", "reports", "case_tags")}
    finally:
        engine.dispose()
