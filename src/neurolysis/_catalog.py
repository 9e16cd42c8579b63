"""Read the packaged data catalogs (TOML files under ``neurolysis/data``)."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib.resources import files
from types import MappingProxyType


@cache
def load_catalog(name: str) -> MappingProxyType:
    """The parsed ``data/<name>.toml`` (read once, read-only view)."""
    text = files("neurolysis").joinpath("data", f"{name}.toml").read_text(encoding="utf-8")
    return MappingProxyType(tomllib.loads(text))
