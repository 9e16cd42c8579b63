"""Needles in the anatomy: the frame of the needle-aligned meshes and the checks of needle poses.

Every 3D engine (RF, cryo, chemical) builds its mesh in the first needle's frame (apex at
the origin, shaft along +z) and moves it rigidly into the anatomy with :class:`NeedleFrame`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from neurolysis.anatomy.scene import Scene
from neurolysis.fields import NeedlePose
from neurolysis.validation import ValidationError

PARALLEL_TOLERANCE_DEG = 1.0
MIN_GAP_MM = 1.0
"""Bipolar: smallest allowed gap between the two needle surfaces."""
MAX_SPACING_MM = 30.0
MAX_AXIAL_OFFSET_MM = 20.0


@dataclass(frozen=True)
class NeedleFrame:
    """Rigid map between the first needle's frame (apex at 0, shaft along +z) and the anatomy."""

    origin_m: np.ndarray
    rotation: np.ndarray  # columns: frame axes x, y, z in anatomy coordinates

    def to_local(self, points_m: np.ndarray) -> np.ndarray:
        return (np.asarray(points_m, float).reshape(-1, 3) - self.origin_m) @ self.rotation

    def to_world(self, local_m: np.ndarray) -> np.ndarray:
        return np.asarray(local_m, float).reshape(-1, 3) @ self.rotation.T + self.origin_m


def pose_frame(poses: Sequence[NeedlePose]) -> NeedleFrame:
    """The needle-aligned frame of the 3D meshes: origin at the first tip, z toward its hub,
    x toward the second needle (bipolar) or an arbitrary normal."""
    ez = -poses[0].direction  # toward the hub
    if len(poses) > 1:
        offset = poses[1].tip_m - poses[0].tip_m
        ex = offset - (offset @ ez) * ez
    else:
        helper = np.eye(3)[int(np.argmin(abs(ez)))]
        ex = helper - (helper @ ez) * ez
    ex = ex / np.linalg.norm(ex)
    ey = np.cross(ez, ex)
    return NeedleFrame(poses[0].tip_m.copy(), np.column_stack([ex, ey, ez]))


def validate_poses(poses: Sequence[NeedlePose], scene: Scene | None, bipolar: bool, radius_m: float) -> tuple[float | None, float]:
    """(spacing_m or None, axial offset of the second apex) after checking poses against the scene."""
    expected = 2 if bipolar else 1
    if len(poses) != expected:
        raise ValidationError(f"poses = {len(poses)} needle(s): {'bipolar' if bipolar else 'monopolar'} RF needs exactly {expected}")
    for i, pose in enumerate(poses):
        if not isinstance(pose, NeedlePose):
            raise ValidationError(f"poses[{i}] = {pose!r}: must be a NeedlePose")
        tip, d = np.asarray(pose.tip_m, float), np.asarray(pose.direction, float)
        if not (np.all(np.isfinite(tip)) and np.all(np.isfinite(d))) or np.linalg.norm(d) < 1e-12:
            raise ValidationError(f"poses[{i}] = tip {list(tip * 1e3)} mm, direction {list(d)}: must be finite with a non-zero direction")
        if scene is not None:
            lo, hi = (np.asarray(b, float) for b in scene.bounds_m)
            if np.any(tip < lo) or np.any(tip > hi):
                raise ValidationError(
                    f"poses[{i}].tip_mm = {np.round(tip * 1e3, 3).tolist()}: outside the scene {scene.name!r}, "
                    f"allowed range is {np.round(lo * 1e3, 3).tolist()} to {np.round(hi * 1e3, 3).tolist()} mm"
                )
    if not bipolar:
        return None, 0.0
    cos = float(poses[0].direction @ poses[1].direction)
    angle = float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    if angle > PARALLEL_TOLERANCE_DEG:
        raise ValidationError(f"bipolar needle angle = {angle:.2f} deg: the needles must be parallel (allowed range is [0, {PARALLEL_TOLERANCE_DEG:g}] deg)")
    offset = poses[1].tip_m - poses[0].tip_m
    axial = float(offset @ -poses[0].direction)
    spacing = float(np.linalg.norm(offset - axial * -poses[0].direction))
    low = 2 * radius_m * 1e3 + MIN_GAP_MM
    if not low <= spacing * 1e3 <= MAX_SPACING_MM:
        raise ValidationError(f"bipolar spacing_mm = {spacing * 1e3:g}: allowed range is [{low:g}, {MAX_SPACING_MM:g}] mm (needles must not overlap)")
    if abs(axial) * 1e3 > MAX_AXIAL_OFFSET_MM:
        raise ValidationError(f"bipolar tip offset along the needles = {axial * 1e3:g} mm: allowed range is [-{MAX_AXIAL_OFFSET_MM:g}, {MAX_AXIAL_OFFSET_MM:g}] mm")
    return spacing, axial


MAX_ACTIVE_TIP_IN_BONE = 0.1
"""A needle cannot be pushed into cortical bone: a plan whose active tip lies in bone over
more than this fraction of its length is refused (electrodes are placed *against* bone);
a Monte Carlo sample that lands so is drawn back along its shaft to the bone's surface."""


def tip_in_bone(scene: Scene, pose: NeedlePose, tip_len_m: float) -> tuple[float, list[str]]:
    """(fraction of the active tip inside bone, the bone regions it is in), from 21 points."""
    s = np.linspace(0.0, tip_len_m, 21)
    labels = np.asarray(scene.label_at(pose.tip_m - s[:, None] * pose.direction))
    in_bone = np.array([scene.region_tissue[i] == "bone" for i in labels])
    return float(in_bone.mean()), sorted({scene.region_names[i] for i in labels[in_bone]})


def against_bone(scene: Scene, pose: NeedlePose, tip_len_m: float, step_m: float = 0.25e-3, max_back_m: float = 30e-3) -> NeedlePose | None:
    """``pose`` drawn back along its shaft until at most MAX_ACTIVE_TIP_IN_BONE of the active
    tip is in bone (where an operator feels bone and stops); None if it is in bone after
    ``max_back_m``, and ``pose`` itself when it is not in bone."""
    back = 0.0
    while back <= max_back_m:
        moved = pose if back == 0.0 else NeedlePose(pose.tip_m - back * pose.direction, pose.direction)
        if tip_in_bone(scene, moved, tip_len_m)[0] <= MAX_ACTIVE_TIP_IN_BONE:
            return moved
        back += step_m
    return None


def tissue_at(scene: Scene | None, points_m: np.ndarray, default: str) -> np.ndarray:
    """Tissue id at points (n, 3) of the anatomy frame (object array): the scene's region
    tissue there, or ``default`` everywhere without a scene."""
    points = np.asarray(points_m, float).reshape(-1, 3)
    if scene is None:
        return np.full(len(points), default, dtype=object)
    return np.asarray(scene.region_tissue, dtype=object)[np.asarray(scene.label_at(points), dtype=int)]
