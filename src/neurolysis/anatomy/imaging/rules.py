"""Structure names to tissues, by rules (``data/structure_rules.toml``), not by lists of names.

:func:`classify` gives each label of a segmentation a :class:`Structure`: what it is (``kind``:
vertebra, rib, artery, nerve, ...), its spinal level or rib number and side where the name says,
its tissue (an id of ``data/tissues.toml``) and, for critical structures, the risk kind of
``data/risk.toml``. A name no rule maps keeps the medium's default tissue and is reported
(``mapped = False``), never silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from neurolysis._catalog import load_catalog
from neurolysis.tissue import tissue_ids
from neurolysis.validation import check_choice

SPINE_REGIONS = {"c": "C", "cervical": "C", "t": "T", "th": "T", "thoracic": "T", "l": "L", "lumbar": "L", "s": "S", "sacral": "S"}
SIDE_WORDS = {"left": "left", "lt": "left", "sinister": "left", "right": "right", "rt": "right", "dexter": "right"}
SPINE_ORDER = tuple(f"C{i}" for i in range(1, 8)) + tuple(f"T{i}" for i in range(1, 13)) + tuple(f"L{i}" for i in range(1, 6)) + tuple(f"S{i}" for i in range(1, 6))
"""Spinal levels from the skull down (a sixth lumbar or thirteenth thoracic vertebra is not modelled)."""
USER_OVERRIDE = "anatomy.tissues"


@dataclass(frozen=True)
class Structure:
    """One labelled structure of a segmentation, classified."""

    label: int
    name: str
    kind: str
    tissue: str
    critical: str | None = None
    level: str | None = None  # spinal level ("L4", "T12", "S1") or rib number ("11")
    side: str | None = None  # "left" | "right" | None
    nerve: str | None = None  # the name the templates and indications use, for a labelled target nerve
    rule: str = ""  # the pattern that matched, "table" (a user's tissue), or "default"
    source: str = ""
    mapped: bool = True

    def summary(self, voxels: int | None = None, voxel_volume_mm3: float | None = None) -> dict:
        out = {"label": self.label, "name": self.name, "kind": self.kind, "tissue": self.tissue, "critical": self.critical,
               "level": self.level, "side": self.side, "mapped": self.mapped}  # fmt: skip
        if self.nerve:
            out["nerve"] = self.nerve
        if voxels is not None:
            out["voxels"] = voxels
            if voxel_volume_mm3 is not None:
                out["volume_ml"] = round(voxels * voxel_volume_mm3 * 1e-3, 3)
        return out


def normalise(name: str) -> str:
    """Lower case, runs of other characters to ``_``, ``_`` between letters and digits (``Lumbar4`` -> ``lumbar_4``)."""
    text = re.sub(r"[^0-9a-z]+", "_", name.lower())
    text = re.sub(r"(?<=[a-z])(?=[0-9])|(?<=[0-9])(?=[a-z])", "_", text)
    return text.strip("_")


def side_of(normalised: str) -> str | None:
    """The side a normalised name states: a token left/right/lt/rt, or a final l / r after another token."""
    tokens = normalised.split("_")
    for t in tokens:
        if t in SIDE_WORDS:
            return SIDE_WORDS[t]
    if len(tokens) > 1 and tokens[-1] in ("l", "r") and not tokens[-2].isdigit():
        return "left" if tokens[-1] == "l" else "right"
    return None


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern
    kind: str
    tissue: str
    critical: str | None
    nerve: str | None
    source: str


@cache
def _rules() -> tuple[tuple[_Rule, ...], str]:
    catalog = load_catalog("structure_rules")
    risk_kinds = tuple(load_catalog("risk")["kind"])
    rules = []
    for i, raw in enumerate(catalog["rule"]):
        check_choice(f"structure_rules.rule[{i}].tissue", raw["tissue"], tissue_ids())
        if raw.get("critical") is not None:
            check_choice(f"structure_rules.rule[{i}].critical", raw["critical"], risk_kinds)
        rules.append(_Rule(re.compile(raw["pattern"]), raw["kind"], raw["tissue"], raw.get("critical"), raw.get("nerve"), raw.get("source", "")))
    return tuple(rules), catalog["default_tissue"]


def _level(kind: str, match: re.Match) -> str | None:
    groups = {k: v for k, v in match.groupdict().items() if v}
    number = groups.get("level") or groups.get("level2")
    if number is None:
        return None
    if kind == "vertebra":
        level = f"{SPINE_REGIONS[groups['region']]}{int(number)}"
        return level if level in SPINE_ORDER else None
    return str(int(number))


def classify_name(label: int, name: str, tissue_override: str | None = None) -> Structure:
    """The :class:`Structure` for one label's ``name`` (``tissue_override``: a user's tissue for it)."""
    rules, default = _rules()
    key = normalise(name)
    padded = f"_{key}_"
    side = side_of(key)
    for rule in rules:
        m = rule.pattern.search(padded)
        if m is None:
            continue
        level = _level(rule.kind, m)
        if rule.kind == "vertebra" and level is None:
            continue  # "L9": not a vertebra this model knows
        side = (m.groupdict().get("side") and SIDE_WORDS.get(m.group("side"), {"l": "left", "r": "right"}.get(m.group("side")))) or side
        tissue = tissue_override or rule.tissue
        return Structure(label, name, rule.kind, tissue, rule.critical, level, side, rule.nerve, "table" if tissue_override else rule.pattern.pattern, rule.source)
    if tissue_override:
        return Structure(label, name, "user", tissue_override, None, None, side, None, "table", "the user's tissue for this name")
    return Structure(label, name, "unmapped", default, None, None, side, None, "default", load_catalog("structure_rules")["default_source"], mapped=False)


def classify(names: Mapping[int, str], present: Mapping[int, int], overrides: Mapping[int, str] | None = None, by_name: Mapping[str, str] | None = None) -> dict[int, Structure]:
    """Every label present in the volume classified; a present label without a name is ``label N``
    (unmapped). ``overrides`` (label -> tissue, from a names table) and ``by_name`` (structure name ->
    tissue, ``anatomy.tissues``) take precedence over the rules."""
    overrides = dict(overrides or {})
    by_name = dict(by_name or {})
    for name, tissue in by_name.items():
        check_choice(f"{USER_OVERRIDE}.{name}", tissue, tissue_ids())
    out = {}
    for label in sorted(present):
        name = names.get(label, f"label {label}")
        out[label] = classify_name(label, name, overrides.get(label) or by_name.get(name))
    return out


def spine_index(level: str) -> int:
    """Position of a spinal level from the skull down (C1 = 0); ValueError for an unknown level."""
    return SPINE_ORDER.index(level)


__all__ = ["SPINE_ORDER", "Structure", "classify", "classify_name", "normalise", "side_of", "spine_index"]
