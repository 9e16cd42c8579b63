"""Trunk landmark rules (``data/landmarks_trunk.toml``): the celiac plexus on the aorta at the
celiac trunk or T12-L1, the superior hypogastric plexus in front of L5-S1 below the aortic
bifurcation, and the intercostal nerve N along the lower border of rib N.

Every direction is a patient direction in the scan's own frame (``SegmentedAnatomy.axis``); the
aorta's cross-section at a level is its voxels within half a voxel of that level.
"""

from __future__ import annotations

import re

import numpy as np

from neurolysis.validation import ValidationError

from ..anatomy import SegmentedAnatomy
from ..rules import normalise
from . import Candidate, LandmarkRule, PlacedTarget, check_side, rule_data

CELIAC, HYPOGASTRIC, INTERCOSTAL = "celiac-plexus", "superior-hypogastric", "intercostal"


def _axes(anatomy: SegmentedAnatomy):
    return anatomy.axis("left"), anatomy.axis("anterior"), anatomy.axis("superior")


def _aorta(anatomy: SegmentedAnatomy, rule: str) -> np.ndarray:
    found = anatomy.structures(lambda s: s.kind == "artery" and "aort" in normalise(s.name))
    if not found:
        raise ValidationError(f"target: the aorta is not in the segmentation (no structure named aorta); the landmark rule '{rule}' needs it (see `neurolysis anatomy inspect`)")
    return anatomy.voxels_mm(found)


def _body_centre(anatomy: SegmentedAnatomy, level: str, rule: str) -> np.ndarray:
    """The centre of a vertebra's body (its label within the body layer, else the whole vertebra's centroid)."""
    vertebra = anatomy.require("vertebra", level, what=f"the {level} vertebra", rule=rule)
    bodies = anatomy.find("vertebral-body")
    if bodies:
        box = anatomy.box(vertebra)
        mask = anatomy.mask(vertebra, box) & anatomy.mask(bodies, box)
        if mask.any():
            return anatomy.points_mm(mask, box).mean(axis=0)
    return anatomy.voxels_mm(vertebra).mean(axis=0)


def _section(points: np.ndarray, sup: np.ndarray, level: float, half: float) -> np.ndarray:
    return points[np.abs(points @ sup - level) <= half]


def _vec(local, axes) -> list[float]:
    v = np.asarray(local, float)
    return (v[0] * axes[0] + v[1] * axes[1] + v[2] * axes[2]).tolist()


def _spec(name: str, line: np.ndarray, data) -> dict:
    return {"name": name, "centerline_mm": line.round(3).tolist(), "radius_mm": float(data["radius_mm"]), "fibres": data["fibres"],
            "end_organ_mm": float(data["end_organ_mm"]), "kind": "plexus" if "plexus" in name else "mixed", "source": f"{data['source']}; {data['nerve_source']}"}  # fmt: skip


def _length(line: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(line, axis=0), axis=1).sum())


# ------------------------------------------------------------------------ celiac plexus
def _celiac_level(anatomy: SegmentedAnatomy, aorta: np.ndarray, sup: np.ndarray) -> tuple[float, str]:
    trunk = anatomy.structures(lambda s: s.kind == "artery" and re.search(r"c(o)?eliac", normalise(s.name)) is not None)
    if trunk:
        from scipy.spatial import cKDTree

        points = anatomy.voxels_mm(trunk)
        distance, _ = cKDTree(aorta).query(points)
        origin = points[distance <= distance.min() + 1e-6]
        return float(np.median(origin @ sup)), "the celiac trunk's origin"
    t12, l1 = _body_centre(anatomy, "T12", CELIAC), _body_centre(anatomy, "L1", CELIAC)
    return float(0.5 * (t12 @ sup + l1 @ sup)), "the T12-L1 level (midway between the bodies' centres)"


def _place_celiac(anatomy: SegmentedAnatomy, target: str, side: str | None) -> PlacedTarget:
    data = rule_data("trunk", CELIAC)
    left, ant, sup = _axes(anatomy)
    aorta = _aorta(anatomy, CELIAC)
    level, how = _celiac_level(anatomy, aorta, sup)
    spacing = float(anatomy.grid.spacing_mm.max())
    section = _section(aorta, sup, level, 0.5 * spacing + 1e-6)
    if not len(section):
        raise ValidationError(f"target: the aorta does not reach {how} ({level:.1f} mm along the superior axis) in this segmentation; the rule '{CELIAC}' needs it")
    centre = section.mean(axis=0)
    wall = float(np.max(np.linalg.norm((section - centre) - np.outer((section - centre) @ sup, sup), axis=1))) + 0.5 * spacing
    reach = wall + float(data["gap_mm"]) + float(data["radius_mm"])
    angles = np.radians(np.linspace(*data["arc_deg"], int(data["arc_points"])))
    line = np.array([centre + reach * (np.cos(a) * ant + np.sin(a) * left) for a in angles])  # patient right -> left
    side = side or "right"
    sign = 1.0 if side == "right" else -1.0  # a needle from the right travels toward the patient's left
    axes = (left * sign, ant, sup)
    hints = (
        {"nerve": target, "approach": "parallel", "at_mm": 0.5 * _length(line), "toward": _vec(data["parallel_toward"], axes), "side": _vec(data["parallel_side"], axes), "source": data["placement_source"]},
        {"nerve": target, "approach": "perpendicular", "at_mm": 0.5 * _length(line), "toward": _vec(data["perpendicular_toward"], axes)},
    )
    mid = line[len(line) // 2]
    notes = (f"celiac plexus at {how}: {level:.1f} mm along the superior axis, around the front of the aorta (wall {wall:.1f} mm from its centre); needle from the {side}; {data['level_source']}",)
    return PlacedTarget(target, (_spec(target, line, data),), hints, data["template"], CELIAC, tuple(float(v) for v in mid),
                        landmarks={"aorta at the celiac level": tuple(float(v) for v in centre)}, notes=notes)  # fmt: skip


def _celiac_candidates(anatomy: SegmentedAnatomy) -> list[Candidate]:
    data = rule_data("trunk", CELIAC)
    try:
        _place_celiac(anatomy, "celiac plexus", None)
    except ValidationError:
        return []
    return [Candidate("celiac plexus", (), CELIAC, data["description"])]


# ------------------------------------------------------------------------ superior hypogastric plexus
def _place_hypogastric(anatomy: SegmentedAnatomy, target: str, side: str | None) -> PlacedTarget:
    data = rule_data("trunk", HYPOGASTRIC)
    left, ant, sup = _axes(anatomy)
    aorta = _aorta(anatomy, HYPOGASTRIC)
    bifurcation = float((aorta @ sup).min())
    l5 = _body_centre(anatomy, "L5", HYPOGASTRIC)
    s1 = anatomy.find("vertebra", "S1") or anatomy.require("sacrum", what="the S1 vertebra or the sacrum", rule=HYPOGASTRIC)
    s1_centre = anatomy.voxels_mm(s1).mean(axis=0) if not anatomy.find("vertebra", "S1") else _body_centre(anatomy, "S1", HYPOGASTRIC)
    junction = float(0.5 * (l5 @ sup + s1_centre @ sup))
    end = junction - float(data["below_junction_mm"])
    if bifurcation <= end:
        raise ValidationError(f"target: the aorta ends ({bifurcation:.1f} mm) below the L5-S1 junction ({junction:.1f} mm) in this segmentation; the rule '{HYPOGASTRIC}' needs the bifurcation above it")
    bone = anatomy.voxels_mm(anatomy.structures(lambda s: s.tissue in ("bone", "cartilage") and s.kind in ("vertebra", "sacrum", "disc", "vertebral-body")))
    midline = 0.5 * (l5 + s1_centre)
    spacing = float(anatomy.grid.spacing_mm.max())
    line = []
    for level in np.arange(bifurcation, end - 1e-9, -float(data["step_mm"])):
        slab = _section(bone, sup, level, 0.5 * spacing + 1e-6)
        slab = slab[np.abs((slab - midline) @ left) <= 10.0]  # the midline's bone or disc
        if not len(slab):
            continue
        front = float((slab @ ant).max()) + 0.5 * spacing + float(data["gap_mm"]) + float(data["radius_mm"])
        point = midline + (front - midline @ ant) * ant
        line.append(point + (level - point @ sup) * sup)
    if len(line) < 2:
        raise ValidationError(f"target: no vertebral body or disc in front of which to place the plexus between the bifurcation ({bifurcation:.1f} mm) and L5-S1 ({junction:.1f} mm); the rule '{HYPOGASTRIC}' needs them")
    line = np.array(line)
    side = side or "right"
    sign = 1.0 if side == "right" else -1.0
    axes = (left * sign, ant, sup)
    at = 0.5 * _length(line)
    hints = (
        {"nerve": target, "approach": "parallel", "at_mm": at, "toward": _vec(data["parallel_toward"], axes), "side": _vec(data["parallel_side"], axes), "source": data["placement_source"]},
        {"nerve": target, "approach": "perpendicular", "at_mm": at, "toward": _vec(data["perpendicular_toward"], axes)},
    )
    mid = line[len(line) // 2]
    notes = (f"superior hypogastric plexus in front of L5-S1, from the aortic bifurcation ({bifurcation:.1f} mm) to {end:.1f} mm along the superior axis; needle from the {side}",)
    return PlacedTarget(target, (_spec(target, line, data),), hints, data["template"], HYPOGASTRIC, tuple(float(v) for v in mid),
                        landmarks={"aortic bifurcation": tuple(float(v) for v in aorta[np.argmin(aorta @ sup)]), "L5-S1 junction (midline)": tuple(float(v) for v in midline)},
                        notes=notes)  # fmt: skip


def _hypogastric_candidates(anatomy: SegmentedAnatomy) -> list[Candidate]:
    try:
        _place_hypogastric(anatomy, "superior hypogastric plexus", None)
    except ValidationError:
        return []
    return [Candidate("superior hypogastric plexus", (), HYPOGASTRIC, rule_data("trunk", HYPOGASTRIC)["description"])]


# ------------------------------------------------------------------------ intercostal nerve
def _rib_line(anatomy: SegmentedAnatomy, number: int, side: str, data) -> np.ndarray:
    """The nerve's stations below rib ``number`` on ``side``, posterior -> anterior."""
    left, ant, sup = _axes(anatomy)
    rib = anatomy.voxels_mm(anatomy.require("rib", str(number), side, what=f"the {side} rib {number}", rule=INTERCOSTAL))
    bodies = anatomy.find("vertebral-body") or anatomy.find("vertebra")
    axis_point = anatomy.voxels_mm(bodies).mean(axis=0) if bodies else rib.mean(axis=0)
    outward = left if side == "left" else -left
    rel = rib - axis_point
    angle = np.degrees(np.arctan2(rel @ ant, rel @ outward))  # -90: posterior, 0: lateral, +90: anterior
    step = float(data["station_deg"])
    keys = np.floor(angle / step).astype(int)
    spacing = float(anatomy.grid.spacing_mm.max())
    lo, hi = anatomy.grid.bounds_mm()
    top = max(lo @ sup, hi @ sup)
    line = []
    for k in np.unique(keys):
        sel = rib[keys == k]
        if len(sel) < int(data["min_station_voxels"]) or (sel @ sup).min() >= top - 1.5 * spacing:
            continue  # too few voxels, or the rib leaves the field of view there (its lower border is not seen)
        low = sel[sel @ sup <= (sel @ sup).min() + spacing]  # the inferior border
        radial = (low - axis_point) - np.outer((low - axis_point) @ sup, sup)
        r = np.linalg.norm(radial, axis=1)
        unit = radial[np.argmin(r)] / max(r.min(), 1e-9)
        depth = r.min() + float(data["inner_fraction"]) * (r.max() - r.min())
        point = axis_point + depth * unit
        below = float((low @ sup).min()) - 0.5 * spacing - float(data["gap_mm"]) - float(data["radius_mm"])
        line.append(point + (below - point @ sup) * sup)
    line = np.array(line)
    if len(line) < 2 or _length(line) < float(data["min_length_mm"]):
        raise ValidationError(f"target: the {side} rib {number} is too short in the field of view ({_length(line) if len(line) > 1 else 0:.0f} mm of lower border); the rule '{INTERCOSTAL}' needs at least {data['min_length_mm']:g} mm")
    keep = np.r_[True, np.linalg.norm(np.diff(line, axis=0), axis=1) > 0.5]
    return line[keep]


def _place_intercostal(anatomy: SegmentedAnatomy, target: str, side: str | None) -> PlacedTarget:
    data = rule_data("trunk", INTERCOSTAL)
    number = int(target.split()[0][1:])
    sides = tuple(s for s in ("left", "right") if anatomy.find("rib", str(number), s))
    side = check_side(side, sides or ("left", "right"), target)
    line = _rib_line(anatomy, number, side, data)
    left, ant, sup = _axes(anatomy)
    at = float(data["at_fraction"]) * _length(line)
    arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(line, axis=0), axis=1))]
    k = int(np.clip(np.searchsorted(arc, at), 1, len(line) - 1))
    tangent = line[k] - line[k - 1]
    tangent /= np.linalg.norm(tangent)
    outward = (line[k] - anatomy.voxels_mm(anatomy.find("vertebral-body") or anatomy.find("vertebra") or anatomy.find("rib", str(number), side)).mean(axis=0))
    outward -= (outward @ sup) * sup + (outward @ tangent) * tangent
    outward /= np.linalg.norm(outward)
    hints = (
        {"nerve": target, "approach": "parallel", "at_mm": at, "toward": tangent.tolist(), "side": (outward - sup).tolist(), "source": data["placement_source"]},
        {"nerve": target, "approach": "perpendicular", "at_mm": at, "toward": (-outward).tolist()},
    )
    notes = (f"{target} below the {side} rib {number}: {len(line)} stations, {_length(line):.0f} mm of its lower border in the field",)
    return PlacedTarget(target, (_spec(target, line, data),), hints, data["template"], INTERCOSTAL, tuple(float(v) for v in line[k]),
                        landmarks={f"{side} rib {number}, lower border at the needle": tuple(float(v) for v in line[k])}, notes=notes)  # fmt: skip


def _intercostal_candidates(anatomy: SegmentedAnatomy) -> list[Candidate]:
    data = rule_data("trunk", INTERCOSTAL)
    out = []
    for number in range(1, 13):
        sides = []
        for side in ("left", "right"):
            if anatomy.find("rib", str(number), side):
                try:
                    _rib_line(anatomy, number, side, data)
                    sides.append(side)
                except ValidationError:
                    pass
        if sides:
            out.append(Candidate(f"T{number} intercostal nerve", tuple(sides), INTERCOSTAL, data["description"]))
    return out


RULES = (
    LandmarkRule(CELIAC, re.compile(rule_data("trunk", CELIAC)["targets"][1:-1]), _celiac_candidates, _place_celiac),
    LandmarkRule(HYPOGASTRIC, re.compile(rule_data("trunk", HYPOGASTRIC)["targets"][1:-1]), _hypogastric_candidates, _place_hypogastric),
    LandmarkRule(INTERCOSTAL, re.compile(rule_data("trunk", INTERCOSTAL)["targets"][1:-1]), _intercostal_candidates, _place_intercostal),
)
