"""The case store (issue 12): plans, settings, outcomes and reports kept in SQLite or PostgreSQL.

    from neurolysis.store import open_store, save_outcome
    with open_store("cases.db") as store:          # or sqlite:///PATH, postgresql+psycopg://..., None
        case = save_outcome(store, outcome, plan_text, tags=["cohort-a"])
        store.get(case.id[:6]).outcome["target"]["pain_block"]

Needs the ``store`` extra (SQLAlchemy, Alembic, psycopg, platformdirs). This package imports
nothing heavy itself: the names below load their module on first use, so ``neurolysis.cli``
can import ``neurolysis.store.command`` without the extra. See docs/store.md.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Case": "neurolysis.store.case",
    "default_store_location": "neurolysis.store.location",
    "CaseStore": "neurolysis.store.casestore",
    "open_store": "neurolysis.store.casestore",
    "save_outcome": "neurolysis.store.casestore",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
