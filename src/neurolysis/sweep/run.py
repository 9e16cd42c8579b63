"""Running a sweep on dask.distributed: one task per point, each result written as it arrives.

By default a ``LocalCluster`` of ``workers`` processes (one thread and one BLAS thread each, no
dashboard); with ``scheduler`` the cluster behind that address (its workers should be started
with ``OPENBLAS_NUM_THREADS=1``; ``docs/sweep.md``). The client process writes every file and
every stored case (one writer); the workers only solve.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from neurolysis.about import DISCLAIMER, __version__
from neurolysis.planning.plan import plan_from_dict
from neurolysis.planning.simulate import simulate
from neurolysis.sweep.results import point_record, read_point, results_rows, write_point, write_results
from neurolysis.sweep.spec import Sweep, SweepPoint
from neurolysis.validation import ValidationError

ONE_BLAS_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""Set in every local worker before it starts: one BLAS thread per single-threaded worker."""
LOCAL_WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
"""Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` in each worker by default (to hand freed
memory back to the system), which turns off glibc's adaptive mmap threshold: every large array
is then mapped and zeroed anew, and one RF plan solve took 14.0 s instead of 10.7 s (system time
4.4 s instead of 1.6 s). Local workers run without it (one solve at a time: 0.7 GiB at most)."""
CONNECT_TIMEOUT_S = 10
WORKER_WAIT_S = 60
ERROR_CHARS = 500


def simulate_point(plan_text: str, base_dir: str, version: str) -> dict:
    """The task a worker runs (a pure function of the point's plan): ``outcome`` (the
    ``simulate --json`` object) or ``error`` (one line), ``wall_time_s`` (load, prepare and
    solve, s) and ``worker`` (host:pid). Never raises: a failure is the point's result."""
    started = time.perf_counter()
    outcome, error = None, None
    try:
        if version != __version__:
            raise RuntimeError(f"this worker runs neurolysis {__version__}, the client {version}; install the same version on every worker")
        outcome = simulate(plan_from_dict(tomllib.loads(plan_text), base_dir=base_dir)).to_dict()
    except Exception as exc:  # a point that fails at run time is recorded and the sweep goes on
        error = _one_line(exc)
    return {"outcome": outcome, "error": error, "wall_time_s": time.perf_counter() - started, "worker": f"{socket.gethostname()}:{os.getpid()}"}


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    return text[:ERROR_CHARS]


@dataclass(frozen=True)
class SweepRun:
    """What a sweep run did: points computed now, skipped (already done in ``out_dir``), failed
    (point index and error), cases saved, the results table and the cluster used."""

    sweep: Sweep
    out_dir: Path
    computed: int
    skipped: int
    failed: tuple[tuple[int, str], ...]
    saved: int
    results: Path
    cluster: str
    workers: int
    wall_time_s: float

    def to_dict(self) -> dict:
        """The ``sweep --json`` summary."""
        return {
            "sweep": str(self.sweep.path), "base": str(self.sweep.base), "fields": list(self.sweep.fields),
            "points": len(self.sweep.points), "computed": self.computed, "skipped": self.skipped, "failed": len(self.failed),
            "errors": [{"point": i, "error": e} for i, e in self.failed], "saved": self.saved,
            "out_dir": str(self.out_dir), "results": str(self.results), "points_dir": str(self.out_dir / "points"),
            "cluster": self.cluster, "workers": self.workers, "wall_time_s": round(self.wall_time_s, 3), "disclaimer": DISCLAIMER,
        }  # fmt: skip


def run_sweep(sweep: Sweep, out_dir: Path, *, scheduler: str | None = None, workers: int = 2, progress: bool = False,
              save: Callable[[SweepPoint, dict], None] | None = None) -> SweepRun:  # fmt: skip
    """Run every point of ``sweep`` not yet done in ``out_dir`` (``points/<key>.json`` with an
    outcome), write each result as it arrives and ``results.parquet`` at the end. ``save(point,
    record)`` is called in this process for every point with an outcome, done now or before.
    The cluster starts only if something is left to compute; the folder is made once it runs."""
    started = time.perf_counter()
    records: dict[str, dict] = {}
    saved = 0
    for point in sweep.points:
        if point.key not in records and (record := read_point(out_dir, point)) is not None:
            records[point.key] = record
            if save is not None:
                save(point, record)
                saved += 1
    skipped = sum(p.key in records for p in sweep.points)
    todo: dict[str, SweepPoint] = {}
    for point in sweep.points:
        if point.key not in records:
            todo.setdefault(point.key, point)
    cluster, n_workers = "none: every point was done before", 0
    if todo:
        if progress:
            where = f"starting a local Dask cluster of {workers} workers" if scheduler is None else f"connecting to {scheduler}"
            print(f"neurolysis: {len(todo)} points to run, {skipped} done before; {where}", file=sys.stderr)
        with _client(scheduler, workers) as (client, cluster, n_workers):
            (out_dir / "points").mkdir(parents=True, exist_ok=True)  # once the cluster is there: a failed connection leaves nothing
            for point, record in _compute(client, sweep, list(todo.values()), progress):
                write_point(out_dir, record)
                records[point.key] = record
                if save is not None and record["outcome"] is not None:
                    save(point, record)
                    saved += 1
    rows = results_rows(sweep, records)
    results = write_results(sweep, rows, out_dir / "results.parquet")
    failed = tuple((row["point"], row["error"]) for row in rows if row["error"] is not None)
    return SweepRun(sweep, out_dir, len(sweep.points) - skipped, skipped, failed, saved, results, cluster, n_workers, time.perf_counter() - started)


@contextlib.contextmanager
def _client(scheduler: str | None, workers: int) -> Iterator[tuple[object, str, int]]:
    """A dask client: on a new LocalCluster, or connected to ``scheduler`` (which must have a worker)."""
    from distributed import Client, LocalCluster

    if scheduler is None:
        import dask

        with dask.config.set(LOCAL_WORKER_CONFIG):  # read as the nannies start
            no_dashboard = {"dashboard_address": "127.0.0.1:0"}  # the scheduler's health server on a free port, not 8787
            local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, env=ONE_BLAS_THREAD, scheduler_kwargs=no_dashboard)
        with local, Client(local) as client:
            yield client, f"local cluster of {workers} worker processes", workers
        return
    try:
        client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError) as error:
        raise ValidationError(f"scheduler = {scheduler!r}: cannot connect ({_one_line(error)})") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT_S)
        except TimeoutError:
            raise ValidationError(f"scheduler = {scheduler!r}: no worker joined in {WORKER_WAIT_S} s; start one with `dask worker {scheduler} --nthreads 1`") from None
        yield client, scheduler, len(client.nthreads())


def _compute(client, sweep: Sweep, points: list[SweepPoint], progress: bool) -> Iterator[tuple[SweepPoint, dict]]:
    """Submit one task per point; yield (point, record) as each finishes, in any order."""
    from distributed import as_completed

    futures = {client.submit(simulate_point, p.plan_text, str(sweep.base.parent), __version__, pure=False): p for p in points}
    with _progress_bar(len(points), progress) as advance:
        for future in as_completed(futures):
            point = futures.pop(future)
            if future.status == "finished":
                task = future.result()
            else:  # the worker died, or the task was lost or cancelled: the point failed, the sweep goes on
                error = _one_line(future.exception()) if future.status == "error" else f"the task was {future.status} on the cluster"
                task = {"outcome": None, "error": error, "wall_time_s": None, "worker": None}
            yield point, point_record(point, task)
            advance()


@contextlib.contextmanager
def _progress_bar(total: int, enabled: bool) -> Iterator[Callable[[], None]]:
    """A rich progress bar on stderr (points done of ``total``), or nothing."""
    if not enabled:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("sweep", total=total)
        yield lambda: bar.advance(task)
