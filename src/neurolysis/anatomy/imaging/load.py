"""Read a segmentation (one or more label layers), its names and an optional image into a
:class:`~neurolysis.anatomy.imaging.anatomy.SegmentedAnatomy`."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np

from neurolysis.validation import ValidationError

from .anatomy import Layer, SegmentedAnatomy
from .names import resolve_names
from .readers import existing, read_image, read_segmentation, resample_image
from .rules import classify
from .volume import Segmentation

GRID_TOLERANCE_MM = 1e-3
MAX_SPACING_MM = 5.0
"""Coarsest voxel accepted (mm): bone surfaces and the needle's path are read from the voxels, and
beyond 5 mm a transverse process or a rib is one or two voxels thick."""
HASH_CHUNK_BYTES = 2**20
MAX_LAYERS = 8


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, or of a folder's files (names and bytes, in name order)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            digest.update(f.name.encode() + b"\0")
        with f.open("rb") as handle:
            while chunk := handle.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
    return digest.hexdigest()


def as_list(value, field: str) -> list:
    """A path or list of paths (or names specs) as a list; None -> []."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValidationError(f"{field} = {value!r}: must be a path (text) or a list of paths")


def _same_grid(layer: Segmentation, main: Segmentation, where: str) -> Segmentation:
    """``layer`` on ``main``'s grid: as is when the grids agree, else nearest-neighbour resampled."""
    grid = layer.grid.in_frame(main.grid.frame)
    if grid.shape == main.grid.shape and np.allclose(grid.affine, main.grid.affine, atol=GRID_TOLERANCE_MM):
        return Segmentation(layer.labels, main.grid, layer.names, layer.source)
    target = main.grid
    ii, jj = np.meshgrid(np.arange(target.shape[0]), np.arange(target.shape[1]), indexing="ij")
    out = np.zeros(target.shape, dtype=layer.labels.dtype)
    shape = np.asarray(layer.labels.shape)
    for k in range(target.shape[2]):
        ijk = np.column_stack([ii.ravel(), jj.ravel(), np.full(ii.size, k)])
        index = np.rint(grid.to_index(target.to_mm(ijk))).astype(np.int64)
        inside = np.all((index >= 0) & (index < shape), axis=1)
        plane = np.zeros(ii.size, dtype=layer.labels.dtype)
        plane[inside] = layer.labels[index[inside, 0], index[inside, 1], index[inside, 2]]
        out[:, :, k] = plane.reshape(ii.shape)
    if not np.any(out):
        raise ValidationError(f"{where} = {layer.source!r}: does not overlap the main segmentation {main.source!r}")
    return Segmentation(out, main.grid, layer.names, layer.source)


def load_anatomy(segmentation, names=None, image: str | None = None, tissues: Mapping[str, str] | None = None, base_dir: str | Path | None = None) -> SegmentedAnatomy:
    """Read and classify: ``segmentation`` a path or list of paths (the first is the main layer),
    ``names`` one names spec per layer (or one for all; :mod:`.names`), ``image`` an optional CT or
    MR resampled onto the main grid, ``tissues`` name -> tissue overrides (``anatomy.tissues``)."""
    base = Path(base_dir) if base_dir is not None else None

    def resolved(p: str) -> Path:
        path = Path(p)
        return path if path.is_absolute() or base is None else base / path

    paths = as_list(segmentation, "anatomy.segmentation")
    if not paths:
        raise ValidationError("anatomy.segmentation = None: a label map or a TotalSegmentator folder is required")
    if len(paths) > MAX_LAYERS:
        raise ValidationError(f"anatomy.segmentation: {len(paths)} files; at most {MAX_LAYERS} label layers")
    for i, p in enumerate(paths):
        existing("anatomy.segmentation" if len(paths) == 1 else f"anatomy.segmentation[{i}]", resolved(p))
    specs = as_list(names, "anatomy.names") if names is not None else [None]
    if len(specs) == 1:
        specs = specs * len(paths)
    if len(specs) != len(paths):
        raise ValidationError(f"anatomy.names: {len(specs)} names sources for {len(paths)} segmentation files; give one, or one per file")
    layers = []
    warnings: list[str] = []
    main = None
    for i, (p, spec) in enumerate(zip(paths, specs, strict=True)):
        where = "anatomy.segmentation" if len(paths) == 1 else f"anatomy.segmentation[{i}]"
        seg = read_segmentation(resolved(p), where)
        if main is None and seg.grid.spacing_mm.max() > MAX_SPACING_MM:
            raise ValidationError(f"{where} = {str(resolved(p))!r}: voxel spacing {np.round(seg.grid.spacing_mm, 3).tolist()} mm; at most {MAX_SPACING_MM:g} mm (resample it finer)")
        seg = seg if main is None else _same_grid(seg, main, where)
        main = main or seg
        present = seg.present()
        found = resolve_names(spec, seg.names, present, "anatomy.names" if len(paths) == 1 else f"anatomy.names[{i}]", base)
        warnings += found.warnings
        by_name = {k: v for k, v in (tissues or {}).items() if k in set(found.names.values())}
        structures = classify(found.names, present, found.tissues, by_name)
        unmapped = [s.name for s in structures.values() if not s.mapped]
        if unmapped:
            warnings.append(f"{where}: no rule maps {', '.join(repr(n) for n in unmapped[:6])}{', ...' if len(unmapped) > 6 else ''}: given the default tissue ({structures[next(k for k, s in structures.items() if not s.mapped)].tissue})")
        layers.append(Layer(seg, MappingProxyType(structures), found.source))
    if tissues:
        known = {s.name for layer in layers for s in layer.structures.values()}
        unknown = sorted(set(tissues) - known)
        if unknown:
            raise ValidationError(f"anatomy.tissues: {', '.join(repr(n) for n in unknown[:5])} name no structure of the segmentation")
    picture = None
    if image is not None:
        picture = resample_image(read_image(resolved(image)), main.grid)
    files = [resolved(p) for p in paths] + ([resolved(image)] if image else [])
    sources = {"segmentation": ", ".join(str(resolved(p)) for p in paths)} | ({"image": str(resolved(image))} if image else {})
    hashes = MappingProxyType({str(f): file_sha256(f) for f in files})
    return SegmentedAnatomy(tuple(layers), picture, tuple(warnings), MappingProxyType(sources), hashes)


__all__ = ["as_list", "load_anatomy"]
