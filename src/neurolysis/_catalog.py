"""Read the packaged data catalogs (TOML files under ``neurolysis/data``)."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from functools import cache
from importlib.resources import files
from types import MappingProxyType


@cache
def load_catalog(name: str) -> MappingProxyType:
    """The parsed ``data/<name>.toml`` (read once, read-only view)."""
    text = files("neurolysis").joinpath("data", f"{name}.toml").read_text(encoding="utf-8")
    return MappingProxyType(tomllib.loads(text))


def catalog_records(cls, entries) -> dict:
    """Catalog entries (id -> table) as frozen ``cls`` records: ``cls(id, ..., sources=...)``
    with the fields declared ``float`` converted to float and the entry's ``sources`` read-only."""
    out = {}
    for entry_id, entry in entries.items():
        values = {f.name: float(entry[f.name]) if f.type == "float" else entry[f.name] for f in fields(cls) if f.name not in ("id", "sources")}
        out[entry_id] = cls(entry_id, **values, sources=MappingProxyType(dict(entry.get("sources", {}))))
    return out
