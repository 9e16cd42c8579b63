"""Jobs off the request thread: simulations and comparisons in worker processes, with progress,
kept in the case store's database so that a restarted server finds them.

A :class:`JobRunner` owns a :class:`~neurolysis.web.workers.WorkerPool` (``spawn``ed processes,
one BLAS thread each) whose dispatcher thread reports each job's start, progress and end. A job
is a frozen :class:`Job`; the registry replaces it on every change, under a lock, and writes the
change to the :class:`~neurolysis.store.jobs.JobStore` when there is one (not the progress). A
server that starts re-queues the jobs its predecessor left queued or running (a job interrupted
``MAX_STARTS`` times fails instead); a finished job is read back from the store when it has
left memory. Finished jobs are kept in memory (newest ``KEEP_FINISHED``) with their result, the
HTML report and the figure, since an Outcome (with its field samplers) cannot leave the worker;
the store keeps the newest ``KEEP_STORED``.

The solvers are imported inside the worker functions: the server process never loads them.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from neurolysis.store.jobs import JobRecord
from neurolysis.web.workers import WorkerPool

KEEP_FINISHED = 32
"""Finished jobs kept in memory (oldest dropped first); each holds a report of ~0.3-2 MB."""
KEEP_STORED = 200
"""Finished jobs kept in the store (oldest deleted first)."""
MAX_STARTS = 3
"""A job whose server stopped under it this many times is failed, not re-queued again."""
STATUSES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")
KINDS = ("simulate", "compare")
LOG = logging.getLogger("neurolysis.web")


@dataclass(frozen=True)
class Job:
    """One job: ``kind`` simulate | compare; ``status`` queued | running | done | failed | cancelled;
    ``progress`` 0-1; ``starts`` how often a worker took it up (more than 1 after a restart); ``request`` what was asked (the plan's sections, Monte Carlo N, comparison
    options); ``plan_toml`` the plan as a TOML file (simulate); ``result`` the ``simulate --json``
    outcome or the ``compare --json`` dict; ``report_html``/``figure_png`` of a simulation."""

    id: str
    kind: str
    request: dict
    created_s: float
    status: str = "queued"
    progress: float = 0.0
    plan_toml: str | None = None
    result: dict | None = None
    error: str | None = None
    report_html: str | None = field(default=None, repr=False)
    figure_png: bytes | None = field(default=None, repr=False)
    finished_s: float | None = None
    starts: int = 0

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def warm_worker() -> None:
    """Import the solvers and the report in a new worker, so that its first job does not wait for them."""
    import neurolysis.compare
    import neurolysis.planning.simulate
    import neurolysis.report.anatomy_figures
    import neurolysis.report.html  # noqa: F401


def _hidden(text: str, upload: dict | None) -> str:
    """``text`` with the upload's folder written ``upload:<id>/`` (see :meth:`neurolysis.web.uploads.Upload.hide`)."""
    if upload is None:
        return text
    folder, shown = upload["folder"], f"upload:{upload['id']}"
    return text.replace(folder + os.sep, shown + "/").replace(folder, shown)


def _shown_result(result: dict, upload: dict | None) -> dict:
    if upload is None:
        return result
    if isinstance(result.get("settings"), dict):
        result["settings"]["anatomy"] = upload["anatomy"]
    return json.loads(_hidden(json.dumps(result, ensure_ascii=False), upload))


def simulate_in_worker(plan_data: dict, upload: dict | None = None, *, progress: Callable[[float], None]) -> dict:
    """Validate, solve, and render a plan in a worker: the outcome JSON, the HTML report and the figure (PNG bytes).
    ``upload``: a plan on an uploaded scan, ``{id, folder, anatomy}`` (its files are read in ``folder``;
    the outcome's settings show ``anatomy`` as the client wrote it, and no path of the folder is returned)."""
    from neurolysis.planning.plan import plan_from_dict
    from neurolysis.planning.simulate import prepare, solve
    from neurolysis.report.anatomy_figures import plot_outcome
    from neurolysis.report.html import build_report

    progress(0.0)
    plan = plan_from_dict(plan_data, base_dir=upload["folder"] if upload else ".")
    outcome = solve(prepare(plan, progress=lambda f: progress(0.95 * f)))
    figure = io.BytesIO()
    plot_outcome(outcome, figure)
    html = build_report(outcome)
    progress(1.0)
    return {"result": _shown_result(outcome.to_dict(), upload), "report_html": _hidden(html, upload), "figure_png": figure.getvalue()}


def compare_in_worker(options: dict, plan_data: dict | None, upload: dict | None = None, *, progress: Callable[[float], None]) -> dict:
    """Run :func:`neurolysis.compare.compare_methods` in a worker; progress per method (``upload`` as for :func:`simulate_in_worker`)."""
    from neurolysis.compare import compare_methods
    from neurolysis.planning.plan import plan_from_dict

    progress(0.0)
    base = plan_from_dict(plan_data, base_dir=upload["folder"] if upload else ".") if plan_data is not None else None
    result = compare_methods(**options, base=base, progress=lambda method, fraction: progress(fraction))
    progress(1.0)
    return {"result": _shown_result(result, upload)}



WORKERS = {"simulate": simulate_in_worker, "compare": compare_in_worker}
"""The function that runs each kind of job in a worker, called with the job's stored ``work``."""


def _work_args(kind: str, work: dict) -> tuple:
    if kind == "simulate":
        return (work["plan_data"], work["upload"])
    return (work["options"], work["plan_data"], work["upload"])


def _job_of(record: JobRecord, status: str | None = None) -> Job:
    """The job a stored row describes (``status`` replaces the stored one: a re-queued job)."""
    status = status or record.status
    return Job(id=record.id, kind=record.kind, request=record.request, created_s=record.created_at.timestamp(), status=status,
               progress=1.0 if status == "done" else 0.0, plan_toml=record.plan_toml, result=record.result, error=record.error,
               report_html=record.report_html, figure_png=record.figure_png, starts=record.starts,
               finished_s=record.finished_at.timestamp() if record.finished_at else None)  # fmt: skip


def _now() -> datetime:
    return datetime.now(UTC)


class JobRunner:
    """The job registry and the worker processes behind ``/api/simulate`` and ``/api/compare``.

    ``workers``: processes solving at once (others queue). ``store``: a
    :class:`~neurolysis.store.jobs.JobStore` that keeps every job across restarts (None: memory
    only). ``solve=False``: a runner that records each job as failed without starting it (the
    schema fuzzer's app: requests are validated, no solve is launched). Call :meth:`start` on
    server start (re-queues the stored unfinished jobs, starts the workers) and :meth:`close` on stop.
    """

    def __init__(self, workers: int = 1, *, solve: bool = True, store=None):
        self.workers = workers
        self.solve = solve
        self.store = store
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()  # the registry
        self._pool_lock = threading.Lock()  # starting the pool
        self._pool: WorkerPool | None = None
        self.requeued: list[str] = []
        """Jobs found unfinished in the store at :meth:`start` and queued again."""

    # -- the pool ---------------------------------------------------------------------------

    def _workers(self) -> WorkerPool:
        with self._pool_lock:
            if self._pool is None:
                self._pool = WorkerPool(self.workers, self._on_event, warm=warm_worker)
            return self._pool

    def start(self) -> None:
        """Start the workers (each imports the solvers at once) and queue again the jobs a previous
        server left queued or running (one stopped under ``MAX_STARTS`` times fails instead)."""
        if not self.solve:
            return
        pool = self._workers()
        for record in self.store.unfinished() if self.store is not None else ():
            job = _job_of(record, status="queued")
            if record.starts >= MAX_STARTS:
                reason = f"the server stopped while this job ran, {record.starts} times; not started again"
                self._register(replace(job, status="failed", error=reason, finished_s=time.time()))
                self._persist(job.id, status="failed", error=reason, finished_at=_now())
                continue
            self._register(job)
            if record.status != "queued":
                self._persist(job.id, status="queued")
            pool.submit(job.id, WORKERS[job.kind], _work_args(job.kind, record.work))
            self.requeued.append(job.id)
        if self.requeued:
            LOG.warning("re-queued %d job(s) left unfinished by the previous server: %s", len(self.requeued), ", ".join(self.requeued))

    def _on_event(self, kind: str, job_id: str, *payload) -> None:
        """The pool's report on a job (from its dispatcher thread)."""
        if kind == "started":
            job = self._change(job_id, lambda j: replace(j, status="running", starts=j.starts + 1))
            if job is not None:
                self._persist(job_id, status="running", starts=job.starts)
        elif kind == "progress":
            self._change(job_id, lambda j: replace(j, status="running", progress=max(j.progress, payload[0])))
        elif kind == "done":
            self._end(job_id, "done", progress=1.0, **payload[0])
        elif kind == "failed":
            reason, trace = payload
            LOG.error("job %s failed: %s\n%s", job_id, reason, trace)
            self._end(job_id, "failed", error=reason)
        elif kind == "died":
            LOG.error("job %s failed: %s", job_id, payload[0])
            self._end(job_id, "failed", error=f"{payload[0]}; the pool started a new worker")

    # -- the registry -----------------------------------------------------------------------

    def _register(self, job: Job) -> None:
        with self._lock:
            finished = sorted((j for j in self._jobs.values() if j.finished), key=lambda j: j.finished_s or 0.0)
            for old in finished[: max(0, len(finished) - KEEP_FINISHED + 1)]:
                del self._jobs[old.id]
            self._jobs[job.id] = job

    def _change(self, job_id: str, change: Callable[[Job], Job]) -> Job | None:
        """Apply ``change`` to an unfinished job in memory; the changed job, or None (unknown or finished)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.finished:
                return None
            self._jobs[job_id] = changed = change(job)
            return changed

    def _persist(self, job_id: str, **values) -> None:
        if self.store is None:
            return
        try:
            self.store.update(job_id, **values)
        except Exception:
            LOG.exception("job %s: the store could not record %s", job_id, sorted(values))

    def _end(self, job_id: str, status: str, **values) -> Job | None:
        job = self._change(job_id, lambda j: replace(j, status=status, finished_s=time.time(), **values))
        if job is None:
            return None
        stored = {k: v for k, v in values.items() if k in ("result", "error", "report_html", "figure_png")}
        self._persist(job_id, status=status, finished_at=_now(), **stored)
        if self.store is not None:
            try:
                self.store.prune(KEEP_STORED)
            except Exception:
                LOG.exception("the store could not prune its finished jobs")
        return job

    def _submit(self, kind: str, request: dict, plan_toml: str | None, work: dict) -> Job:
        work = json.loads(json.dumps(work))  # as it is stored: a re-queued job runs with exactly these arguments
        job = Job(id=uuid.uuid4().hex[:16], kind=kind, request=request, created_s=time.time(), plan_toml=plan_toml)
        self._register(job)
        if self.store is not None:
            self.store.add(JobRecord(id=job.id, kind=kind, status="queued", created_at=_now(), request=request, work=work, plan_toml=plan_toml))
        if not self.solve:
            self._end(job.id, "failed", error="not run: this server validates requests only (solve=False)")
            return self.get(job.id)
        self._workers().submit(job.id, WORKERS[kind], _work_args(kind, work))
        return job

    def submit_simulation(self, plan_data: dict, plan_toml: str, request: dict, upload: dict | None = None) -> Job:
        """Queue a validated plan (its sections as ``Plan.as_dict`` gives them; ``upload`` for a plan on an uploaded scan)."""
        return self._submit("simulate", request, plan_toml, {"plan_data": plan_data, "upload": upload})

    def submit_comparison(self, options: dict, plan_data: dict | None, request: dict, upload: dict | None = None) -> Job:
        """Queue a validated comparison (``compare_methods`` keyword arguments, optional base plan)."""
        return self._submit("compare", request, None, {"options": options, "plan_data": plan_data, "upload": upload})

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job (a running one's worker is stopped and replaced); the job
        as it is now (a finished job is returned unchanged), or None when there is no such job."""
        job = self.get(job_id)
        if job is None or job.finished:
            return job
        if self._pool is not None:
            self._pool.cancel(job_id)
        return self._end(job_id, "cancelled", error="cancelled (DELETE /api/jobs/{id})") or self.get(job_id)

    def get(self, job_id: str) -> Job | None:
        """A job in memory, else in the store (None: no such job)."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is not None or self.store is None:
            return job
        record = self.store.get(job_id)
        return None if record is None else _job_of(record)

    def worker_pids(self) -> dict[str, int]:
        """The process id of the worker running each job."""
        return self._pool.pids() if self._pool is not None else {}

    def running(self) -> int:
        """Jobs queued or running."""
        with self._lock:
            return sum(not j.finished for j in self._jobs.values())

    def close(self) -> None:
        """Stop the workers now. Jobs queued or running stay so in the store: the next server queues them again."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


__all__ = ["FINISHED", "KINDS", "STATUSES", "Job", "JobRunner", "compare_in_worker", "simulate_in_worker"]
