"""A template's anatomy, or an uploaded scan, as NIfTI volumes for the page's slice and 3D viewer.

**Templates.** The scene's ``label_at`` is sampled at voxel centres over its bounds (voxel ~0.5-1 mm, at most
``MAX_VOXELS``), and every nerve is drawn at least ``NERVE_MIN_RADIUS_VOXELS`` voxels thick so a
1 mm nerve stays visible. The affine is in mm and the anatomy frame (x patient right, y
anterior, z cranial) is RAS+, so the viewer's mm coordinates are the plan's ``tip_mm``. Each
region gets a colour from its tissue (:data:`TISSUE_COLOURS`); label 0 (background) is clear.

**Uploaded scans.** The segmentation's label layers are merged as the scene merges them (the
first layer's label wins; a structure named in two layers is one region) into region indices
coloured by tissue, and the image (already on the segmentation's grid) is sent beside it, both
every ``stride``-th voxel along the finest axes first until at most :data:`MAX_VIEW_VOXELS` are
left (the note says so). The affine is the scan's own, in RAS (an LPS scan's x and y negated),
so the viewer's mm are scanner mm; the page converts them back to an LPS plan's frame.
"""

from __future__ import annotations

import gzip
from functools import cache

import numpy as np

from neurolysis.anatomy.primitives import polyline_distance
from neurolysis.anatomy.scene import Scene
from neurolysis.anatomy.templates import load_template
from neurolysis.report.colours import OTHER_TISSUE_COLOUR, TISSUE_COLOURS

MAX_VOXELS = 1_500_000
"""Largest label volume (voxels): ~1.5 MB of uint8 before gzip, a few hundred kB after."""
VOXEL_RANGE_MM = (0.5, 1.0)
VOXEL_STEP_MM = 0.05
NERVE_MIN_RADIUS_VOXELS = 0.75
MAX_VIEW_VOXELS = 4_000_000
"""Most voxels of an uploaded scan's volumes sent to the page (each about 1-4 MB gzipped)."""
CT_WINDOW_HU = (-350.0, 1150.0)
"""The CT display window (HU): soft tissue grey, bone white."""
IMAGE_PERCENTILES = (1.0, 99.0)
"""The display range of an image that is not CT (MR): these percentiles of its voxels."""
RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def voxel_size_mm(scene: Scene) -> float:
    """The voxel edge (mm, a multiple of ``VOXEL_STEP_MM``): the finest in ``VOXEL_RANGE_MM`` whose grid has at most ``MAX_VOXELS``."""
    extent_mm = (np.asarray(scene.bounds_m[1]) - np.asarray(scene.bounds_m[0])) * 1e3
    voxel = VOXEL_RANGE_MM[0]
    while voxel < VOXEL_RANGE_MM[1] and np.prod(np.ceil(extent_mm / voxel - 1e-9)) > MAX_VOXELS:
        voxel = round(voxel + VOXEL_STEP_MM, 6)
    return voxel


def label_grid(scene: Scene, voxel_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """(labels (nx, ny, nz) uint8, origin (mm) of voxel [0, 0, 0]'s centre)."""
    lo, hi = (np.asarray(b, float) * 1e3 for b in scene.bounds_m)
    shape = np.maximum(np.ceil((hi - lo) / voxel_mm - 1e-9).astype(int), 1)
    origin = lo + 0.5 * voxel_mm
    axes = [origin[i] + np.arange(shape[i]) * voxel_mm for i in range(3)]
    points_mm = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    labels = np.asarray(scene.label_at(points_mm * 1e-3)).astype(np.uint8)
    for nerve in scene.nerves:
        if nerve.name not in scene.region_names:
            continue
        radius_mm = max(nerve.radius_m * 1e3, NERVE_MIN_RADIUS_VOXELS * voxel_mm)
        line_mm = nerve.centerline_m * 1e3
        near = np.all((points_mm >= line_mm.min(axis=0) - radius_mm) & (points_mm <= line_mm.max(axis=0) + radius_mm), axis=1)
        idx = np.flatnonzero(near)
        inside = polyline_distance(points_mm[idx], line_mm) <= radius_mm
        labels[idx[inside]] = scene.region_index(nerve.name)
    return labels.reshape(shape), origin


def region_colours(scene: Scene) -> list[dict]:
    """Each region: index, name, tissue and colour (RGB 0-255); the viewer's label colour map."""
    return [
        {"index": i, "name": name, "tissue": tissue, "rgb": list(TISSUE_COLOURS.get(tissue, OTHER_TISSUE_COLOUR))}
        for i, (name, tissue) in enumerate(zip(scene.region_names, scene.region_tissue, strict=True))
    ]


@cache
def label_volume_nifti(template: str) -> bytes:
    """The template's label volume as gzipped NIfTI-1 bytes (cached: built once per template, ~0.3 s)."""
    scene = load_template(template)
    voxel = voxel_size_mm(scene)
    labels, origin = label_grid(scene, voxel)
    affine = np.diag([voxel, voxel, voxel, 1.0])
    affine[:3, 3] = origin
    return _nifti(labels, affine, f"neurolysis template {template}", label=True)


def _nifti(array: np.ndarray, affine: np.ndarray, description: str, *, label: bool, window: tuple[float, float] | None = None) -> bytes:
    """Gzipped NIfTI-1 bytes of ``array`` with ``affine`` (mm, RAS) as qform and sform."""
    import nibabel

    image = nibabel.Nifti1Image(array, affine)
    image.header.set_xyzt_units("mm")
    if label:
        image.header.set_intent("label")
    if window is not None:
        image.header["cal_min"], image.header["cal_max"] = window
    image.header["descrip"] = description[:79].encode("ascii", "replace")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    return gzip.compress(image.to_bytes(), compresslevel=6, mtime=0)


def view_strides(shape, spacing_mm) -> tuple[int, int, int]:
    """Voxel strides (i, j, k) leaving at most :data:`MAX_VIEW_VOXELS`: the finest axis (spacing x stride) coarsened first."""
    shape, spacing = np.asarray(shape, int), np.asarray(spacing_mm, float)
    stride = np.ones(3, int)
    while np.prod(-(-shape // stride)) > MAX_VIEW_VOXELS:
        stride[int(np.argmin(spacing * stride))] += 1
    return tuple(int(s) for s in stride)  # type: ignore[return-value]


def view_affine(grid, stride) -> np.ndarray:
    """The RAS affine (mm) of a grid taken every ``stride`` voxels."""
    affine = grid.affine if grid.frame == "RAS" else RAS_FROM_LPS @ grid.affine
    return affine @ np.diag([*stride, 1.0])


def segmentation_regions(anatomy) -> tuple[list[dict], list[dict[int, int]]]:
    """The viewer's regions of an uploaded segmentation (index, name, tissue, colour; 0 background)
    and, per layer, label -> region index (labels present in the volume only)."""
    regions = [{"index": 0, "name": "background", "tissue": None, "rgb": [0, 0, 0]}]
    by_name: dict[str, int] = {}
    lookups = []
    for layer in anatomy.layers:
        present = layer.segmentation.present()
        lookup = {}
        for label in sorted(present):
            s = layer.structures.get(label)
            if s is None:
                continue
            if s.name not in by_name:
                by_name[s.name] = len(regions)
                regions.append({"index": len(regions), "name": s.name, "tissue": s.tissue, "rgb": list(TISSUE_COLOURS.get(s.tissue, OTHER_TISSUE_COLOUR))})
            lookup[label] = by_name[s.name]
        lookups.append(lookup)
    return regions, lookups


def scan_view(anatomy) -> dict:
    """What the page is told about an uploaded scan's volumes: shape, voxel (mm), stride and a note."""
    grid = anatomy.grid
    stride = view_strides(grid.shape, grid.spacing_mm)
    shape = [-(-n // s) for n, s in zip(grid.shape, stride, strict=True)]
    voxel = [round(float(v) * s, 4) for v, s in zip(grid.spacing_mm, stride, strict=True)]
    whole = f"{grid.shape[0]} x {grid.shape[1]} x {grid.shape[2]}"
    note = (f"every voxel: {whole} of {' x '.join(f'{v:g}' for v in voxel)} mm" if stride == (1, 1, 1) else
            f"every {'/'.join(map(str, stride))}-th voxel along i/j/k: {' x '.join(map(str, shape))} of the {whole} voxels, "
            f"{' x '.join(f'{v:g}' for v in voxel)} mm (the solver reads every voxel)")  # fmt: skip
    return {"shape": shape, "voxel_mm": voxel, "stride": list(stride), "frame": grid.frame, "note": note}


def scan_label_nifti(anatomy) -> bytes:
    """The uploaded segmentation's regions (:func:`segmentation_regions`) as gzipped NIfTI (RAS mm)."""
    regions, lookups = segmentation_regions(anatomy)
    stride = view_strides(anatomy.grid.shape, anatomy.grid.spacing_mm)
    step = tuple(slice(None, None, s) for s in stride)
    out = None
    for layer, lookup in zip(anatomy.layers, lookups, strict=True):
        labels = layer.segmentation.labels[step]
        out = np.zeros(labels.shape, dtype=np.uint8 if len(regions) <= 256 else np.uint16) if out is None else out
        if not lookup:
            continue
        table = np.zeros(max(lookup) + 1, dtype=out.dtype)
        for label, index in lookup.items():
            table[label] = index
        mapped = table[np.minimum(labels, len(table) - 1)] * (labels < len(table))
        empty = out == 0
        out[empty] = mapped[empty]
    return _nifti(out, view_affine(anatomy.grid, stride), "neurolysis upload: regions by tissue", label=True)


def scan_image_nifti(anatomy) -> bytes | None:
    """The uploaded image on the segmentation's grid as gzipped NIfTI (RAS mm; int16 where it fits), or None."""
    if anatomy.image is None:
        return None
    stride = view_strides(anatomy.grid.shape, anatomy.grid.spacing_mm)
    values = anatomy.image.values[tuple(slice(None, None, s) for s in stride)]
    lo, hi = float(values.min()), float(values.max())
    ct = anatomy.image.modality == "CT" or lo < -500.0
    window = (max(CT_WINDOW_HU[0], lo), min(CT_WINDOW_HU[1], hi)) if ct else tuple(float(v) for v in np.percentile(values, IMAGE_PERCENTILES))
    if window[1] <= window[0]:
        window = None
    if lo >= -32768 and hi <= 32767 and hi - lo >= 100:
        values = np.rint(values).astype(np.int16)
    return _nifti(np.ascontiguousarray(values), view_affine(anatomy.grid, stride), f"neurolysis upload: {anatomy.image.modality or 'image'}", label=False, window=window)


__all__ = ["MAX_VIEW_VOXELS", "label_grid", "label_volume_nifti", "region_colours", "scan_image_nifti", "scan_label_nifti", "scan_view", "segmentation_regions", "voxel_size_mm"]
