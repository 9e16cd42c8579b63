"""A :class:`~neurolysis.anatomy.scene.Scene` from a segmentation: regions from the labels
(tissues by the name rules), the target nerve and its placements from the landmark rules,
critical structures from the labels' kinds, and the image for the figures.

Only a region around the target is kept (``ROI_HALF_MM`` each way, at the segmentation's own
voxels): the solvers' meshes reach about 70 mm from the needle, and a 512 x 512 x 600 CT would
otherwise cost gigabytes as region indices. Beyond the region the tissue is the medium's default
(region ``outside``). Coordinates are the segmentation's own scanner coordinates (metres inside,
mm at the edge) in its frame (``Scene.convention``: RAS for NIfTI, the ``space`` of an NRRD).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

import numpy as np

from neurolysis.engines.poses import MAX_ACTIVE_TIP_IN_BONE, tip_in_bone
from neurolysis.validation import ValidationError

from .._build import MM, build_placements, critical_from_spec, nerve_from_spec, paint_nerve_regions
from ..placement import DEFAULT_TIP_LENGTH_M, recommended_pose
from ..scene import CriticalStructure, Scene
from ..voxels import VoxelRegions, sample_linear
from .anatomy import SegmentedAnatomy
from .landmarks import PlacedTarget, place_target
from .rules import Structure

ROI_HALF_MM = 80.0
"""Half-size of the region kept around the target (mm): beyond the 3D RF mesh (60 mm past a
6 mm fine zone) and the chemical and cryo domains."""
OUTSIDE = "outside"
UNLABELLED = "unlabelled"


def _crop(anatomy: SegmentedAnatomy, centres_mm: np.ndarray) -> tuple[tuple[slice, slice, slice], bool]:
    """The index box within ``ROI_HALF_MM`` of every centre (n, 3) mm (whether it is smaller than the grid)."""
    grid = anatomy.grid
    half = ROI_HALF_MM
    corners = np.array([c + [a, b, d] for c in np.atleast_2d(centres_mm) for a in (-half, half) for b in (-half, half) for d in (-half, half)])
    index = grid.to_index(corners)
    shape = np.asarray(grid.shape)
    lo = np.clip(np.floor(index.min(axis=0)).astype(int), 0, shape)
    hi = np.clip(np.ceil(index.max(axis=0)).astype(int) + 1, 0, shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    return box, bool(np.any(lo > 0) or np.any(hi < shape))  # type: ignore[return-value]


def _regions(anatomy: SegmentedAnatomy, box, target: PlacedTarget) -> tuple[np.ndarray, list[str], list[str], list[Structure]]:
    """Region index per voxel of the box (the first layer's label, else a later layer's, else
    unlabelled), region names and tissues, and the structures present in the box."""
    names, tissues = [OUTSIDE, UNLABELLED], [_default_tissue(), _default_tissue()]
    present: list[Structure] = []
    out = np.ones(tuple(b.stop - b.start for b in box), dtype=np.int32)  # 1 = unlabelled
    filled = np.zeros(out.shape, dtype=bool)
    for layer in anatomy.layers:
        labels = layer.segmentation.labels[box]
        values = np.unique(labels)
        lookup = {}
        for value in values.tolist():
            s = layer.structures.get(int(value))
            if value == 0 or s is None:
                continue
            if s.name not in names:
                names.append(s.name)
                tissues.append(s.tissue)
                present.append(s)
            lookup[int(value)] = names.index(s.name)
        if not lookup:
            continue
        table = np.array([lookup.get(int(v), 0) for v in values], dtype=np.int32)  # by position in values: labels may reach 2**31
        mapped = table[np.searchsorted(values, labels)]
        take = (mapped > 0) & ~filled
        out[take] = mapped[take]
        filled |= mapped > 0
    return out, names, tissues, present


def _default_tissue() -> str:
    from neurolysis._catalog import load_catalog

    return load_catalog("structure_rules")["default_tissue"]


def _critical(present: list[Structure], targets: set[str]) -> list[CriticalStructure]:
    """One critical structure per labelled structure of a critical kind, except the target nerves' own labels."""
    return [CriticalStructure(name=s.name, kind=s.critical, regions=(s.name,)) for s in present if s.critical and s.nerve not in targets]


def _clear_of_bone(scene: Scene, placements: Mapping, tip_length_m: float) -> dict:
    """Each recommended pose whose active tip lies in bone, or whose tip lies in a critical structure
    (a voxelised bone surface or a vessel beside the nerve can swallow a hinted pose), chosen again
    around the nerve by the path score (fewest bone points, then critical ones)."""
    out = dict(placements)
    blocked = scene.regions_of_tissue("bone")
    avoid = sorted({scene.region_index(r) for c in scene.critical for r in c.regions})
    for (nerve_name, approach), pose in placements.items():
        in_critical = int(scene.label_at(pose.tip_m[None])[0]) in avoid
        if not in_critical and tip_in_bone(scene, pose, tip_length_m)[0] <= MAX_ACTIVE_TIP_IN_BONE:
            continue
        nerve = scene.nerve(nerve_name)
        out[(nerve_name, approach)] = recommended_pose(nerve, approach, label_at=scene.label_at, bounds_m=scene.bounds_m, blocked=blocked, avoid=avoid)
    return out


def _within(spec: Mapping, voxels: VoxelRegions, anatomy: SegmentedAnatomy) -> dict:
    """A nerve spec cut to the region simulated: the longest run of centreline points inside it; the
    length cut off distally joins the path to the end organ (regrowth must still cover it). A nerve
    with no point inside the scan at all is refused."""
    line = np.asarray(spec["centerline_mm"], float)
    index = voxels.to_index(line * MM)
    inside = np.all((index >= -0.5) & (index <= voxels.shape - 0.5), axis=1)
    if inside.all():
        return dict(spec)
    whole = anatomy.grid.to_index(line)
    if not np.all((whole >= -0.5) & (whole <= np.asarray(anatomy.grid.shape) - 0.5), axis=1).all():
        k = int(np.argmax(~np.all((whole >= -0.5) & (whole <= np.asarray(anatomy.grid.shape) - 0.5), axis=1)))
        raise ValidationError(f"target: the landmark rule puts {spec['name']!r} at [{', '.join(f'{v:.1f}' for v in line[k])}] mm, outside the segmentation's field of view")
    runs = np.split(np.arange(len(line)), np.flatnonzero(np.diff(inside.astype(int))) + 1)
    best = max((r for r in runs if inside[r[0]]), key=len)
    if len(best) < 2:
        raise ValidationError(f"target: {spec['name']!r} has less than two centreline points in the region simulated")
    distal = float(np.linalg.norm(np.diff(line[best[-1]:], axis=0), axis=1).sum())
    return dict(spec) | {"centerline_mm": line[best].tolist(), "end_organ_mm": float(spec["end_organ_mm"]) + distal}


def _merged(placed: list[PlacedTarget]) -> tuple[list[Mapping], list[Mapping], list[Mapping]]:
    """The targets' nerve, placement and critical specs, each nerve once (two rules may place the same one)."""
    nerves, seen = [], set()
    for p in placed:
        for spec in p.nerves:
            if spec["name"] not in seen:
                seen.add(spec["name"])
                nerves.append(spec)
    critical = list({c["name"]: c for p in placed for c in p.critical}.values())
    return nerves, [h for p in placed for h in p.placements], critical


def scene_from_anatomy(anatomy: SegmentedAnatomy, target: str | tuple[str, ...] | None, side: str | None, name: str = "segmentation") -> Scene:
    """The scene of a plan on ``anatomy`` for its target (or targets: a plan with several needles)
    on ``side``: see the module docstring."""
    wanted = (target,) if target is None or isinstance(target, str) else tuple(dict.fromkeys(target))
    placed = [place_target(anatomy, t, side) for t in wanted]
    first = placed[0]
    targets = tuple(p.target for p in placed)
    box, cropped = _crop(anatomy, np.array([p.centre_mm for p in placed], float))
    regions, names, tissues, present = _regions(anatomy, box, first)
    affine = anatomy.grid.affine.copy()
    affine[:3, 3] = anatomy.grid.to_mm(np.array([[b.start for b in box]]))[0]
    voxels = VoxelRegions(regions, affine)
    nerve_specs, hints, critical_specs = _merged(placed)
    nerve_specs = [_within(spec, voxels, anatomy) for spec in nerve_specs]
    nerves = tuple(nerve_from_spec(spec, f"landmark rule: nerve[{i}]") for i, spec in enumerate(nerve_specs))
    paint_nerve_regions(nerves, names, tissues, voxels.nerve_layers, lambda n: f"target.nerve = {n!r}: a structure of the segmentation has the same name")
    critical = _critical(present, set(targets))
    critical += [critical_from_spec(c, f"landmark rule: critical[{i}]", names, [n.name for n in nerves]) for i, c in enumerate(critical_specs)]
    bounds = voxels.bounds_m()
    blocked = [i for i, t in enumerate(tissues) if t == "bone"]
    avoid = sorted({names.index(r) for c in critical for r in c.regions})
    placements = build_placements(hints, nerves, targets, voxels.label_at, bounds, blocked, avoid, "landmark rule: placement")
    image_at = None
    if anatomy.image is not None:
        picture = anatomy.image.values[box]
        fill = float(anatomy.image.values.min())
        image_at = lambda points_m: sample_linear(picture, voxels, points_m, fill)  # noqa: E731
    grid = anatomy.grid
    axes = ", ".join(f"{a} to the patient's {d}" for a, d in zip("xyz", _axis_words(grid.frame), strict=True))
    sources = dict(anatomy.sources) | {
        "landmark rule": "; ".join(f"{p.rule}: {p.notes[0] if p.notes else ''}".rstrip(": ") for p in placed),
        "region simulated": ((f"a {2 * ROI_HALF_MM:g} mm box around the target" if len(placed) == 1 else f"a box reaching {ROI_HALF_MM:g} mm around each target") + ", "
                             f"{regions.shape[0]} x {regions.shape[1]} x {regions.shape[2]} of the {grid.shape[0]} x {grid.shape[1]} x {grid.shape[2]} voxels"
                             if cropped else f"the whole volume, {grid.shape[0]} x {grid.shape[1]} x {grid.shape[2]} voxels") + f" of {', '.join(f'{s:.3g}' for s in grid.spacing_mm)} mm",
    }  # fmt: skip
    scene = Scene(
        name=name,
        description=f"{', '.join(targets)} placed by landmarks ({', '.join(dict.fromkeys(p.rule for p in placed))}) on {anatomy.sources.get('segmentation', 'a segmentation')}",
        bounds_m=bounds,
        region_names=tuple(names),
        region_tissue=tuple(tissues),
        label_at=voxels.label_at,
        nerves=nerves,
        critical=tuple(critical),
        target=first.target,
        placements=MappingProxyType(placements),
        sources=MappingProxyType(sources),
        targets=targets,
        frame=f"{grid.frame}: the segmentation's scanner coordinates ({axes}), mm",
        convention=grid.frame,
        image_at=image_at,
        image_modality=None if anatomy.image is None else anatomy.image.modality,
        landmarks=MappingProxyType({k: tuple(float(v) for v in point) for p in placed for k, point in p.landmarks.items()}),
        procedure_template=first.template or None,
        landmark_rule=", ".join(dict.fromkeys(p.rule for p in placed)),
        files_sha256=anatomy.files_sha256,
        warnings=(*anatomy.warnings, *([f"anatomy: simulated in {sources['region simulated']}"] if cropped else [])),
    )
    return replace(scene, placements=MappingProxyType(_clear_of_bone(scene, scene.placements, DEFAULT_TIP_LENGTH_M)))


def _axis_words(frame: str) -> tuple[str, str, str]:
    return ("right", "anterior", "superior") if frame == "RAS" else ("left", "posterior", "superior")


__all__ = ["ROI_HALF_MM", "scene_from_anatomy"]
