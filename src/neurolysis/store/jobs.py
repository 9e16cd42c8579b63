"""The web planner's jobs in the case store's database, so that a restarted server finds them.

A job row holds what was asked (``request``), the arguments that run it again (``work``), its
status and, once finished, its result, error, report and figure. The server writes a row when a
job is submitted, starts, finishes, fails or is cancelled (progress stays in memory: it changes
every second and is worth nothing after a restart). Rows of finished jobs are kept up to
``keep`` (newest first) by :meth:`JobStore.prune`.

One server per database: a server that starts re-queues every unfinished row it finds
(:meth:`JobStore.unfinished`), so two servers on one database would both run them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from neurolysis.store import db

UNFINISHED = ("queued", "running")
EDITABLE = frozenset({"status", "finished_at", "starts", "result", "error", "report_html", "figure_png"})


@dataclass(frozen=True)
class JobRecord:
    """A stored job (the columns of ``jobs``); ``created_at``/``finished_at`` in UTC."""

    id: str
    kind: str
    status: str
    created_at: datetime
    request: dict
    work: dict
    starts: int = 0
    finished_at: datetime | None = None
    plan_toml: str | None = None
    result: dict | None = None
    error: str | None = None
    report_html: str | None = field(default=None, repr=False)
    figure_png: bytes | None = field(default=None, repr=False)


def _record(row) -> JobRecord:
    values = dict(row)
    values["created_at"] = db.utc(values["created_at"])
    values["finished_at"] = db.utc(values["finished_at"]) if values["finished_at"] is not None else None
    return JobRecord(**values)


class JobStore(db.Transactions):
    """Jobs in one database (see the module docstring)."""

    def add(self, record: JobRecord) -> None:
        """Store a new job."""
        values = {name: getattr(record, name) for name in db.jobs.c.keys()}
        self._write(lambda connection: connection.execute(sa.insert(db.jobs).values(**values)))

    def update(self, job_id: str, **values) -> None:
        """Change a stored job's ``status``, ``starts``, ``finished_at``, ``result``, ``error``, ``report_html`` or ``figure_png``."""
        unknown = set(values) - EDITABLE
        if unknown:
            raise ValueError(f"job columns {sorted(unknown)} cannot change; allowed: {sorted(EDITABLE)}")
        self._write(lambda connection: connection.execute(sa.update(db.jobs).where(db.jobs.c.id == job_id).values(**values)))

    def get(self, job_id: str) -> JobRecord | None:
        """The stored job with this id, or None."""
        row = self._read(lambda connection: connection.execute(sa.select(db.jobs).where(db.jobs.c.id == job_id)).mappings().first())
        return _record(row) if row is not None else None

    def unfinished(self) -> list[JobRecord]:
        """Jobs queued or running when their server stopped, oldest first."""
        query = sa.select(db.jobs).where(db.jobs.c.status.in_(UNFINISHED)).order_by(db.jobs.c.created_at, db.jobs.c.id)
        return [_record(row) for row in self._read(lambda connection: connection.execute(query).mappings().all())]

    def prune(self, keep: int) -> int:
        """Delete the finished jobs beyond the newest ``keep``; the number deleted."""

        def work(connection: sa.Connection) -> int:
            finished = db.jobs.c.status.not_in(UNFINISHED)
            kept = sa.select(db.jobs.c.id).where(finished).order_by(db.jobs.c.finished_at.desc(), db.jobs.c.id.desc()).limit(keep)
            kept_ids = set(connection.execute(kept).scalars())
            old = [job_id for job_id in connection.execute(sa.select(db.jobs.c.id).where(finished)).scalars() if job_id not in kept_ids]
            for start in range(0, len(old), 500):
                connection.execute(sa.delete(db.jobs).where(db.jobs.c.id.in_(old[start : start + 500])))
            return len(old)

        return self._write(work)


__all__ = ["UNFINISHED", "JobRecord", "JobStore"]
