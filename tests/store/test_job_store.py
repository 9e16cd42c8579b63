"""The web jobs' table on SQLite and PostgreSQL: a job is stored, changed as it runs, found
unfinished after a stop (oldest first), read back with its result, report and figure, and the
finished ones beyond the newest ``keep`` are pruned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from neurolysis.store.jobs import JobRecord

START = datetime(2026, 12, 5, 10, 0, 0, 123456, tzinfo=UTC)


def record(n: int, status: str = "queued") -> JobRecord:
    return JobRecord(id=f"{n:016x}", kind="simulate", status=status, created_at=START + timedelta(seconds=n), request={"plan": {"n": n}},
                     work={"plan_data": {"target": {"nerve": "L4 medial branch"}}, "upload": None}, plan_toml=f"# plan {n}\n")  # fmt: skip


def test_a_job_runs_stops_and_is_found_again(store):
    jobs = store.jobs()
    for n in (3, 1, 2):
        jobs.add(record(n))
    jobs.update(record(1).id, status="running", starts=1)
    jobs.update(record(2).id, status="done", finished_at=START + timedelta(minutes=1), result={"method": "block", "x": [1.5, None]},
                report_html="<html>ü</html>", figure_png=b"\x89PNG\x00\xff")  # fmt: skip
    assert [r.id for r in jobs.unfinished()] == [record(1).id, record(3).id], "queued or running, oldest first"
    found = jobs.get(record(2).id)
    assert (found.status, found.result, found.report_html, found.figure_png, found.plan_toml) == ("done", {"method": "block", "x": [1.5, None]}, "<html>ü</html>", b"\x89PNG\x00\xff", "# plan 2\n")
    assert found.created_at == START + timedelta(seconds=2) and found.finished_at == START + timedelta(minutes=1), "UTC on both databases"
    assert jobs.get(record(1).id).starts == 1 and jobs.get(record(1).id).work == record(1).work
    assert jobs.get("ffffffffffffffff") is None
    with pytest.raises(ValueError, match=r"job columns \['request'\] cannot change"):
        jobs.update(record(1).id, request={})
    assert store.list() == [], "jobs are not cases"


def test_prune_keeps_the_newest_finished_and_every_unfinished(store):
    jobs = store.jobs()
    for n in range(1, 8):
        jobs.add(record(n))
        if n <= 5:
            jobs.update(record(n).id, status="failed" if n % 2 else "done", finished_at=START + timedelta(minutes=n))
    assert jobs.prune(keep=2) == 3
    assert [n for n in range(1, 8) if jobs.get(record(n).id) is not None] == [4, 5, 6, 7]
    assert jobs.prune(keep=2) == 0
