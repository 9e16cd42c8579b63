"""Target nerves placed from segmented landmarks, by published rules.

Nerves of a millimetre or less are not in a CT or MR segmentation: each rule places a target
nerve's centreline (and its recommended needle placements, and nerves at risk that the scan
does not show) from bony and vascular landmarks, as the technique papers describe where to put
the needle. A rule's text, its source and its numbers live in ``data/landmarks_<group>.toml``;
its geometry in the module of the same group (``spine``, ``knee``, ``trunk``).

A rule is a :class:`LandmarkRule`: ``targets`` (a regular expression over target names, e.g.
``L[1-5] medial branch``), ``candidates(anatomy)`` (the targets and sides this anatomy
supports, for ``anatomy inspect``) and ``place(anatomy, target, side)`` -> :class:`PlacedTarget`.
A landmark that is missing (or outside the field of view) is one ``ValidationError`` naming it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module

from neurolysis._catalog import load_catalog
from neurolysis.validation import ValidationError

from ..anatomy import SegmentedAnatomy

GROUPS = ("spine", "knee", "trunk")
SIDES = ("left", "right")


@dataclass(frozen=True)
class PlacedTarget:
    """What a landmark rule gives: specs in the template file format (mm, the segmentation's frame).

    ``nerves``: the target nerve first (``name``, ``centerline_mm`` proximal -> distal,
    ``radius_mm``, ``fibres``, ``end_organ_mm``, ``kind``, ``source``), then any nerve at risk the
    rule places (e.g. the exiting spinal nerve); ``critical``: critical-structure specs for those
    (``{name, kind, nerve}``); ``placements``: hints for :func:`neurolysis.anatomy._build.build_placements`
    (``nerve``, ``approach``, ``at_mm``, ``toward``, ``side``); ``template``: the built-in template of
    the same procedure (its method defaults, the methods that do not apply, the indications);
    ``centre_mm``: the centre of the region simulated; ``landmarks``: the points the rule used
    (name -> [x, y, z] mm), for the report and tests; ``notes``: what the rule assumed here.
    """

    target: str
    nerves: tuple[Mapping, ...]
    placements: tuple[Mapping, ...]
    template: str
    rule: str
    centre_mm: tuple[float, float, float]
    critical: tuple[Mapping, ...] = ()
    landmarks: Mapping[str, tuple[float, float, float]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Candidate:
    """A target this anatomy supports: its name, the sides it can be planned on ((): side does
    not apply), and the rule (id and one-line description) that places it."""

    target: str
    sides: tuple[str, ...]
    rule: str
    description: str

    def summary(self) -> dict:
        return {"target": self.target, "sides": list(self.sides), "rule": self.rule, "description": self.description}


@dataclass(frozen=True)
class LandmarkRule:
    id: str
    targets: re.Pattern
    candidates: Callable[[SegmentedAnatomy], list[Candidate]]
    place: Callable[[SegmentedAnatomy, str, str | None], PlacedTarget]


def rule_data(group: str, rule_id: str) -> Mapping:
    """The ``[rule.<id>]`` table of ``data/landmarks_<group>.toml`` (description, source, numbers)."""
    return load_catalog(f"landmarks_{group}")["rule"][rule_id]


def _rules() -> tuple[LandmarkRule, ...]:
    out = []
    for group in GROUPS:
        out += import_module(f"{__name__}.{group}").RULES
    return tuple(out)


def supported_targets(anatomy: SegmentedAnatomy) -> list[Candidate]:
    """Every target (with its sides and rule) the anatomy's landmarks support."""
    return [c for rule in _rules() for c in rule.candidates(anatomy)]


def check_side(side: str | None, sides: tuple[str, ...], target: str) -> str | None:
    """``side`` for a target that has ``sides`` (() = no side): required and one of them, or refused."""
    if not sides:
        return None
    if side is None:
        raise ValidationError(f"anatomy.side = None: {target!r} needs a side; allowed values are {', '.join(sides)}")
    if side not in sides:
        raise ValidationError(f"anatomy.side = {side!r}: the field of view holds the landmarks of {target!r} on the {' and '.join(sides)} side only; allowed values are {', '.join(sides)}")
    return side


def place_target(anatomy: SegmentedAnatomy, target: str | None, side: str | None) -> PlacedTarget:
    """The target nerve and its placements from the anatomy's landmarks (one-line errors)."""
    if target is None:
        names = sorted({c.target for c in supported_targets(anatomy)})
        raise ValidationError(f"target.nerve = None: a plan on a segmentation names its target; this one supports {', '.join(names) or 'no target (see `neurolysis anatomy inspect`)'}")
    for rule in _rules():
        if rule.targets.fullmatch(target):
            return rule.place(anatomy, target, side)
    names = sorted({c.target for c in supported_targets(anatomy)})
    raise ValidationError(f"target.nerve = {target!r}: no landmark rule places it; this segmentation supports {', '.join(names) or 'none'}")


__all__ = ["Candidate", "LandmarkRule", "PlacedTarget", "check_side", "place_target", "rule_data", "supported_targets"]
