"""The case store: save a simulated plan once, find it again, annotate it, delete it.

A case's content (plan as written, resolved settings, outcome JSON, report, version) is written
in one transaction and never changed; its id is the first 16 hex digits of the content hash,
so saving the same content again returns the stored case. Tags and notes are annotations.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import sqlalchemy as sa

from neurolysis.about import __version__
from neurolysis.store import db
from neurolysis.store.case import CASE_ID_DIGITS, Case, canonical_json, check_case_ref, check_notes, check_tags, content_hash
from neurolysis.store.jobs import JobStore
from neurolysis.store.location import ALLOWED, STORE_EXTRA_MISSING, masked, store_url
from neurolysis.validation import ValidationError


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class CaseStore(db.Transactions):
    """Cases in one database. ``url`` is the SQLAlchemy URL with any password masked."""

    def jobs(self) -> JobStore:
        """The web planner's jobs, in the same database."""
        return JobStore(self._engine)

    def _resolve(self, connection: sa.Connection, ref: str, field: str = "case") -> str:
        """The full id of the one case whose id starts with ``ref`` (ValidationError otherwise)."""
        prefix = check_case_ref(ref, field)
        query = sa.select(db.cases.c.id).where(db.cases.c.id.startswith(prefix, autoescape=True)).limit(2)
        found = connection.execute(query).scalars().all()
        if not found:
            raise ValidationError(f"{field} = {ref!r}: not found in {self.url}")
        if len(found) > 1:
            raise ValidationError(f"{field} = {ref!r}: more than one case starts with it; give more digits")
        return found[0]

    # -- reading ----------------------------------------------------------------------------

    def _cases(self, connection: sa.Connection, where, *, with_report: bool, limit: int | None = None, tag: str | None = None) -> list[Case]:
        c, r, t = db.cases, db.reports, db.case_tags
        if with_report:
            query = sa.select(c, r.c.case_id.is_not(None).label("has_report"), r.c.html.label("report_html")).select_from(c.outerjoin(r, r.c.case_id == c.c.id))
        else:
            query = sa.select(c, sa.exists().where(r.c.case_id == c.c.id).correlate(c).label("has_report"))
        if where is not None:
            query = query.where(where)
        if tag is not None:
            query = query.where(sa.exists().where((t.c.case_id == c.c.id) & (t.c.tag == tag)).correlate(c))
        query = query.order_by(c.c.created_at.desc(), c.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        rows = connection.execute(query).mappings().all()
        tags: dict[str, list[str]] = {}
        ids = [row["id"] for row in rows]
        for start in range(0, len(ids), 500):
            for case_id, tag_name in connection.execute(sa.select(t.c.case_id, t.c.tag).where(t.c.case_id.in_(ids[start : start + 500]))):
                tags.setdefault(case_id, []).append(tag_name)
        return [
            Case(
                id=row["id"], content_hash=row["content_hash"], created_at=db.utc(row["created_at"]), version=row["version"],
                plan_toml=row["plan_toml"], settings=row["settings"], outcome=row["outcome"],
                report_html=row["report_html"] if with_report else None, has_report=bool(row["has_report"]),
                tags=tuple(sorted(tags.get(row["id"], ()))), notes=row["notes"], parent_id=row["parent_id"],
            )
            for row in rows
        ]  # fmt: skip

    def resolve_id(self, case_id: str, *, field: str = "case") -> str:
        """The full id of the stored case ``case_id`` (an id or a unique prefix of at least 6 hex
        digits); else ValidationError naming ``field``."""
        return self._read(lambda connection: self._resolve(connection, case_id, field))

    def get(self, case_id: str) -> Case:
        """The case with this id, or the one whose id starts with this prefix (at least 6 hex digits)."""

        def work(connection):
            full = self._resolve(connection, case_id)
            return self._cases(connection, db.cases.c.id == full, with_report=True)[0]

        return self._read(work)

    def list(self, *, tag: str | None = None, limit: int | None = None) -> list[Case]:
        """Cases, newest first (``report_html`` None; ``has_report`` says if there is one)."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValidationError(f"limit = {limit!r}: allowed: a whole number >= 1")
        return self._read(lambda connection: self._cases(connection, None, with_report=False, limit=limit, tag=tag))

    # -- writing ----------------------------------------------------------------------------

    @staticmethod
    def _add_missing_tags(connection: sa.Connection, case_id: str, tags: Sequence[str]) -> None:
        present = set(connection.execute(sa.select(db.case_tags.c.tag).where(db.case_tags.c.case_id == case_id)).scalars())
        missing = [tag for tag in tags if tag not in present]  # sorted: two writers take row locks in one order
        if missing:
            connection.execute(sa.insert(db.case_tags), [{"case_id": case_id, "tag": tag} for tag in missing])

    def save(self, *, plan_toml: str, settings: dict, outcome: dict, report_html: str | None = None,
             tags: Sequence[str] = (), notes: str = "", parent_id: str | None = None) -> Case:  # fmt: skip
        """Store a case in one transaction, or return the stored one with the same content (plan,
        settings, version), with ``tags`` added. A ``parent_id`` (id or unique prefix) must be stored."""
        if not isinstance(plan_toml, str):
            raise ValidationError(f"plan_toml = {type(plan_toml).__name__}: allowed: the plan file's text")
        for field, value in (("settings", settings), ("outcome", outcome)):
            if not isinstance(value, dict):
                raise ValidationError(f"{field} = {type(value).__name__}: allowed: a JSON object (dict)")
            try:
                canonical_json(value)
            except (TypeError, ValueError) as error:
                raise ValidationError(f"{field}: cannot be stored as JSON ({error})") from None
        if report_html is not None and not isinstance(report_html, str):
            raise ValidationError(f"report_html = {type(report_html).__name__}: allowed: HTML text or None")
        tags, notes = check_tags(tags), check_notes(notes)
        digest = content_hash(plan_toml, settings, __version__)
        case_id = digest[:CASE_ID_DIGITS]

        def work(connection: sa.Connection) -> str:
            parent = self._resolve(connection, parent_id, "parent_id") if parent_id is not None else None
            stored = connection.execute(sa.select(db.cases.c.id, db.cases.c.content_hash).where(db.cases.c.id == case_id)).first()
            if stored is not None and stored.content_hash != digest:
                raise RuntimeError(f"case id {case_id} is taken by other content (a 64-bit hash prefix collision)")
            if stored is None:
                connection.execute(sa.insert(db.cases).values(
                    id=case_id, content_hash=digest, created_at=db.now_utc(), version=__version__, plan_toml=plan_toml,
                    settings=settings, outcome=outcome, parent_id=parent, notes=notes,
                ))  # fmt: skip
                if report_html is not None:
                    connection.execute(sa.insert(db.reports).values(case_id=case_id, html=report_html))
            self._add_missing_tags(connection, case_id, tags)
            return case_id

        return self.get(self._write(work))

    def add_tags(self, case_id: str, tags: Sequence[str]) -> Case:
        """Add tags to a stored case (present ones are kept once)."""
        tags = check_tags(tags)

        def work(connection):
            full = self._resolve(connection, case_id)
            self._add_missing_tags(connection, full, tags)
            return full

        return self.get(self._write(work))

    def set_notes(self, case_id: str, notes: str) -> Case:
        """Replace a stored case's notes (an annotation: its content does not change)."""
        notes = check_notes(notes)

        def work(connection):
            full = self._resolve(connection, case_id)
            connection.execute(sa.update(db.cases).where(db.cases.c.id == full).values(notes=notes))
            return full

        return self.get(self._write(work))

    def delete(self, case_id: str) -> None:
        """Delete a case with its report and tags; cases derived from it keep no parent."""

        def work(connection):
            full = self._resolve(connection, case_id)
            connection.execute(sa.delete(db.case_tags).where(db.case_tags.c.case_id == full))
            connection.execute(sa.delete(db.reports).where(db.reports.c.case_id == full))
            connection.execute(sa.update(db.cases).where(db.cases.c.parent_id == full).values(parent_id=None))
            connection.execute(sa.delete(db.cases).where(db.cases.c.id == full))
            return full

        self._write(work)

    def close(self) -> None:
        """Release the store's connections."""
        self._engine.dispose()

    def __enter__(self) -> CaseStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CaseStore({self.url!r})"


def open_store(location: str | os.PathLike | None = None) -> CaseStore:
    """Open (and create or migrate) the store at ``location``: None for :func:`default_store_location`,
    a file path, ``sqlite:///PATH`` or ``postgresql+psycopg://USER@HOST:PORT/DB``."""
    url = store_url(location)
    try:
        engine = db.create_engine(url)
    except ModuleNotFoundError as error:  # the database driver (psycopg) is part of the store extra
        raise ValidationError(f"{STORE_EXTRA_MISSING} (no module {error.name!r})") from None
    try:
        db.migrate(engine)
    except ValidationError:
        engine.dispose()
        raise
    except (sa.exc.SQLAlchemyError, OSError) as error:
        engine.dispose()
        if isinstance(error, sa.exc.DatabaseError) and "file is not a database" in str(error):
            raise ValidationError(f"store = {masked(url)!r}: the file is not an SQLite database; {ALLOWED}") from None
        raise ValidationError(f"store = {masked(url)!r}: cannot open ({_first_line(error)}); {ALLOWED}") from None
    return CaseStore(engine)


def save_outcome(store: CaseStore, outcome, plan_toml: str, *, report_html: str | None = None,
                 tags: Sequence[str] = (), notes: str = "", parent_id: str | None = None) -> Case:  # fmt: skip
    """Save a simulated :class:`~neurolysis.planning.simulate.Outcome` with the plan file's text. A plan on a
    segmentation refers to files outside the store: their sha256 join the settings, so that a changed scan
    under the same path makes a new case."""
    found = outcome.to_dict()
    files = found["anatomy"].get("files_sha256")
    settings = outcome.plan.as_dict() | ({"anatomy_files_sha256": files} if files else {})
    return store.save(
        plan_toml=plan_toml, settings=settings, outcome=found, report_html=report_html,
        tags=tags, notes=notes, parent_id=parent_id,
    )  # fmt: skip


__all__ = ["CaseStore", "open_store", "save_outcome"]
