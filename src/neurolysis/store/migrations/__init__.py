"""Alembic migrations of the case store (run in code by ``neurolysis.store.db.migrate``)."""
