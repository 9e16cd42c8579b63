"""Knee landmark rules: the superomedial, superolateral and inferomedial genicular nerves at the
metaphysis-diaphysis junction, and the common peroneal nerve (``data/landmarks_knee.toml``).

**Which knee and which side.** Patient axes come from the scan's frame; the lateral side is the
side of the tibia on which the fibula lies (no assumption about which knee it is).

**The junction** (genicular nerves): along the superior axis, the bone's half-width on the nerve's
side, measured from the shaft's axis (the centroid of the bone's diaphyseal slices), grows from the
diaphysis toward the joint; the junction is the first level where it exceeds the diaphysis's by
``flare_fraction`` of the flare. The nerve is an arc on the bone's surface there, posterior to
anterior over the middle of the bone's anteroposterior width; where the genicular artery is
segmented beside the bone on that side, the arc is put at the artery's level (the nerve runs with it).

**The common peroneal nerve**: from its own label (slice centroids along the mask's principal axis,
radius from the cross-sectional area), else an arc around the fibular neck.
"""

from __future__ import annotations

import re

import numpy as np

from neurolysis.validation import ValidationError

from ..anatomy import SegmentedAnatomy
from ..rules import normalise
from . import Candidate, LandmarkRule, PlacedTarget, rule_data

GENICULAR = "genicular"
PERONEAL = "common-peroneal"
SLAB_MM = 1.0
"""Thickness of the axial slabs of the width profiles."""


def _axes(anatomy: SegmentedAnatomy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return anatomy.axis("right"), anatomy.axis("anterior"), anatomy.axis("superior")


def knee_side(anatomy: SegmentedAnatomy, rule: str) -> str:
    """``left`` or ``right``: the fibula lies lateral to the tibia."""
    tibia = anatomy.voxels_mm(anatomy.require("tibia", what="the tibia", rule=rule))
    fibula = anatomy.voxels_mm(anatomy.require("fibula", what="the fibula (it tells which knee it is)", rule=rule))
    right = anatomy.axis("right")
    return "right" if float((fibula.mean(axis=0) - tibia.mean(axis=0)) @ right) > 0 else "left"


def _check_side(side: str | None, knee: str) -> None:
    if side is not None and side != knee:
        raise ValidationError(f"anatomy.side = {side!r}: the segmentation holds a {knee} knee (the fibula lies on its {'right' if knee == 'right' else 'left'}); allowed value is {knee!r}")


def _outward(anatomy: SegmentedAnatomy, target: str, knee: str) -> np.ndarray:
    """The unit vector from the bone's axis toward the nerve's side (medial or lateral) of this knee."""
    medial = target.startswith(("superomedial", "inferomedial"))
    lateral_is_right = knee == "right"
    toward_right = lateral_is_right != medial
    return anatomy.axis("right") * (1.0 if toward_right else -1.0)


def _profile(points: np.ndarray, out: np.ndarray, sup: np.ndarray, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(slab levels along ``sup`` (mm), half-width toward ``out`` from the shaft axis at each) of a bone's voxels."""
    level = points @ sup
    reach = (points - centre) @ out
    keys = np.floor(level / SLAB_MM).astype(int)
    order = np.argsort(keys)
    keys, reach = keys[order], reach[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return (keys[starts] + 0.5) * SLAB_MM, np.maximum.reduceat(reach, starts)


def _junction(anatomy: SegmentedAnatomy, bone: str, out: np.ndarray, away_from_joint: float, data, rule: str) -> tuple[float, dict]:
    """The junction level (mm along superior) of ``bone`` on the ``out`` side; ``away_from_joint`` is
    +1 (femur: the diaphysis is superior) or -1 (tibia)."""
    _, _, sup = _axes(anatomy)
    points = anatomy.voxels_mm(anatomy.require(bone, what=f"the {bone}", rule=rule))
    level = points @ sup
    far = level * away_from_joint
    shaft = points[far >= far.max() - float(data["shaft_length_mm"])]
    centre = shaft.mean(axis=0)
    levels, half = _profile(points, out, sup, centre)
    widest = int(np.argmax(half))
    beyond = (levels - levels[widest]) * away_from_joint
    shaft_half = float(np.median(half[beyond >= beyond.max() - float(data["shaft_length_mm"])]))
    if beyond.max() < float(data["min_bone_beyond_widest_mm"]) or shaft_half > float(data["max_shaft_to_flare_ratio"]) * half[widest]:
        raise ValidationError(f"target: the {bone}'s diaphysis is not in the field of view ({beyond.max():.0f} mm of bone beyond its widest level, "
                              f"shaft half-width {shaft_half:.0f} of {half[widest]:.0f} mm); the rule '{rule}' needs the metaphysis-diaphysis junction")  # fmt: skip
    threshold = shaft_half + float(data["flare_fraction"]) * (half[widest] - shaft_half)
    order = np.argsort(-beyond)  # from the diaphysis toward the joint
    flared = [i for i in order if beyond[i] >= 0 and half[i] >= threshold]
    at = float(levels[flared[0]])
    return at, {"shaft_half_width_mm": shaft_half, "widest_half_width_mm": float(half[widest]), "widest_level_mm": float(levels[widest])}


def _artery_level(anatomy: SegmentedAnatomy, target: str, bone_points: np.ndarray, out: np.ndarray, junction: float, data) -> float | None:
    """The level where the target's genicular artery (if segmented) passes the bone on the nerve's side."""
    pattern = re.compile(data["arteries"][target])
    found = anatomy.structures(lambda s: s.kind == "artery" and pattern.search(normalise(s.name).replace("_", " ")) is not None)
    if not found:
        return None
    _, _, sup = _axes(anatomy)
    artery = anatomy.voxels_mm(found)
    near_level = np.abs(bone_points @ sup - junction) <= float(data["artery_window_mm"]) + 5.0
    bone = bone_points[near_level][(bone_points[near_level] - bone_points[near_level].mean(axis=0)) @ out > 0]
    if not len(bone):
        return None
    from scipy.spatial import cKDTree

    distance, _ = cKDTree(bone).query(artery)
    close = artery[distance <= float(data["artery_near_bone_mm"])]
    if not len(close):
        return None
    level = float(np.median(close @ sup))
    return level if abs(level - junction) <= float(data["artery_window_mm"]) else None


def _arc(points: np.ndarray, level: float, out: np.ndarray, ant: np.ndarray, sup: np.ndarray, offset_mm: float, fractions, n: int) -> np.ndarray:
    """Points on the bone's surface toward ``out`` at ``level`` (posterior to anterior over ``fractions`` of its AP width), offset outward."""
    slab = points[np.abs(points @ sup - level) <= SLAB_MM]
    ap = slab @ ant
    lo, hi = ap.min(), ap.max()
    out_pts = []
    for f in np.linspace(fractions[0], fractions[1], n):
        a = lo + f * (hi - lo)
        band = slab[np.abs(ap - a) <= 1.0]
        if not len(band):
            continue
        edge = band[np.argmax(band @ out)]
        out_pts.append(edge + (offset_mm) * out)
    arc = np.array(out_pts)
    arc += (level - arc @ sup)[:, None] * sup  # all at the level
    return arc


def _genicular_candidates(anatomy: SegmentedAnatomy) -> list[Candidate]:
    data = rule_data("knee", GENICULAR)
    out = []
    for target, bone in (("superomedial genicular nerve", "femur"), ("superolateral genicular nerve", "femur"), ("inferomedial genicular nerve", "tibia")):
        if anatomy.find(bone) and anatomy.find("fibula") and anatomy.find("tibia"):
            out.append(Candidate(target, (), GENICULAR, data["description"]))
    return out


def _place_genicular(anatomy: SegmentedAnatomy, target: str, side: str | None) -> PlacedTarget:
    data = rule_data("knee", GENICULAR)
    knee = knee_side(anatomy, GENICULAR)
    _check_side(side, knee)
    bone = "tibia" if target.startswith("inferomedial") else "femur"
    out = _outward(anatomy, target, knee)
    _, ant, sup = _axes(anatomy)
    junction, measured = _junction(anatomy, bone, out, 1.0 if bone == "femur" else -1.0, data, GENICULAR)
    points = anatomy.voxels_mm(anatomy.find(bone))
    artery = _artery_level(anatomy, target, points, out, junction, data)
    level = junction if artery is None else artery
    spacing = float(anatomy.grid.spacing_mm.min())
    radius = float(data["radius_mm"])
    arc = _arc(points, level, out, ant, sup, 0.5 * spacing + radius + float(data["surface_gap_mm"]), data["arc_fraction"], int(data["arc_points"]))
    if len(arc) < 2:
        raise ValidationError(f"target: the {bone} has no surface on the {('medial' if 'medial' in target else 'lateral')} side at the junction level ({level:.1f} mm); the rule '{GENICULAR}' needs it")
    arc = arc[np.argsort(arc @ ant)]  # posterior -> anterior
    length = float(np.linalg.norm(np.diff(arc, axis=0), axis=1).sum())

    def vec(local) -> list[float]:
        v = np.asarray(local, float)
        return (v[0] * out + v[1] * ant + v[2] * sup).tolist()

    nerve = {"name": target, "centerline_mm": arc.round(3).tolist(), "radius_mm": radius, "fibres": data["fibres"], "end_organ_mm": float(data["end_organ_mm"]),
             "source": f"{data['source']}; {data['nerve_source']}"}  # fmt: skip
    hints = (
        {"nerve": target, "approach": "parallel", "at_mm": 0.5 * length, "toward": vec(data["parallel_toward"]), "side": vec(data["parallel_side"]), "source": data["placement_source"]},
        {"nerve": target, "approach": "perpendicular", "at_mm": 0.5 * length, "toward": vec(data["perpendicular_toward"])},
    )
    centre = arc[len(arc) // 2]
    where = "the artery's level beside the bone" if artery is not None else "the junction"
    notes = (f"{target} of a {knee} knee at {where}: {level:.1f} mm along the superior axis (junction {junction:.1f} mm; {bone} half-width on that side "
             f"{measured['shaft_half_width_mm']:.1f} mm at the shaft, {measured['widest_half_width_mm']:.1f} mm at its widest); {data['junction_source']}",)  # fmt: skip
    return PlacedTarget(target, (nerve,), hints, data["template"], GENICULAR, tuple(float(v) for v in centre),
                        landmarks={f"{bone} metaphysis-diaphysis junction ({target})": tuple(float(v) for v in centre - (centre @ sup - junction) * sup)}, notes=notes)  # fmt: skip


def _peroneal_candidates(anatomy: SegmentedAnatomy) -> list[Candidate]:
    data = rule_data("knee", PERONEAL)
    labelled = anatomy.structures(lambda s: s.nerve == "common peroneal nerve")
    if labelled or anatomy.find("fibula"):
        return [Candidate("common peroneal nerve", (), PERONEAL, data["description"])]
    return []


def _from_label(anatomy: SegmentedAnatomy, found, data) -> tuple[np.ndarray, float]:
    """(centreline proximal -> distal (n, 3) mm, radius mm) of a labelled nerve."""
    points = anatomy.voxels_mm(found)
    centre = points.mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov((points - centre).T))
    axis = vectors[:, -1]
    if axis @ anatomy.axis("superior") < 0:
        axis = -axis  # proximal (superior) first
    s = -(points - centre) @ axis  # from proximal to distal
    step = float(data["slice_mm"])
    keys = np.floor((s - s.min()) / step).astype(int)
    line, areas = [], []
    voxel = anatomy.grid.voxel_volume_mm3
    for k in np.unique(keys):
        sel = keys == k
        if sel.sum() >= int(data["min_slice_voxels"]):
            line.append(points[sel].mean(axis=0))
            areas.append(sel.sum() * voxel / step)
    line = np.array(line)
    w = int(data["smoothing_slices"])
    if len(line) > w:
        kernel = np.ones(w) / w
        smooth = np.column_stack([np.convolve(line[:, i], kernel, mode="valid") for i in range(3)])
        line = np.vstack([line[:1], smooth, line[-1:]])
    lo, hi = data["radius_range_mm"]
    radius = float(np.clip(np.sqrt(np.median(areas) / np.pi), lo, hi))
    keep = np.r_[True, np.linalg.norm(np.diff(line, axis=0), axis=1) > 0.2]
    return line[keep], radius


def _around_neck(anatomy: SegmentedAnatomy, data, knee: str) -> np.ndarray:
    """An arc around the fibular neck (unlabelled nerve), posterior to anterolateral."""
    right, ant, sup = _axes(anatomy)
    fibula = anatomy.voxels_mm(anatomy.require("fibula", what="the fibula", rule=PERONEAL))
    levels, half = _profile(fibula, right * (1 if knee == "right" else -1), sup, fibula.mean(axis=0))
    head = float(levels[np.argmax(half)])
    neck = head - float(data["neck_below_head_mm"])
    slab = fibula[np.abs(fibula @ sup - neck) <= SLAB_MM]
    if not len(slab):
        raise ValidationError(f"target: the fibular neck ({data['neck_below_head_mm']:g} mm below the head) is not in the field of view; the rule '{PERONEAL}' needs it")
    c = slab.mean(axis=0)
    lateral = right * (1 if knee == "right" else -1)
    radius = float(np.max(np.linalg.norm((slab - c) - np.outer((slab - c) @ sup, sup), axis=1)))
    reach = radius + float(data["surface_gap_mm"]) + float(data["neck_radius_mm"])
    angles = np.radians(np.linspace(*data["neck_arc_deg"], 7))
    return np.array([c + reach * (np.cos(a) * lateral + np.sin(a) * ant) - 2.0 * i * sup for i, a in enumerate(angles)])


def _place_peroneal(anatomy: SegmentedAnatomy, target: str, side: str | None) -> PlacedTarget:
    data = rule_data("knee", PERONEAL)
    labelled = anatomy.structures(lambda s: s.nerve == "common peroneal nerve")
    if anatomy.find("fibula"):
        knee = knee_side(anatomy, PERONEAL)
        _check_side(side, knee)
    else:
        knee = side
    if labelled:
        line, radius = _from_label(anatomy, labelled, data)
        how = f"from its label {labelled[0][1].name!r} ({len(line)} slice centroids, radius {radius:.2f} mm from the cross-section)"
    else:
        if knee is None:
            raise ValidationError(f"target: neither a common peroneal nerve label nor the fibula is in the segmentation; the rule '{PERONEAL}' needs one of them")
        line, radius = _around_neck(anatomy, data, knee), float(data["neck_radius_mm"])
        how = "wound around the fibular neck (no nerve label)"
    arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(line, axis=0), axis=1))]
    nerve = {"name": target, "centerline_mm": line.round(3).tolist(), "radius_mm": radius, "fibres": data["fibres"], "end_organ_mm": float(data["end_organ_mm"]),
             "source": f"{data['source']}; {data['nerve_source']}"}  # fmt: skip
    if anatomy.find("fibula"):  # where it crosses the fibular head and neck: where it is entrapped and treated
        from scipy.spatial import cKDTree

        k = int(np.argmin(cKDTree(anatomy.voxels_mm(anatomy.find("fibula"))).query(line)[0]))
    else:
        k = int(np.searchsorted(arc, float(data["at_fraction"]) * arc[-1]))
    at, mid = float(np.clip(arc[k], 5.0, arc[-1] - 5.0)), line[k]
    lateral = anatomy.axis("right") * (1.0 if knee == "right" else -1.0)
    hints = (
        {"nerve": target, "approach": "parallel", "at_mm": at, "toward": (-anatomy.axis("superior")).tolist(), "side": lateral.tolist(), "source": data["placement_source"]},
        {"nerve": target, "approach": "perpendicular", "at_mm": at, "toward": (-lateral).tolist()},
    )
    critical = ({"name": "common peroneal nerve (motor fibres)", "kind": "motor-nerve", "nerve": target},)
    return PlacedTarget(target, (nerve,), hints, data["template"], PERONEAL, tuple(float(v) for v in mid), critical=critical,
                        landmarks={"common peroneal nerve (middle)": tuple(float(v) for v in mid)}, notes=(f"{target} {how}",))  # fmt: skip


RULES = (
    LandmarkRule(GENICULAR, re.compile(rule_data("knee", GENICULAR)["targets"][1:-1]), _genicular_candidates, _place_genicular),
    LandmarkRule(PERONEAL, re.compile(rule_data("knee", PERONEAL)["targets"][1:-1]), _peroneal_candidates, _place_peroneal),
)
