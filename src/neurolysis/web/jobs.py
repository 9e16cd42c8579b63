"""Jobs off the request thread: simulations and comparisons in a process pool, with progress.

A :class:`JobRunner` owns a ``ProcessPoolExecutor`` (``spawn`` context, one BLAS thread per
worker) and a ``multiprocessing`` Manager queue through which the workers send their
progress (the solver's ``progress(fraction)``); one thread in the server process drains the
queue into the job registry. A job is a frozen :class:`Job`; the registry replaces it on every
change, under a lock. Finished jobs are kept (newest ``KEEP_FINISHED``) with their result, the
HTML report and the figure, since an Outcome (with its field samplers) cannot leave the worker.

Only the standard library is imported at module level: a worker unpickles this module first.
"""

from __future__ import annotations

import os
import queue as queue_module
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace

KEEP_FINISHED = 32
"""Finished jobs kept in memory (oldest dropped first); each holds a report of ~0.3-2 MB."""
STATUSES = ("queued", "running", "done", "failed")
KINDS = ("simulate", "compare")
PROGRESS_POLL_S = 0.1
"""How often the drain thread looks at the progress queue (s)."""


@dataclass(frozen=True)
class Job:
    """One job: ``kind`` simulate | compare; ``status`` queued | running | done | failed;
    ``progress`` 0-1; ``request`` what was asked (the plan's sections, Monte Carlo N, comparison
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

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


def _init_worker() -> None:
    """One BLAS thread in each worker (the solvers' products are small; threads only contend)."""
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def _warm_worker() -> None:
    import neurolysis.planning.simulate
    import neurolysis.report.anatomy_figures
    import neurolysis.report.html  # noqa: F401


def _reporter(progress_queue, job_id: str) -> Callable[[float], None]:
    """A ``progress(fraction)`` that sends at most every 1 % (and the first call) to the server."""
    last = [-1.0]

    def report(fraction: float) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        if fraction - last[0] >= 0.01 or fraction >= 1.0:
            last[0] = fraction
            progress_queue.put((job_id, fraction))

    return report


def _hidden(text: str, upload: dict | None) -> str:
    """``text`` with the upload's folder written ``upload:<id>/`` (see :meth:`neurolysis.web.uploads.Upload.hide`)."""
    if upload is None:
        return text
    folder, shown = upload["folder"], f"upload:{upload['id']}"
    return text.replace(folder + os.sep, shown + "/").replace(folder, shown)


def _shown_result(result: dict, upload: dict | None) -> dict:
    import json

    if upload is None:
        return result
    if isinstance(result.get("settings"), dict):
        result["settings"]["anatomy"] = upload["anatomy"]
    return json.loads(_hidden(json.dumps(result, ensure_ascii=False), upload))


def simulate_in_worker(job_id: str, plan_data: dict, upload: dict | None = None, *, progress_queue) -> dict:
    """Validate, solve, and render a plan in a worker: the outcome JSON, the HTML report and the figure (PNG bytes).
    ``upload``: a plan on an uploaded scan, ``{id, folder, anatomy}`` (its files are read in ``folder``;
    the outcome's settings show ``anatomy`` as the client wrote it, and no path of the folder is returned)."""
    import io

    from neurolysis.planning.plan import plan_from_dict
    from neurolysis.planning.simulate import prepare, solve
    from neurolysis.report.anatomy_figures import plot_outcome
    from neurolysis.report.html import build_report

    report = _reporter(progress_queue, job_id)
    report(0.0)
    plan = plan_from_dict(plan_data, base_dir=upload["folder"] if upload else ".")
    outcome = solve(prepare(plan, progress=lambda f: report(0.95 * f)))
    figure = io.BytesIO()
    plot_outcome(outcome, figure)
    html = build_report(outcome)
    report(1.0)
    return {"result": _shown_result(outcome.to_dict(), upload), "report_html": _hidden(html, upload), "figure_png": figure.getvalue()}


def compare_in_worker(job_id: str, options: dict, plan_data: dict | None, upload: dict | None = None, *, progress_queue) -> dict:
    """Run :func:`neurolysis.compare.compare_methods` in a worker; progress per method (``upload`` as for :func:`simulate_in_worker`)."""
    from neurolysis.compare import compare_methods
    from neurolysis.planning.plan import plan_from_dict

    report = _reporter(progress_queue, job_id)
    report(0.0)
    base = plan_from_dict(plan_data, base_dir=upload["folder"] if upload else ".") if plan_data is not None else None
    result = compare_methods(**options, base=base, progress=lambda method, fraction: report(fraction))
    report(1.0)
    return {"result": _shown_result(result, upload)}


class JobRunner:
    """The job registry and the process pool behind ``/api/simulate`` and ``/api/compare``.

    ``workers``: processes solving at once (others queue). ``solve=False``: a runner that records
    each job as failed without starting it (the schema fuzzer's app: requests are validated, no
    solve is launched). Call :meth:`close` on server stop.
    """

    def __init__(self, workers: int = 1, *, solve: bool = True):
        self.workers = workers
        self.solve = solve
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()  # the registry
        self._pool_lock = threading.Lock()  # starting the pool and submitting to it
        self._pool: ProcessPoolExecutor | None = None
        self._manager = None
        self._queue = None
        self._drain: threading.Thread | None = None
        self._stop = threading.Event()

    def _start(self) -> None:
        """Start the progress queue and its drain thread, and the pool (again after a worker died)."""
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        if self._manager is None:
            os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # inherited by the spawned workers before numpy loads
            self._manager = context.Manager()
            self._queue = self._manager.Queue()
            self._drain = threading.Thread(target=self._drain_progress, name="neurolysis-job-progress", daemon=True)
            self._drain.start()
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=context, initializer=_init_worker)

    def warm(self) -> None:
        """Start a worker and import the solvers and the report there now, so the first job does not wait for it."""
        if self.solve:
            with self._pool_lock:
                self._start()
                self._pool.submit(_warm_worker)

    def _drain_progress(self) -> None:
        while not self._stop.is_set():
            try:
                job_id, fraction = self._queue.get(timeout=PROGRESS_POLL_S)
            except queue_module.Empty:
                continue
            except (EOFError, OSError, BrokenPipeError):  # the manager went away (shutdown)
                return
            self._update(job_id, lambda job, f=fraction: replace(job, status="running", progress=max(job.progress, f)) if not job.finished else job)

    def _update(self, job_id: str, change: Callable[[Job], Job]) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                self._jobs[job_id] = change(job)

    def _add(self, kind: str, request: dict, plan_toml: str | None) -> Job:
        job = Job(id=uuid.uuid4().hex[:16], kind=kind, request=request, created_s=time.time(), plan_toml=plan_toml)
        with self._lock:
            finished = sorted((j for j in self._jobs.values() if j.finished), key=lambda j: j.finished_s or 0.0)
            for old in finished[: max(0, len(finished) - KEEP_FINISHED + 1)]:
                del self._jobs[old.id]
            self._jobs[job.id] = job
        return job

    def _finish(self, job_id: str, future: Future) -> None:
        try:
            out = future.result()
        except Exception as error:  # noqa: BLE001 - the worker's error, reported on the job (the request was validated before)
            message = str(error).splitlines()[0] if str(error) else error.__class__.__name__
            self._update(job_id, lambda job: replace(job, status="failed", error=message, finished_s=time.time()))
            return
        self._update(job_id, lambda job: replace(job, status="done", progress=1.0, finished_s=time.time(), **out))

    def _submit(self, kind: str, request: dict, plan_toml: str | None, function, *args) -> Job:
        job = self._add(kind, request, plan_toml)
        if not self.solve:
            self._update(job.id, lambda j: replace(j, status="failed", error="not run: this server validates requests only (solve=False)", finished_s=time.time()))
            return self.get(job.id)
        with self._pool_lock:
            self._start()
            try:
                future = self._pool.submit(function, job.id, *args, progress_queue=self._queue)
            except BrokenProcessPool:  # a worker died (killed, out of memory): a new pool for this and later jobs
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
                self._start()
                future = self._pool.submit(function, job.id, *args, progress_queue=self._queue)
        future.add_done_callback(lambda f, job_id=job.id: self._finish(job_id, f))
        return job

    def submit_simulation(self, plan_data: dict, plan_toml: str, request: dict, upload: dict | None = None) -> Job:
        """Queue a validated plan (its sections as ``Plan.as_dict`` gives them; ``upload`` for a plan on an uploaded scan)."""
        return self._submit("simulate", request, plan_toml, simulate_in_worker, plan_data, upload)

    def submit_comparison(self, options: dict, plan_data: dict | None, request: dict, upload: dict | None = None) -> Job:
        """Queue a validated comparison (``compare_methods`` keyword arguments, optional base plan)."""
        return self._submit("compare", request, None, compare_in_worker, options, plan_data, upload)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def running(self) -> int:
        """Jobs queued or running."""
        with self._lock:
            return sum(not j.finished for j in self._jobs.values())

    def close(self) -> None:
        """Stop the pool (running solves are cancelled or awaited), the drain thread and the manager."""
        self._stop.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._drain is not None:
            self._drain.join(timeout=2.0)
        if self._manager is not None:
            self._manager.shutdown()
        self._pool = self._manager = self._queue = self._drain = None


__all__ = ["KINDS", "STATUSES", "Job", "JobRunner", "compare_in_worker", "simulate_in_worker"]
