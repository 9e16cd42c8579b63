"""Import a segmented label volume (NIfTI) as a scene.

Three inputs (formats in ``docs/models/anatomy.md``):

- a 3D integer label volume, ``.nii`` or ``.nii.gz``, whose affine maps voxel indices to
  millimetres;
- a labels map (TOML): label value -> region name, tissue id and optional critical kind,
  the ``target`` nerve, and optionally nerves and placement hints;
- nerves as centerlines (JSON, millimetres), optional when the labels map lists them.

``label_at`` looks up the nearest voxel through the inverse affine; points outside the
volume get region 0, ``outside``.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import tomllib
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType

import nibabel
import numpy as np
from nibabel.imageglobals import logger

from neurolysis.validation import ValidationError, check_toml_integers

from ._build import MM, build_placements, check_tissue, critical_from_spec, listed, nerve_from_spec, paint_nerve_regions, resolve_targets
from .scene import CriticalStructure, Scene
from .voxels import VoxelRegions

OUTSIDE = "outside"
MAX_ANISOTROPY = 4.0
"""Largest ratio of voxel spacings accepted: thin nerves and the needle are resolved by
the finest axis only, so coarser slices than 4x the in-plane spacing are refused."""
MAX_SPACING_MM = 5.0
SINGULAR_DET = 1e-9
MAX_FLOAT_LABEL = 2.0**53
"""Float volumes hold whole-number labels up to this magnitude (exact in float64)."""
MAX_VOXELS = 2**28
"""Largest volume read (512 x 512 x 1024 voxels): checked on the header before the data
is read, so a damaged header cannot claim gigabytes."""


def _existing(field: str, path) -> Path:
    if path is None:
        raise ValidationError(f"{field} = None: a file path is required")
    p = Path(path)
    try:
        found = p.is_file()
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise ValidationError(f"{field} = {str(p)!r}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    if not found:
        raise ValidationError(f"{field} = {str(p)!r}: file not found")
    return p


@contextmanager
def _nibabel_quiet():
    """nibabel logs the header fields it repairs ("sizeof_hdr should be 348; set ...")
    straight to stderr; an import error must stay one line, so that log is muted here."""
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


def _read_volume(path: Path) -> tuple[np.ndarray, np.ndarray]:
    name = path.name.lower()
    if not (name.endswith(".nii") or name.endswith(".nii.gz")):
        raise ValidationError(f"anatomy.labels = {str(path)!r}: must be a NIfTI file (.nii or .nii.gz)")
    try:
        with _nibabel_quiet():
            img = nibabel.load(str(path))  # the header only
            voxels = math.prod(int(n) for n in img.shape)
            if voxels <= MAX_VOXELS:
                data = np.asanyarray(img.dataobj)
                affine = np.asarray(img.affine, dtype=float)
    except Exception as exc:  # nibabel raises several types for a damaged file
        raise ValidationError(f"anatomy.labels = {str(path)!r}: not a readable NIfTI file ({type(exc).__name__})") from None
    if voxels > MAX_VOXELS:
        raise ValidationError(f"anatomy.labels shape = {tuple(img.shape)}: {voxels} voxels, more than the supported {MAX_VOXELS} (crop or resample the volume)")
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValidationError(f"anatomy.labels shape = {tuple(data.shape)}: must be a 3D volume")
    if not np.issubdtype(data.dtype, np.integer):
        whole = np.issubdtype(data.dtype, np.floating) and np.all(np.isfinite(data)) and np.all(data == np.round(data))
        if not whole or (data.size and np.abs(data).max() > MAX_FLOAT_LABEL):  # complex, RGB, fractions, NaN, beyond int64
            raise ValidationError(f"anatomy.labels dtype = {data.dtype}: must hold integer labels")
        data = data.astype(np.int64)
    return np.asarray(data), affine


def _check_affine(affine: np.ndarray) -> np.ndarray:
    """The voxel spacing (mm) after checking the affine is finite, regular and near-isotropic."""
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise ValidationError(f"anatomy.labels affine = {affine.tolist()}: must be a finite 4x4 matrix")
    det = float(np.linalg.det(affine[:3, :3]))
    if abs(det) < SINGULAR_DET:
        raise ValidationError(f"anatomy.labels affine determinant = {det:g}: must be non-singular (voxel -> mm)")
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    ratio = float(spacing.max() / spacing.min())
    if ratio > MAX_ANISOTROPY:
        raise ValidationError(f"anatomy.labels voxel spacing = {np.round(spacing, 4).tolist()} mm: anisotropy {ratio:.2g} exceeds the supported {MAX_ANISOTROPY:g} (resample the volume)")
    if spacing.max() > MAX_SPACING_MM:
        raise ValidationError(f"anatomy.labels voxel spacing = {np.round(spacing, 4).tolist()} mm: must be <= {MAX_SPACING_MM:g} mm")
    return spacing


def _read_toml(path: Path, field: str) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError, UnicodeDecodeError, an integer over 4300 digits, deep nesting
        what = str(exc).splitlines()[0] if isinstance(exc, tomllib.TOMLDecodeError | UnicodeDecodeError) else _limit(exc)
        raise ValidationError(f"{field} = {str(path)!r}: malformed TOML ({what})") from None


def _limit(exc: Exception) -> str:
    """The parser limit a (syntactically fine) file hit, in words."""
    if isinstance(exc, RecursionError):
        return "arrays or tables nested too deeply"
    return f"an integer of more than {sys.get_int_max_str_digits()} digits"


def _read_nerves_json(path: Path) -> list:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"anatomy.nerves = {str(path)!r}: malformed JSON ({exc.msg if hasattr(exc, 'msg') else exc} at line {getattr(exc, 'lineno', '?')})") from None
    except (ValueError, RecursionError) as exc:  # an integer over 4300 digits, deep nesting
        raise ValidationError(f"anatomy.nerves = {str(path)!r}: malformed JSON ({_limit(exc)})") from None
    nerves = raw.get("nerves") if isinstance(raw, Mapping) else raw
    if not isinstance(nerves, list):
        raise ValidationError(f"anatomy.nerves = {str(path)!r}: must hold a list of nerves (or {{\"nerves\": [...]}})")
    return nerves


def _regions(table: Mapping, present: np.ndarray, where: str):
    """Region names and tissues, the value -> region lookup, and critical structures."""
    labels = table.get("labels")
    if not isinstance(labels, Mapping) or not labels:
        raise ValidationError(f"{where}.labels = {labels!r}: must map label values to {{ region, tissue }}")
    names = [OUTSIDE]
    tissues = [check_tissue(f"{where}.outside_tissue", table.get("outside_tissue", "muscle"))]
    value_to_region: dict[int, int] = {}
    critical_regions: dict[str, str] = {}  # region -> kind
    for key, spec in labels.items():
        try:
            value = int(key)
        except ValueError:
            raise ValidationError(f"{where}.labels key = {key!r}: must be an integer label value") from None
        w = f"{where}.labels.{key}"
        if not isinstance(spec, Mapping) or not isinstance(spec.get("region"), str):
            raise ValidationError(f"{w} = {spec!r}: must be {{ region = \"name\", tissue = \"id\" }}")
        region = spec["region"]
        tissue = check_tissue(f"{w}.tissue", spec.get("tissue"))
        if region in names:
            index = names.index(region)
            if tissues[index] != tissue:
                raise ValidationError(f"{w}.tissue = {tissue!r}: region {region!r} is already {tissues[index]!r}")
        else:
            names.append(region)
            tissues.append(tissue)
            index = len(names) - 1
        value_to_region[value] = index
        if spec.get("critical"):
            critical_regions.setdefault(region, str(spec["critical"]))
    missing = sorted(set(present.tolist()) - set(value_to_region))
    if missing:
        raise ValidationError(f"anatomy.labels values = {missing[:10]}: absent from {where}.labels (mapped: {sorted(value_to_region)[:20]})")
    critical = [CriticalStructure(name=region, kind=kind, regions=(region,)) for region, kind in critical_regions.items()]
    return names, tissues, value_to_region, critical


def load_label_map(labels_path, labels_map_path, nerves_path=None, name: str | None = None) -> Scene:
    """A scene from a NIfTI label volume, its labels map (TOML) and nerves (JSON)."""
    labels_file = _existing("anatomy.labels", labels_path)
    map_file = _existing("anatomy.labels_map", labels_map_path)
    nerves_file = None if nerves_path is None else _existing("anatomy.nerves", nerves_path)
    volume, affine = _read_volume(labels_file)
    spacing = _check_affine(affine)
    table = _read_toml(map_file, "anatomy.labels_map")
    where = "labels_map"
    check_toml_integers(table, where)  # a hex integer of any length reads, but cannot even be printed
    present, inverse = np.unique(volume, return_inverse=True)
    names, tissues, value_to_region, critical = _regions(table, present, where)
    regions = np.array([value_to_region[int(v)] for v in present], dtype=np.int32)[inverse.reshape(-1)].reshape(volume.shape)
    voxels = VoxelRegions(regions, affine)
    label_at = voxels.label_at
    nerve_layers = voxels.nerve_layers  # filled below: each nerve painted over the voxels
    bounds = voxels.bounds_m()

    nerve_specs = listed(table.get("nerve", ()), f"{where}.nerve", "nerve tables")
    if nerves_file is not None:
        nerve_specs += _read_nerves_json(nerves_file)
    if not nerve_specs:
        raise ValidationError("anatomy.nerves = None: give a nerves file (JSON) or [[nerve]] tables in the labels map; the target nerve is needed")
    nerves = tuple(nerve_from_spec(n, f"nerves[{i}]") for i, n in enumerate(nerve_specs))
    seen = set()
    for n in nerves:
        if n.name in seen:
            raise ValidationError(f"nerves name = {n.name!r}: given twice")
        seen.add(n.name)
        k = voxels.centreline_outside(n.centerline_m)
        if k is not None:
            point = ", ".join(f"{v:.1f}" for v in n.centerline_m[k] / MM)
            raise ValidationError(f"nerves ({n.name}).centerline_mm[{k}] = [{point}]: outside the label volume")
    nerve_names = [n.name for n in nerves]
    if table.get("paint_nerves", True):
        paint_nerve_regions(nerves, names, tissues, nerve_layers, lambda name: f"nerves name = {name!r}: already a region of {where}.labels (nerves are painted as their own regions)")
    for spec in nerve_specs:
        if spec.get("critical"):
            critical.append(CriticalStructure(name=spec["name"], kind=str(spec["critical"]), nerve=spec["name"]))
    critical += [critical_from_spec(c, f"{where}.critical[{i}]", names, nerve_names) for i, c in enumerate(listed(table.get("critical", ()), f"{where}.critical", "tables"))]
    targets, target = resolve_targets(table, nerve_names, where)
    blocked = [i for i, t in enumerate(tissues) if t == "bone"]
    avoid = sorted({names.index(r) for c in critical for r in c.regions})
    placements = build_placements(table.get("placement", ()), nerves, targets, label_at, bounds, blocked, avoid, f"{where}.placement")
    sources = {"labels": str(labels_file), "labels_map": str(map_file), "voxel_spacing_mm": str(np.round(spacing, 4).tolist())}
    if nerves_file is not None:
        sources["nerves"] = str(nerves_file)
    return Scene(
        name=name or str(table.get("name", labels_file.name)),
        description=str(table.get("description", f"label map {labels_file.name}")),
        bounds_m=bounds,
        region_names=tuple(names),
        region_tissue=tuple(tissues),
        label_at=label_at,
        nerves=nerves,
        critical=tuple(critical),
        target=target,
        placements=placements,
        sources=MappingProxyType(sources),
        targets=targets,
        frame=str(table.get("frame", "the volume's world frame (NIfTI affine: voxel -> mm), in metres")),
    )
