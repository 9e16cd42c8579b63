"""A stored case: the value the store hands out, its content hash, and the checks on annotations.

Standard library only: the CLI imports this at parse time, before SQLAlchemy is loaded.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime

from neurolysis.validation import ValidationError, shown

CASE_ID_DIGITS = 16
"""A case id: the first 16 hex digits of the content hash (64 bits)."""
MIN_PREFIX_DIGITS = 6
"""The shortest id prefix ``get`` accepts."""
MAX_TAG_CHARS = 64
MAX_TAGS = 100
MAX_NOTES_CHARS = 20_000

_HEX = re.compile(r"[0-9a-f]+")


def canonical_json(value) -> str:
    """JSON with sorted keys, no spaces and no NaN or infinity (raises ValueError on them)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def content_hash(plan_toml: str, settings: dict, version: str) -> str:
    """sha256 (64 hex digits) of the canonical JSON of ``{plan_toml, settings, version}``."""
    return hashlib.sha256(canonical_json({"plan_toml": plan_toml, "settings": settings, "version": version}).encode("utf-8")).hexdigest()


def check_case_ref(ref: object, field: str = "case") -> str:
    """A case id or a prefix of it: 6 to 16 lower-case hex digits (upper case is folded)."""
    text = ref.strip().lower() if isinstance(ref, str) else ""
    if not (MIN_PREFIX_DIGITS <= len(text) <= CASE_ID_DIGITS and _HEX.fullmatch(text)):
        raise ValidationError(f"{field} = {shown(ref) if isinstance(ref, str) else ref!r}: allowed: a case id ({CASE_ID_DIGITS} hex digits) or a unique prefix of at least {MIN_PREFIX_DIGITS}")
    return text


def check_tag(tag: object) -> str:
    """One tag: 1 to 64 printable characters, no comma, no leading or trailing space."""
    if not (isinstance(tag, str) and tag and len(tag) <= MAX_TAG_CHARS and tag.isprintable() and tag.strip() == tag and "," not in tag):
        raise ValidationError(f"tag = {tag!r}: allowed: 1 to {MAX_TAG_CHARS} printable characters, no comma, no leading or trailing space")
    return tag


def check_tags(tags) -> tuple[str, ...]:
    """Tags checked one by one, duplicates dropped, sorted."""
    if isinstance(tags, str):
        raise ValidationError(f"tags = {tags!r}: allowed: a list of tags, not one string")
    checked = tuple(sorted({check_tag(t) for t in tags}))
    if len(checked) > MAX_TAGS:
        raise ValidationError(f"tags = <{len(checked)} tags>: allowed: at most {MAX_TAGS} per case")
    return checked


def check_notes(notes: object) -> str:
    """Free text up to 20 000 characters."""
    if not isinstance(notes, str):
        raise ValidationError(f"notes = {notes!r}: allowed: text")
    if len(notes) > MAX_NOTES_CHARS:
        raise ValidationError(f"notes = <{len(notes)} characters>: allowed: at most {MAX_NOTES_CHARS} characters")
    return notes


@dataclass(frozen=True)
class Case:
    """One stored simulation. The content (plan, settings, outcome, report, version) never changes;
    tags and notes are annotations. ``report_html`` is None in listings (``has_report`` says if one
    is stored); ``created_at`` is timezone-aware UTC."""

    id: str
    content_hash: str
    created_at: datetime
    version: str
    plan_toml: str
    settings: dict
    outcome: dict
    report_html: str | None
    has_report: bool
    tags: tuple[str, ...]
    notes: str
    parent_id: str | None

    def to_dict(self, *, include_report: bool = False) -> dict:
        """The JSON of ``cases show --json``; ``report_html`` only with ``include_report``."""
        out = {
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "content_hash": self.content_hash,
            "version": self.version,
            "plan_toml": self.plan_toml,
            "settings": copy.deepcopy(self.settings),
            "outcome": copy.deepcopy(self.outcome),
            "has_report": self.has_report,
            "tags": list(self.tags),
            "notes": self.notes,
            "parent_id": self.parent_id,
        }
        return out | ({"report_html": self.report_html} if include_report else {})

    def summary(self) -> dict:
        """The listing's columns from the outcome JSON (absent keys give None): method, anatomy,
        target nerve, pain block, median relief (months)."""
        o = self.outcome
        target = o.get("target") if isinstance(o.get("target"), dict) else {}
        anatomy = o.get("anatomy") if isinstance(o.get("anatomy"), dict) else {}
        relief = target.get("relief_months") if isinstance(target.get("relief_months"), dict) else {}
        return {
            "method": o.get("method"),
            "anatomy": anatomy.get("name"),
            "target": anatomy.get("target_nerve") or target.get("nerve"),
            "pain_block": target.get("pain_block"),
            "relief_months_median": relief.get("median"),
        }


__all__ = ["Case", "canonical_json", "check_case_ref", "check_notes", "check_tag", "check_tags", "content_hash"]
