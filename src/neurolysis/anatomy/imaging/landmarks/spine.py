"""Spine landmark rules: the lumbar medial branches L1-L5 at the SAP-TP junction of the level below.

The rule's text, source and numbers are in ``data/landmarks_spine.toml [rule.lumbar-medial-branch]``.
The junction is found on the posterior elements of the vertebra below (its label minus its body),
on the plan's side, in patient axes (lateral, anterior, superior) centred on the body:

1. the transverse process (TP): the axial rows of posterior-element voxels whose lateral reach
   is at least ``tp_reach_fraction`` of the largest (the contiguous run around the widest row);
2. the superior articular process (SAP): the rows within ``sap_band_mm`` above the TP's top; its
   lateral face is their median lateral reach;
3. the junction J: on that face (plus the nerve's radius), on top of the TP, at the TP's dorsal
   surface near its root.

The nerve, the exiting spinal nerve and the dorsal ramus follow the template's courses relative
to J; any point that falls in bone is moved to the nearest voxel outside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from neurolysis.validation import ValidationError

from ..anatomy import SegmentedAnatomy
from . import Candidate, LandmarkRule, PlacedTarget, check_side, rule_data

RULE = "lumbar-medial-branch"
LEVELS = ("L1", "L2", "L3", "L4", "L5")
MIDLINE_MARGIN_MM = 3.0
MIN_TP_REACH_MM = 15.0
"""A side whose posterior elements reach less than this from the body's centre has no usable TP
(cut off by the field of view, or no TP segmented)."""
TP_ROOT_WIDTH_MM = 8.0
"""How far lateral of the SAP's face the TP's dorsal surface is read (its root)."""
BONE_SEARCH_MARGIN_VOXELS = 6


@dataclass(frozen=True)
class _Frame:
    """Patient axes at a vertebral body: lateral (toward the plan's side), anterior, superior."""

    origin: np.ndarray
    lateral: np.ndarray
    anterior: np.ndarray
    superior: np.ndarray

    def local(self, points_mm: np.ndarray) -> np.ndarray:
        rel = np.asarray(points_mm, float) - self.origin
        return np.column_stack([rel @ self.lateral, rel @ self.anterior, rel @ self.superior])

    def world(self, local_mm) -> np.ndarray:
        local = np.asarray(local_mm, float).reshape(-1, 3)
        return self.origin + local[:, :1] * self.lateral + local[:, 1:2] * self.anterior + local[:, 2:] * self.superior

    def vector(self, local) -> np.ndarray:
        v = np.asarray(local, float)
        return v[0] * self.lateral + v[1] * self.anterior + v[2] * self.superior


def _level_below(anatomy: SegmentedAnatomy, level: str):
    """The vertebra below ``level`` (L5: S1, or the sacrum when S1 has no label of its own)."""
    if level != "L5":
        below = f"L{int(level[1]) + 1}"
        return below, anatomy.require("vertebra", below, what=f"the {below} vertebra", rule=RULE)
    s1 = anatomy.find("vertebra", "S1")
    return ("S1", s1) if s1 else ("sacrum", anatomy.require("sacrum", what="the S1 vertebra or the sacrum", rule=RULE))


def _posterior_elements(anatomy: SegmentedAnatomy, vertebra, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(posterior-element voxel centres (n, 3) mm, body centre mm) of one vertebra."""
    box = anatomy.box(vertebra, margin_voxels=2)
    bone = anatomy.mask(vertebra, box)
    bodies = anatomy.find("vertebral-body")
    if bodies:
        body = anatomy.mask(bodies, box) & bone
    else:
        canal = anatomy.find("spinal-canal") + anatomy.find("spinal-cord")
        if not canal:
            raise ValidationError(f"target: the landmark 'vertebral body or spinal canal' is not in the segmentation; the rule '{RULE}' needs one of them to separate the {name} posterior elements from its body (see `neurolysis anatomy inspect`)")
        points = anatomy.points_mm(bone, box)
        canal_points = anatomy.points_mm(anatomy.mask(canal, box), box)
        if not len(canal_points):
            raise ValidationError(f"target: the spinal canal is not segmented at {name}; the rule '{RULE}' needs it (or a vertebral-body layer) to find the posterior elements")
        anterior = anatomy.axis("anterior")
        front = float((canal_points @ anterior).max()) + float(rule_data("spine", RULE)["body_from_canal_margin_mm"])
        body_flat = (points @ anterior) > front
        body = np.zeros_like(bone)
        body[tuple(np.argwhere(bone)[body_flat].T)] = True
    elements = bone & ~body
    if not body.any() or not elements.any():
        raise ValidationError(f"target: the {name} vertebra has no {'body' if not body.any() else 'posterior elements'} in the segmentation; the rule '{RULE}' needs both")
    return anatomy.points_mm(elements, box), anatomy.points_mm(body, box).mean(axis=0)


def _frame(anatomy: SegmentedAnatomy, centre: np.ndarray, side: str) -> _Frame:
    return _Frame(centre, anatomy.axis(side), anatomy.axis("anterior"), anatomy.axis("superior"))


def _rows(local: np.ndarray, bin_mm: float) -> dict[int, np.ndarray]:
    keys = np.floor(local[:, 2] / bin_mm).astype(int)
    return {int(k): local[keys == k] for k in np.unique(keys)}


def _junction(local: np.ndarray, bin_mm: float, voxel_mm: float, radius_mm: float, name: str, side: str) -> tuple[np.ndarray, dict]:
    """The SAP-TP junction (local mm) from one side's posterior elements (module docstring)."""
    data = rule_data("spine", RULE)
    rows = _rows(local, bin_mm)
    keys = sorted(rows)
    reach = np.array([rows[k][:, 0].max() for k in keys])
    widest = int(np.argmax(reach))
    if reach[widest] < MIN_TP_REACH_MM:
        raise ValidationError(f"target: no transverse process on the {side} of {name} (its posterior elements reach {reach[widest]:.0f} mm from the body's centre, < {MIN_TP_REACH_MM:g} mm); the rule '{RULE}' needs it")
    tp = reach >= float(data["tp_reach_fraction"]) * reach[widest]
    lo = hi = widest
    while lo > 0 and tp[lo - 1]:
        lo -= 1
    while hi < len(keys) - 1 and tp[hi + 1]:
        hi += 1
    tp_points = np.vstack([rows[keys[i]] for i in range(lo, hi + 1)])
    top = float(tp_points[:, 2].max()) + 0.5 * voxel_mm
    band = local[(local[:, 2] > top) & (local[:, 2] <= top + float(data["sap_band_mm"]))]
    if not len(band):
        raise ValidationError(f"target: no superior articular process above the {side} transverse process of {name} in the segmentation; the rule '{RULE}' needs it")
    sap_face = float(np.median([r[:, 0].max() for r in _rows(band, bin_mm).values()])) + 0.5 * voxel_mm
    root = tp_points[(tp_points[:, 0] >= sap_face - voxel_mm) & (tp_points[:, 0] <= sap_face + TP_ROOT_WIDTH_MM)]
    root = root if len(root) else tp_points
    dorsal = float(root[:, 1].min()) - 0.5 * voxel_mm
    junction = np.array([sap_face + radius_mm, dorsal, top + radius_mm])
    return junction, {"tp_top_mm": top, "sap_face_mm": sap_face, "tp_reach_mm": float(reach[widest])}


def _out_of_bone(anatomy: SegmentedAnatomy, points_mm: np.ndarray) -> np.ndarray:
    """Points moved to the nearest voxel centre outside bone where they fall in a bone voxel."""
    bones = anatomy.structures(lambda s: s.tissue == "bone")
    if not bones:
        return points_mm
    grid = anatomy.grid
    index = np.rint(grid.to_index(points_mm)).astype(int)
    lo = np.maximum(index.min(axis=0) - BONE_SEARCH_MARGIN_VOXELS, 0)
    hi = np.minimum(index.max(axis=0) + BONE_SEARCH_MARGIN_VOXELS + 1, grid.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    bone = anatomy.mask(bones, box)
    if not bone.any():
        return points_mm
    _, nearest = ndimage.distance_transform_edt(bone, sampling=grid.spacing_mm, return_indices=True)
    out = np.array(points_mm, float)
    for n, ijk in enumerate(index - lo):
        if np.all(ijk >= 0) and np.all(ijk < bone.shape) and bone[tuple(ijk)]:
            free = nearest[(slice(None), *ijk)]
            out[n] = grid.to_mm((free + lo)[None, :])[0]
    return out


def _spec(name, frame, anatomy, course_local, junction, radius_mm, fibres, end_organ_mm, source, kind=None) -> dict:
    points = _out_of_bone(anatomy, frame.world(np.asarray(course_local, float) + junction))
    keep = np.concatenate([[True], np.linalg.norm(np.diff(points, axis=0), axis=1) > 1e-6])  # two points moved onto one voxel
    spec = {"name": name, "centerline_mm": points[keep].round(3).tolist(), "radius_mm": radius_mm, "fibres": fibres, "end_organ_mm": end_organ_mm, "source": source}
    return spec | ({"kind": kind} if kind else {})


def _sides(anatomy: SegmentedAnatomy, level: str) -> tuple[str, ...]:
    try:
        name, below = _level_below(anatomy, level)
        elements, centre = _posterior_elements(anatomy, below, name)
    except ValidationError:
        return ()
    out = []
    for side in ("left", "right"):
        local = _frame(anatomy, centre, side).local(elements)
        if (local[:, 0] > MIDLINE_MARGIN_MM).any() and local[local[:, 0] > MIDLINE_MARGIN_MM, 0].max() >= MIN_TP_REACH_MM:
            out.append(side)
    return tuple(out)


def _candidates(anatomy: SegmentedAnatomy) -> list[Candidate]:
    data = rule_data("spine", RULE)
    out = []
    for level in LEVELS:
        sides = _sides(anatomy, level)
        if sides:
            out.append(Candidate(f"{level} medial branch", sides, RULE, data["description"]))
    return out


def _place(anatomy: SegmentedAnatomy, target: str, side: str | None) -> PlacedTarget:
    data = rule_data("spine", RULE)
    level = target.split()[0]
    name, below = _level_below(anatomy, level)
    elements, centre = _posterior_elements(anatomy, below, name)
    side = check_side(side, ("left", "right"), target)
    available = _sides(anatomy, level)
    if side not in available:
        check_side(side, available, target)
    frame = _frame(anatomy, centre, side)
    local = frame.local(elements)
    local = local[local[:, 0] > MIDLINE_MARGIN_MM]
    spacing = anatomy.grid.spacing_mm
    bin_mm = float(max(1.0, spacing.min()))
    radius = float(data["radius_mm"])
    junction, measured = _junction(local, bin_mm, float(spacing.max()), radius, name, side)
    nerve = _spec(target, frame, anatomy, data["course_mm"], junction, radius, data["fibres"], float(data["end_organ_mm"]), f"{data['source']}; course: {data['course_source']}")
    ramus = _spec(f"L{level[1]} dorsal ramus", frame, anatomy, data["dorsal_ramus_mm"], junction, float(data["dorsal_ramus_radius_mm"]), "spinal nerve", 30.0, data["spinal_nerve_source"])
    spinal = _spec(f"L{level[1]} spinal nerve", frame, anatomy, data["spinal_nerve_mm"], junction, float(data["spinal_nerve_radius_mm"]), "spinal nerve", 200.0, data["spinal_nerve_source"])
    placements = (
        {"nerve": target, "approach": "parallel", "at_mm": float(data["at_mm"]), "toward": frame.vector(data["toward"]).tolist(), "side": frame.vector(data["side"]).tolist(), "source": data["placement_source"]},
        {"nerve": target, "approach": "perpendicular", "at_mm": float(data["at_mm"]), "toward": frame.vector(data["perpendicular_toward"]).tolist()},
    )
    j = frame.world(junction)[0]
    return PlacedTarget(
        target=target,
        nerves=(nerve, ramus, spinal),
        placements=placements,
        template=data["template"],
        rule=RULE,
        centre_mm=tuple(float(v) for v in j),
        critical=({"name": spinal["name"], "kind": "motor-nerve", "nerve": spinal["name"]},),
        landmarks={f"{name} SAP-TP junction ({side})": tuple(float(v) for v in j), f"{name} body centre": tuple(float(v) for v in centre)},
        notes=(f"{target} over the {side} SAP-TP junction of {name}: TP top {measured['tp_top_mm']:.1f} mm above and SAP face {measured['sap_face_mm']:.1f} mm lateral of the body's centre; {data['junction_source']}",),
    )


RULES = (LandmarkRule(RULE, re.compile(rule_data("spine", RULE)["targets"][1:-1]), _candidates, _place),)
