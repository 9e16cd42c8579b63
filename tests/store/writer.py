"""The writer processes of the durability tests (test code; run by ``multiprocessing``).

The processes fork from a forkserver that has imported the store once, so eight of them start
in milliseconds instead of importing neurolysis, SQLAlchemy and Alembic eight times; each
opens its own store (its own connections) after the fork.
"""

from __future__ import annotations

import json
import multiprocessing
import time
import traceback
from pathlib import Path


def payload(name: str) -> dict:
    """A small case whose content is ``name``."""
    return {
        "plan_toml": f'# {name}\n[procedure]\nmethod = "block"\n',
        "settings": {"name": name, "volume_ml": 5.0},
        "outcome": {"method": "block", "target": {"nerve": "L4 medial branch", "pain_block": True}},
        "report_html": f"<html><body>{name}</body></html>",
    }


def processes():
    """The multiprocessing context of the writers: a forkserver with the store preloaded."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["neurolysis.store.casestore", "tests.store.writer"])
    return context


def concurrent_writer(url: str, go: str, writer: int, names: list[str], result: str) -> None:
    """Wait for the file ``go``, open the store (creating its schema if no one has yet), save one
    case per name tagged ``w<writer>``, and write their ids to ``result`` as JSON."""
    from neurolysis.store import open_store

    while not Path(go).exists():
        time.sleep(0.002)
    try:
        with open_store(url) as store:
            ids = [store.save(**payload(name), tags=[f"w{writer}"]).id for name in names]
    except BaseException:  # the test shows it: a failed writer's exit code alone says nothing
        Path(result + ".error").write_text(traceback.format_exc())
        raise
    Path(result).write_text(json.dumps(ids))


def paused_writer(url: str, pause_after: str, signal_file: str) -> None:
    """Save one case with three tags but stop inside its transaction, after the first INSERT
    (``first-insert``) or after the last one, before COMMIT (``last-insert``): write the
    statement to ``signal_file`` and sleep until killed."""
    import sqlalchemy as sa

    from neurolysis.store import open_store

    store = open_store(url)

    @sa.event.listens_for(store._engine, "after_cursor_execute")
    def pause(connection, cursor, statement, parameters, context, executemany):
        insert = statement.lstrip().upper()
        if insert.startswith("INSERT") and (pause_after == "first-insert" or insert.startswith("INSERT INTO CASE_TAGS")):
            Path(signal_file + ".tmp").write_text(statement)
            Path(signal_file + ".tmp").rename(signal_file)  # the test sees the whole statement or no file
            time.sleep(600)  # killed here, inside the transaction

    store.save(**payload("killed writer"), tags=["a", "b", "c"])
    raise SystemExit("the writer was not killed")
