"""Durability of the case store on SQLite and PostgreSQL: concurrent writers, a writer killed mid-save.

The writers are OS processes (``writer.py``), released together on a database with no schema
yet, so they also race to create it.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from neurolysis.store import open_store
from tests.store.conftest import table_counts
from tests.store.writer import concurrent_writer, paused_writer, payload, processes

WRITERS = 8
DISTINCT_PER_WRITER = 4
SHARED = 2


def test_concurrent_writers_lose_nothing_and_duplicate_nothing(store_url, tmp_path):
    """8 processes open a new store at once and save 4 cases each plus 2 that all of them save:
    every distinct case is stored exactly once with its report, and the shared ones carry every
    writer's tag."""
    go = tmp_path / "go"
    names = {w: [f"writer {w} case {i}" for i in range(DISTINCT_PER_WRITER)] + [f"shared case {i}" for i in range(SHARED)] for w in range(WRITERS)}
    context = processes()
    writers = [context.Process(target=concurrent_writer, args=(store_url, str(go), w, names[w], str(tmp_path / f"ids-{w}.json"))) for w in range(WRITERS)]
    for p in writers:
        p.start()
    go.touch()
    for p in writers:
        p.join(timeout=120)
    errors = "\n".join(f.read_text() for f in sorted(tmp_path.glob("ids-*.json.error")))
    assert [p.exitcode for p in writers] == [0] * WRITERS, errors
    ids = [json.loads((tmp_path / f"ids-{w}.json").read_text()) for w in range(WRITERS)]
    distinct = WRITERS * DISTINCT_PER_WRITER + SHARED
    assert len({i for writer_ids in ids for i in writer_ids}) == distinct
    assert len({tuple(writer_ids[-SHARED:]) for writer_ids in ids}) == 1, "every writer got the same ids for the shared content"
    assert table_counts(store_url) == {"cases": distinct, "reports": distinct, "case_tags": WRITERS * DISTINCT_PER_WRITER + SHARED * WRITERS}
    with open_store(store_url) as store:
        cases = store.list()
        assert sorted(c.settings["name"] for c in cases) == sorted({n for writer_names in names.values() for n in writer_names})
        assert all(c.has_report for c in cases)
        for shared_id in ids[0][-SHARED:]:
            assert store.get(shared_id).tags == tuple(sorted(f"w{w}" for w in range(WRITERS)))


@pytest.mark.parametrize("pause_after", ["first-insert", "last-insert"])
def test_writer_killed_mid_save_leaves_no_partial_case(store_url, tmp_path, pause_after):
    """SIGKILL inside the save's transaction (after its first INSERT, or after its last before
    COMMIT): the case is absent, not partial, and the store opens and saves it whole afterwards."""
    with open_store(store_url):
        pass  # the schema exists before the writer starts: only the save is interrupted
    signal_file = tmp_path / "inside-transaction"
    writer = processes().Process(target=paused_writer, args=(store_url, pause_after, str(signal_file)))
    writer.start()
    deadline = time.monotonic() + 60
    while not signal_file.exists():
        assert writer.is_alive(), f"the writer ended (exit code {writer.exitcode}) before its INSERT"
        assert time.monotonic() < deadline, "the writer never reached its INSERT"
        time.sleep(0.01)
    assert signal_file.read_text().upper().startswith("INSERT INTO CASE_TAGS" if pause_after == "last-insert" else "INSERT INTO CASES")
    os.kill(writer.pid, signal.SIGKILL)
    writer.join(timeout=30)
    assert writer.exitcode == -signal.SIGKILL

    assert table_counts(store_url) == {"cases": 0, "reports": 0, "case_tags": 0}
    with open_store(store_url) as store:
        assert store.list() == []
        case = store.save(**payload("killed writer"), tags=["a", "b", "c"])
        assert (case.has_report, case.tags) == (True, ("a", "b", "c"))
    assert table_counts(store_url) == {"cases": 1, "reports": 1, "case_tags": 3}
