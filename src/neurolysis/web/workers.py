"""Worker processes for the web planner's jobs: one task each, cancellable, replaced when one dies.

Each worker is a ``spawn``ed process with one BLAS thread and its own pipe. A dispatcher thread
in the server hands queued tasks to idle workers and waits on every pipe and every process's
sentinel at once (``multiprocessing.connection.wait``): a worker's messages (started, progress,
done, failed) go to the owner's callbacks; a worker that exits while it holds a task (killed,
out of memory, a crash in native code) fails that task with its exit code and is replaced.
:meth:`WorkerPool.cancel` drops a queued task or kills the worker running it (a solve cannot be
interrupted safely any other way) and starts a new one. A pipe per worker, not a shared queue:
a process killed while writing to a shared queue can leave its lock held for everyone.

Only the standard library is imported at module level: a worker unpickles this module first.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import signal
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait

DISPATCH_POLL_S = 0.05
"""How long the dispatcher waits on the workers before it looks at the queue again (s)."""
PROGRESS_STEP = 0.01
"""A worker sends progress when it has moved by at least this fraction (and at the start and end)."""


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    connection: multiprocessing.connection.Connection
    task_id: str | None = None
    cancelled: bool = False


def _init_threads() -> None:
    """One BLAS thread in each worker (the solvers' products are small; threads only contend)."""
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def _worker_main(connection, warm: Callable[[], None] | None) -> None:
    """A worker's life: import what the tasks need, then run one task at a time until told to stop (None)."""
    _init_threads()
    if warm is not None:
        warm()
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        task_id, function, args = message
        last = [-1.0]

        def progress(fraction: float, task_id=task_id, last=last) -> None:
            fraction = min(max(float(fraction), 0.0), 1.0)
            if fraction - last[0] >= PROGRESS_STEP or fraction >= 1.0:
                last[0] = fraction
                connection.send(("progress", task_id, fraction))

        connection.send(("started", task_id, os.getpid()))
        try:
            out = function(*args, progress=progress)
        except Exception as error:  # noqa: BLE001 - reported on the task; the worker stays up for the next one
            text = str(error).strip()
            reason = text.splitlines()[0] if text else error.__class__.__name__
            connection.send(("failed", task_id, reason, traceback.format_exc()))
        else:
            connection.send(("done", task_id, out))


def exit_reason(exitcode: int | None) -> str:
    """Why a worker process ended, in words (``-9``: killed by SIGKILL, often the kernel's out-of-memory killer)."""
    if exitcode is None:
        return "the worker process vanished"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (killed: out of memory, or stopped by an operator)" if -exitcode == signal.SIGKILL else ""
        return f"the worker process solving this job died of {name}{hint}"
    return f"the worker process solving this job exited with code {exitcode}"


class WorkerPool:
    """``workers`` processes running tasks ``function(*args, progress=callable)`` one at a time.

    ``on_event(kind, task_id, *payload)`` is called from the dispatcher thread with ``started``
    (pid), ``progress`` (fraction 0-1), ``done`` (the function's return value), ``failed`` (reason,
    trace) and ``died`` (reason: the worker process ended while it held the task). ``warm``: a
    picklable function every new worker runs first (imports).
    """

    def __init__(self, workers: int, on_event: Callable[..., None], *, warm: Callable[[], None] | None = None):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers = {workers!r}: allowed: a whole number >= 1")
        self.size, self._on_event, self._warm = workers, on_event, warm
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._queue: collections.deque[tuple[str, Callable, tuple]] = collections.deque()
        self._workers: list[_Worker] = []
        self._stop = threading.Event()
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # inherited by the spawned workers before numpy loads
        with self._lock:
            for _ in range(workers):
                self._workers.append(self._spawn())
        self._thread = threading.Thread(target=self._dispatch, name="neurolysis-workers", daemon=True)
        self._thread.start()

    def _spawn(self) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_worker_main, args=(child, self._warm), name="neurolysis-worker", daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent)

    def submit(self, task_id: str, function: Callable, args: tuple) -> None:
        """Queue a task; it starts when a worker is free (oldest first)."""
        with self._lock:
            self._queue.append((task_id, function, args))

    def cancel(self, task_id: str) -> str | None:
        """Drop a queued task (``"queued"``) or kill the worker running it (``"running"``; a new
        worker takes its place); None when the pool does not hold the task."""
        with self._lock:
            for item in self._queue:
                if item[0] == task_id:
                    self._queue.remove(item)
                    return "queued"
            for worker in self._workers:
                if worker.task_id == task_id:
                    worker.cancelled = True
                    worker.process.kill()
                    return "running"
        return None

    def pids(self) -> dict[str, int]:
        """The process id of the worker running each task (for operators and tests)."""
        with self._lock:
            return {w.task_id: w.process.pid for w in self._workers if w.task_id is not None and not w.cancelled}

    def queued(self) -> list[str]:
        with self._lock:
            return [item[0] for item in self._queue]

    def _hand_out(self) -> None:
        with self._lock:
            for worker in self._workers:
                if worker.task_id is None and self._queue and worker.process.is_alive():
                    task_id, function, args = self._queue.popleft()
                    try:
                        worker.connection.send((task_id, function, args))
                    except (OSError, ValueError):  # the worker died just now: the task waits for the next one
                        self._queue.appendleft((task_id, function, args))
                        continue
                    worker.task_id = task_id

    def _replace(self, worker: _Worker) -> None:
        """A worker ended: fail its task (unless cancelled) and start another in its place."""
        with self._lock:
            task_id, cancelled = worker.task_id, worker.cancelled
            worker.connection.close()
            worker.process.join(timeout=1.0)
            exitcode = worker.process.exitcode
            self._workers.remove(worker)
            if not self._stop.is_set():
                self._workers.append(self._spawn())
        if task_id is not None and not cancelled:
            self._on_event("died", task_id, exit_reason(exitcode))

    def _receive(self, worker: _Worker) -> None:
        try:
            message = worker.connection.recv()
        except (EOFError, OSError):  # the worker's end closed: it is exiting (``_replace`` waits for it)
            self._replace(worker)
            return
        kind, task_id, *payload = message
        if kind in ("done", "failed"):
            with self._lock:
                worker.task_id = None
        if not worker.cancelled:
            self._on_event(kind, task_id, *payload)
        if kind in ("done", "failed"):
            worker.cancelled = False

    def _dispatch(self) -> None:
        while not self._stop.is_set():
            self._hand_out()
            with self._lock:
                workers = list(self._workers)
            by_handle = {w.connection: w for w in workers} | {w.process.sentinel: w for w in workers}
            for ready in wait(list(by_handle), timeout=DISPATCH_POLL_S):
                worker = by_handle[ready]
                if worker not in self._workers:
                    continue  # already replaced through its other handle
                if ready is worker.connection:
                    self._receive(worker)
                elif not worker.process.is_alive() and not worker.connection.poll():
                    self._replace(worker)

    def close(self) -> None:
        """Stop every worker now (running tasks are abandoned: their owner decides what they become)."""
        self._stop.set()
        self._thread.join(timeout=5.0)
        with self._lock:
            workers, self._workers = self._workers, []
            self._queue.clear()
        for worker in workers:
            if worker.task_id is None:
                try:
                    worker.connection.send(None)
                except (OSError, ValueError):
                    pass
        for worker in workers:
            worker.process.join(timeout=0.5 if worker.task_id is None else 0.0)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=2.0)
            worker.connection.close()


__all__ = ["WorkerPool", "exit_reason"]
