"""Locust users of the web planner for ``bench/load.py`` (issue 20, part 3): people moving a
needle (instant previews), loading the page and the catalogue, and running, following and saving
simulations. Every job submitted and every case saved is written to ``$LOAD_LEDGER`` (JSON lines)
so that the bench can check afterwards that none was lost.

Not a test module: run through ``bench/load.py``, which starts the server and reads the results.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time

from locust import HttpUser, between, task

LEDGER = os.environ.get("LOAD_LEDGER", "load-ledger.jsonl")
JOB_TIMEOUT_S = 240.0
_ledger_lock = threading.Lock()


def _note(kind: str, value: str) -> None:
    with _ledger_lock, open(LEDGER, "a", encoding="utf-8") as ledger:
        ledger.write(json.dumps({"kind": kind, "id": value}) + "\n")


class Planner(HttpUser):
    """One physician at the web planner: mostly dragging the needle, now and then a full solve."""

    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.rf = self.client.get("/api/plans/new?template=lumbar-medial-branch&method=rf", name="/api/plans/new").json()["plan"]
        self.block = self.client.get("/api/plans/new?template=lumbar-medial-branch&method=block", name="/api/plans/new").json()["plan"]

    @staticmethod
    def _moved(plan: dict, spread_mm: float) -> dict:
        moved = json.loads(json.dumps(plan))
        moved["placement"]["offset_mm"] = [round(random.uniform(-spread_mm, spread_mm), 2) for _ in range(3)]
        return moved

    def _post(self, path: str, body: dict, name: str):
        """A POST whose 4xx answer is an expected refusal (a tip moved into bone), not a failure; 5xx fails."""
        with self.client.post(path, json=body, name=name, catch_response=True) as answer:
            if answer.status_code >= 500:
                answer.failure(f"{answer.status_code}: {answer.text[:200]}")
            else:
                answer.success()
            return answer

    @task(8)
    def drag_the_needle(self) -> None:
        for _ in range(5):  # a drag sends a preview per move
            self._post("/api/preview", {"plan": self._moved(self.rf, 3.0)}, "/api/preview")

    @task(2)
    def open_the_page(self) -> None:
        self.client.get("/", name="/")
        self.client.get("/api/templates", name="/api/templates")
        self.client.get("/api/cases?limit=20", name="/api/cases")

    @task(1)
    def simulate_and_save(self) -> None:
        plan = self._moved(self.block if random.random() < 0.8 else self.rf, 1.0)
        accepted = self._post("/api/simulate", {"plan": plan}, "/api/simulate")
        if accepted.status_code != 202:
            return
        job_id = accepted.json()["job_id"]
        _note("job", job_id)
        started = time.monotonic()
        while time.monotonic() - started < JOB_TIMEOUT_S:
            job = self.client.get(f"/api/jobs/{job_id}", name="/api/jobs/[id]").json()
            if job["status"] in ("done", "failed", "cancelled"):
                break
            time.sleep(1.0)
        else:
            return  # still queued: the bench's ledger check waits for it after the run
        if job["status"] != "done":
            return
        saved = self._post("/api/cases", {"job_id": job_id, "tags": ["load-test"]}, "/api/cases (save)")
        if saved.status_code in (200, 201):
            _note("case", saved.json()["id"])
            self.client.get(f"/api/cases/{saved.json()['id']}", name="/api/cases/[id]")
