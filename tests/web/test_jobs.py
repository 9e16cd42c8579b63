"""A server that keeps its work: jobs stored across a restart, cancelled with DELETE, and a killed
worker reported, with real solves in real worker processes and a real SQLite store.

- A cancelled running job frees its worker: the job queued behind it runs next.
- A worker killed mid-solve (SIGKILL, as the out-of-memory killer does) fails its job with the
  reason, and the next job runs on a new worker.
- A server stopped with jobs in its queue: the next server on the same store re-queues and runs
  them, and still answers a job finished before the restart (result, report, figure).
"""

from __future__ import annotations

import os
import signal
import time
import warnings
from datetime import UTC, datetime

import pytest

pytest.importorskip("fastapi", reason="the web extra (FastAPI) is not installed")
pytest.importorskip("sqlalchemy", reason="the store extra (SQLAlchemy) is not installed")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's TestClient warns that it wants httpx2 one day
    from fastapi.testclient import TestClient

from neurolysis.planning.plan import new_plan
from neurolysis.store import open_store
from neurolysis.store.jobs import JobRecord
from neurolysis.web.app import create_app
from neurolysis.web.jobs import MAX_STARTS, JobRunner

TEMPLATE = "lumbar-medial-branch"


def block_plan() -> dict:
    return new_plan(TEMPLATE, method="block").as_dict()


def rf_plan() -> dict:
    """The default RF lesion (~10 s of solving): long enough to be caught running."""
    return new_plan(TEMPLATE).as_dict()


def wait_for(client, job_id: str, statuses: tuple[str, ...], timeout_s: float = 120.0) -> dict:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} not {statuses} in {timeout_s} s: {job['status']}")


def gone(pid: int, timeout_s: float = 5.0) -> bool:
    """Whether the process ``pid`` has ended (and been reaped) within ``timeout_s``."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def submit(client, plan: dict) -> str:
    answer = client.post("/api/simulate", json={"plan": plan})
    assert answer.status_code == 202, answer.text
    return answer.json()["job_id"]


def test_cancel_frees_the_worker_and_a_killed_worker_is_reported(tmp_path):
    with TestClient(create_app(str(tmp_path / "cases.db"), workers=1)) as client:
        runner = client.app.state.runner
        slow = submit(client, rf_plan())
        queued = submit(client, block_plan())
        wait_for(client, slow, ("running",))
        assert client.get(f"/api/jobs/{queued}").json()["status"] == "queued", "one worker: the second job waits"

        pid = runner.worker_pids()[slow]
        cancelled = client.delete(f"/api/jobs/{slow}")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert slow not in runner.worker_pids() and gone(pid), "the cancelled job's worker is stopped"
        done = wait_for(client, queued, ("done", "failed"), timeout_s=60)
        assert done["status"] == "done", done["error"]
        assert client.get(f"/api/jobs/{slow}").json()["status"] == "cancelled", "a late message of the stopped worker changes nothing"

        again = client.delete(f"/api/jobs/{slow}")
        assert again.status_code == 409 and again.json()["detail"][0]["loc"] == ["path", "job_id"] and "'cancelled'" in again.json()["detail"][0]["msg"]
        assert client.delete("/api/jobs/0123456789abcdef").status_code == 404

        doomed = submit(client, rf_plan())
        wait_for(client, doomed, ("running",))
        os.kill(runner.worker_pids()[doomed], signal.SIGKILL)
        failed = wait_for(client, doomed, ("failed", "done"), timeout_s=30)
        assert failed["status"] == "failed" and "SIGKILL" in failed["error"], failed["error"]
        after = wait_for(client, submit(client, block_plan()), ("done", "failed"), timeout_s=60)
        assert after["status"] == "done", "the pool recovers: " + str(after["error"])
        stored = client.app.state.store.jobs()
        assert (stored.get(slow).status, stored.get(doomed).status, stored.get(queued).status) == ("cancelled", "failed", "done")


def test_a_restarted_server_finds_its_jobs(tmp_path):
    store = str(tmp_path / "cases.db")
    with TestClient(create_app(store, workers=1)) as client:
        finished = submit(client, block_plan())
        assert wait_for(client, finished, ("done", "failed"))["status"] == "done"
        left = [submit(client, block_plan()) for _ in range(2)]
    with open_store(store) as reopened:
        assert [r.id for r in reopened.jobs().unfinished()] == left, "stopped with two jobs in its queue: both stay unfinished in the store"

    with TestClient(create_app(store, workers=1)) as client:
        assert client.app.state.runner.requeued == left
        before = client.get(f"/api/jobs/{finished}")
        assert before.status_code == 200 and before.json()["status"] == "done" and before.json()["result"]["method"] == "block"
        assert client.get(f"/api/jobs/{finished}/report").text.startswith("<!DOCTYPE html>")
        assert client.get(f"/api/jobs/{finished}/figure.png").content[:8] == b"\x89PNG\r\n\x1a\n"
        for job_id in left:
            job = wait_for(client, job_id, ("done", "failed"), timeout_s=60)
            assert job["status"] == "done", job["error"]
        saved = client.post("/api/cases", json={"job_id": finished})
        assert saved.status_code == 201, "a job finished before the restart can still be saved as a case"


def test_a_job_interrupted_too_often_fails_instead_of_looping(tmp_path):
    with open_store(tmp_path / "cases.db") as store:
        jobs = store.jobs()
        record = JobRecord(id="00000000000000aa", kind="simulate", status="running", created_at=datetime.now(UTC), request={},
                           work={"plan_data": block_plan(), "upload": None}, starts=MAX_STARTS)  # fmt: skip
        jobs.add(record)
        runner = JobRunner(1, store=jobs)
        try:
            runner.start()
            job = runner.get(record.id)
            assert job.status == "failed" and f"{MAX_STARTS} times" in job.error and runner.requeued == []
            assert jobs.get(record.id).status == "failed"
        finally:
            runner.close()
