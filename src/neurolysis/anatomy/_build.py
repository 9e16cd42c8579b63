"""Shared parsing for templates and label maps: fibre compositions, nerves, critical
structures and placements from TOML/JSON tables (millimetres at the edge, metres inside)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

import numpy as np

from neurolysis._catalog import load_catalog
from neurolysis.fields import NeedlePose
from neurolysis.tissue import tissue_ids
from neurolysis.validation import ValidationError, check_choice, check_number

from .placement import recommended_pose
from .scene import APPROACHES, FIBRE_ROLES, CriticalStructure, FibreClass, Nerve

MM = 1e-3
NERVE_KINDS = ("sensory", "mixed", "motor", "plexus")
FRACTION_TOLERANCE = 1e-3
END_ORGAN_MAX_MM = 2000.0
COORDINATE_LIMIT_MM = 1e6
"""Largest centreline coordinate (1 km): beyond it lengths overflow and no anatomy lies there."""
MAX_TURN_DEG = 150.0
"""Largest turn between consecutive centreline segments: a nerve does not fold back on itself
(a fold makes its tangent vanish)."""
"""Longest distance to the end organ the regrowth model takes (2 m, ``outcome/axons.py``)."""


def composition_names() -> tuple[str, ...]:
    """Named fibre compositions of ``data/nerve_fibres.toml``."""
    return tuple(load_catalog("nerve_fibres")["composition"])


def _finite(value) -> float | None:
    """``value`` as a finite float, or None for anything else (text, bool, NaN, an int beyond float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if np.isfinite(number) else None


def listed(value, where: str, what: str) -> list:
    """``value`` as a list (a TOML array or array of tables), else an error naming ``where``."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        raise ValidationError(f"{where} = {value!r}: must be a list of {what}")
    return list(value)


def _fibre(entry: Mapping, where: str) -> FibreClass:
    if not isinstance(entry, Mapping):
        raise ValidationError(f"{where} = {entry!r}: must be a table {{ class | name, role, diameter_um, fraction, myelinated }}")
    classes = load_catalog("nerve_fibres")["fibre_class"]
    name = entry.get("class", entry.get("name"))
    if isinstance(name, str) and name in classes:
        role, myelinated = classes[name]["role"], bool(classes[name]["myelinated"])
    else:
        role, myelinated = entry.get("role"), entry.get("myelinated")
        check_choice(f"{where}.role", role, FIBRE_ROLES)
        if not isinstance(myelinated, bool):
            raise ValidationError(f"{where}.myelinated = {myelinated!r}: must be true or false (or name a class: {', '.join(classes)})")
    role = entry.get("role", role)
    check_choice(f"{where}.role", role, FIBRE_ROLES)
    out = []
    for key, high in (("diameter_um", 30.0), ("fraction", 1.0)):
        value = entry.get(key)
        number = _finite(value)
        if number is None or not 0 < number <= high:
            raise ValidationError(f"{where}.{key} = {value!r}: allowed range is (0, {high:g}]")
        out.append(number)
    return FibreClass(name=str(name), role=role, diameter_um=out[0], fraction=out[1], myelinated=bool(entry.get("myelinated", myelinated)))


def fibres_from_spec(spec, where: str) -> tuple[FibreClass, ...]:
    """A composition name of ``data/nerve_fibres.toml`` or a list of fibre tables."""
    if isinstance(spec, str):
        check_choice(where, spec, composition_names())
        spec = load_catalog("nerve_fibres")["composition"][spec]["fibres"]
    if not isinstance(spec, Sequence) or not spec:
        raise ValidationError(f"{where} = {spec!r}: must be a composition name ({', '.join(composition_names())}) or a list of fibre classes")
    fibres = tuple(_fibre(e, f"{where}[{i}]") for i, e in enumerate(spec))
    total = sum(f.fraction for f in fibres)
    if abs(total - 1.0) > FRACTION_TOLERANCE:
        raise ValidationError(f"{where} fractions sum = {total:g}: must sum to 1")
    return fibres


def _number(spec: Mapping, key: str, where: str, low: float = 0.0) -> float:
    value = spec.get(key)
    number = _finite(value)
    if number is None or number <= low:
        raise ValidationError(f"{where}.{key} = {value!r}: must be a finite number > {low:g}")
    return number


def nerve_from_spec(spec: Mapping, where: str) -> Nerve:
    """A nerve from ``name``, ``centerline_mm``, ``radius_mm``, ``fibres``,
    ``end_organ_mm`` and optional ``kind`` / ``source``."""
    if not isinstance(spec, Mapping):
        raise ValidationError(f"{where} = {spec!r}: must be a table of nerve fields")
    name = spec.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(f"{where}.name = {name!r}: must be a non-empty string")
    where = f"{where} ({name})"
    try:
        line = np.asarray(spec.get("centerline_mm"), dtype=float)
    except (TypeError, ValueError, OverflowError):
        line = np.zeros((0,))
    if line.ndim != 2 or line.shape[1] != 3 or len(line) < 2 or not np.all(np.isfinite(line)):
        raise ValidationError(f"{where}.centerline_mm = {spec.get('centerline_mm')!r}: must be at least 2 finite [x, y, z] points (mm)")
    if np.abs(line).max() > COORDINATE_LIMIT_MM:
        raise ValidationError(f"{where}.centerline_mm: coordinate {np.abs(line).max():g} mm; allowed range is [-{COORDINATE_LIMIT_MM:g}, {COORDINATE_LIMIT_MM:g}] mm")
    segments = np.diff(line, axis=0)
    lengths = np.linalg.norm(segments, axis=1)
    if np.any(lengths <= 0):
        raise ValidationError(f"{where}.centerline_mm: consecutive points must differ")
    turns = np.degrees(np.arccos(np.clip(np.sum(segments[1:] * segments[:-1], axis=1) / (lengths[1:] * lengths[:-1]), -1.0, 1.0)))
    if turns.size and turns.max() > MAX_TURN_DEG:
        k = int(np.argmax(turns)) + 1
        raise ValidationError(f"{where}.centerline_mm[{k}]: the centreline turns by {turns.max():.0f} deg there; at most {MAX_TURN_DEG:g} deg (a nerve does not fold back on itself)")
    kind = spec.get("kind")
    fibres_spec = spec.get("fibres")
    if kind is None and isinstance(fibres_spec, str) and fibres_spec in composition_names():
        kind = load_catalog("nerve_fibres")["composition"][fibres_spec]["kind"]
    kind = kind or "sensory"
    check_choice(f"{where}.kind", kind, NERVE_KINDS)
    end_organ = spec.get("end_organ_mm")
    if _finite(end_organ) is None or end_organ < 0:
        raise ValidationError(f"{where}.end_organ_mm = {end_organ!r}: must be a finite number >= 0 (mm)")
    if end_organ > END_ORGAN_MAX_MM:
        raise ValidationError(f"{where}.end_organ_mm = {end_organ!r}: allowed range is [0, {END_ORGAN_MAX_MM:g}] mm (the nerve regrowth model's limit)")
    return Nerve(
        name=name,
        centerline_m=line * MM,
        radius_m=_number(spec, "radius_mm", where) * MM,
        fibres=fibres_from_spec(fibres_spec, f"{where}.fibres"),
        end_organ_m=float(end_organ) * MM,
        kind=kind,
        source=str(spec.get("source", "")),
    )


def critical_from_spec(spec: Mapping, where: str, regions: Sequence[str], nerves: Sequence[str]) -> CriticalStructure:
    if not isinstance(spec, Mapping):
        raise ValidationError(f"{where} = {spec!r}: must be a table with a name, a kind and regions or a nerve")
    name, kind = spec.get("name"), spec.get("kind")
    if not isinstance(name, str) or not isinstance(kind, str) or not kind:
        raise ValidationError(f"{where} = {dict(spec)!r}: needs a name and a kind (spinal-cord, motor-nerve, artery, skin, pleura, dura, ...)")
    own = tuple(listed(spec.get("regions", ()), f"{where} ({name}).regions", "region names"))
    for r in own:
        check_choice(f"{where} ({name}).regions", r, regions)
    nerve = spec.get("nerve")
    if nerve is not None:
        check_choice(f"{where} ({name}).nerve", nerve, nerves)
    if not own and nerve is None:
        raise ValidationError(f"{where} ({name}): give regions or a nerve")
    return CriticalStructure(name=name, kind=kind, regions=own, nerve=nerve)


def _vector(value, where: str) -> np.ndarray:
    try:
        v = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        v = np.zeros(0)
    if v.shape != (3,) or not np.all(np.isfinite(v)) or not np.any(v):
        raise ValidationError(f"{where} = {value!r}: must be a non-zero [x, y, z] direction")
    return v


def check_tissue(where: str, tissue: object) -> str:
    check_choice(where, tissue, tissue_ids())
    return str(tissue)


def build_placements(
    specs: Sequence[Mapping],
    nerves: Sequence[Nerve],
    targets: Sequence[str],
    label_at: Callable,
    bounds_m,
    blocked: Sequence[int],
    avoid: Sequence[int],
    where: str = "placement",
) -> MappingProxyType:
    """Placements for every target and approach: from the hints in ``specs`` (``nerve``,
    ``approach``, optional ``at``, ``toward``, ``side``), else chosen around the nerve."""
    by_name = {n.name: n for n in nerves}
    given = {}
    for i, spec in enumerate(listed(specs, where, "tables with nerve and approach")):
        w = f"{where}[{i}]"
        if not isinstance(spec, Mapping):
            raise ValidationError(f"{w} = {spec!r}: must be a table with nerve and approach")
        check_choice(f"{w}.nerve", spec.get("nerve"), list(by_name))
        check_choice(f"{w}.approach", spec.get("approach"), APPROACHES)
        given[(spec["nerve"], spec["approach"])] = (w, spec)
    out: dict[tuple[str, str], NeedlePose] = {}
    for name in targets:
        for approach in APPROACHES:
            w, spec = given.get((name, approach), (where, {}))
            nerve = by_name[name]
            at = check_number(f"{w}.at", spec["at"]) if "at" in spec else 0.5
            if "at_mm" in spec:  # arc length from the proximal end
                at = check_number(f"{w}.at_mm", spec["at_mm"]) * MM / nerve.length_m
            for key in ("toward", "side"):
                if key in spec:
                    _vector(spec[key], f"{w}.{key}")
            out[(name, approach)] = recommended_pose(
                nerve,
                approach,
                at=float(at),
                toward=spec.get("toward"),
                side=spec.get("side"),
                label_at=label_at,
                bounds_m=bounds_m,
                blocked=blocked,
                avoid=avoid,
            )
    for key in given:
        if key[0] not in targets:
            raise ValidationError(f"{where}.nerve = {key[0]!r}: placements are for targets only; allowed values are {', '.join(targets)}")
    return MappingProxyType(out)


NERVE_TISSUE = "nerve"


def paint_nerve_regions(nerves: Sequence[Nerve], names: list, tissues: list, layers: list, clash: Callable[[str], str]) -> None:
    """Append each nerve as its own region (tissue ``nerve``, a tube around its centerline)
    to ``names``/``tissues``/``layers``, painted after the other layers; ``clash(name)`` is
    the error text when a nerve is named like an existing region."""
    from .primitives import Tube

    for n in nerves:
        if n.name in names:
            raise ValidationError(clash(n.name))
        names.append(n.name)
        tissues.append(NERVE_TISSUE)
        layers.append((len(names) - 1, Tube(n.centerline_m, n.radius_m)))


def resolve_targets(table: Mapping, nerve_names: Sequence[str], where: str) -> tuple[tuple[str, ...], str]:
    """(targets, default target) of a template or labels table: ``targets`` (default: the
    single ``target``), each a nerve of the anatomy; ``target`` one of them (default the first)."""
    key = "targets" if table.get("targets") else "target"
    targets = tuple(listed(table.get("targets", ()), f"{where}.targets", "nerve names")) or (table.get("target"),)
    for t in targets:
        check_choice(f"{where}.{key}", t, nerve_names)
    target = table.get("target", targets[0])
    check_choice(f"{where}.target", target, targets)
    return targets, target
