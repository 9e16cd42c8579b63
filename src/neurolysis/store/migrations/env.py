"""Alembic environment: online only, on the connection ``neurolysis.store.db.migrate`` opened and
locked (passed as ``config.attributes["connection"]``); that caller commits."""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the case store migrates in code: neurolysis.store.db.migrate(engine)")
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
