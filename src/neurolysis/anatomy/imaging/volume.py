"""Label volumes and images as they come from the scanner and the segmentation tools.

A :class:`Segmentation` is a 3D integer label array with the affine that places voxel
``(i, j, k)`` in the file's own scanner coordinates (mm) and the names of its labels; an
:class:`Image` is a 3D intensity array on its own grid. Both are read with SimpleITK
(NIfTI, NRRD, DICOM series and whatever else ITK reads), so no format is parsed here.

**Frames.** ITK reports every file in LPS (x to the patient's left, y posterior, z
superior). A plan on a segmentation is written in the segmentation's *own* convention, so
that a point read off the scan in the viewer users have for that format can be typed in:
NIfTI files are RAS (x right, y anterior: nibabel, FSL, TotalSegmentator, 3D Slicer's
display), NRRD files their ``space`` (Slicer writes LPS), anything else (DICOM, MetaImage)
LPS. RAS and LPS differ by the sign of x and y: ``to_frame`` converts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from neurolysis.validation import ValidationError

FRAMES = ("RAS", "LPS")
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
"""RAS = LPS_TO_RAS @ LPS (and back: the matrix is its own inverse)."""
PATIENT_AXES = {
    "RAS": {"right": (1.0, 0.0, 0.0), "anterior": (0.0, 1.0, 0.0), "superior": (0.0, 0.0, 1.0)},
    "LPS": {"right": (-1.0, 0.0, 0.0), "anterior": (0.0, -1.0, 0.0), "superior": (0.0, 0.0, 1.0)},
}
"""Unit vectors of the patient's right, anterior and superior directions in each frame."""
MAX_VOXELS = 2**28
"""Largest volume read (512 x 512 x 1024 voxels): checked on the header before any voxel
is read, so a damaged header cannot claim gigabytes."""
MAX_LABEL = 2**31 - 1
SINGULAR_DET = 1e-9
MAX_FLOAT_LABEL = 2.0**53
BINCOUNT_MAX_LABEL = 2**20
"""Largest label counted by ``np.bincount`` (a table of that length); larger ones by sorting."""
NIFTI_SUFFIXES = (".nii", ".nii.gz")
NRRD_SUFFIXES = (".nrrd", ".nhdr")


def patient_axis(frame: str, direction: str) -> np.ndarray:
    """The unit vector of ``direction`` (right, left, anterior, posterior, superior, inferior) in ``frame``."""
    opposite = {"left": "right", "posterior": "anterior", "inferior": "superior"}
    sign = -1.0 if direction in opposite else 1.0
    return sign * np.asarray(PATIENT_AXES[frame][opposite.get(direction, direction)])


def to_frame(points_mm: np.ndarray, source: str, target: str) -> np.ndarray:
    """Points (n, 3) mm from frame ``source`` to ``target`` (RAS <-> LPS flips x and y)."""
    pts = np.asarray(points_mm, dtype=float)
    return pts if source == target else pts * np.array([-1.0, -1.0, 1.0])


@dataclass(frozen=True, eq=False)
class Grid:
    """A voxel grid: ``shape`` (i, j, k) and ``affine`` (4 x 4, voxel index -> mm in ``frame``)."""

    shape: tuple[int, int, int]
    affine: np.ndarray
    frame: str

    @property
    def spacing_mm(self) -> np.ndarray:
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    @property
    def voxel_volume_mm3(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3])))

    def to_mm(self, ijk: np.ndarray) -> np.ndarray:
        """Voxel indices (n, 3), fractional allowed, to mm in ``frame``."""
        return np.asarray(ijk, dtype=float) @ self.affine[:3, :3].T + self.affine[:3, 3]

    def to_index(self, points_mm: np.ndarray) -> np.ndarray:
        """Points (n, 3) mm in ``frame`` to fractional voxel indices."""
        inv = np.linalg.inv(self.affine)
        return np.asarray(points_mm, dtype=float).reshape(-1, 3) @ inv[:3, :3].T + inv[:3, 3]

    def bounds_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """The axis-aligned box (mm, ``frame``) around the voxels' outer faces."""
        n = np.asarray(self.shape)
        corners = np.array([[a, b, c] for a in (-0.5, n[0] - 0.5) for b in (-0.5, n[1] - 0.5) for c in (-0.5, n[2] - 0.5)])
        world = self.to_mm(corners)
        return world.min(axis=0), world.max(axis=0)

    def orientation(self) -> str:
        """Three letters: the patient direction each voxel axis i, j, k points to (e.g. ``RAS``, ``LPI``)."""
        letters = {"RAS": "RAS", "LPS": "LPS"}[self.frame]
        flipped = {"R": "L", "L": "R", "A": "P", "P": "A", "S": "I", "I": "S"}
        out = ""
        for column in self.affine[:3, :3].T:
            axis = int(np.argmax(np.abs(column)))
            letter = letters[axis]
            out += letter if column[axis] > 0 else flipped[letter]
        return out

    def in_frame(self, frame: str) -> Grid:
        """The same grid written in ``frame``."""
        if frame == self.frame:
            return self
        flip = np.diag([-1.0, -1.0, 1.0, 1.0])
        return Grid(self.shape, flip @ self.affine, frame)

    def summary(self) -> dict:
        lo, hi = self.bounds_mm()
        return {
            "shape": [int(n) for n in self.shape],
            "spacing_mm": [round(float(s), 4) for s in self.spacing_mm],
            "orientation": self.orientation(),
            "frame": self.frame,
            "extent_mm": [[round(float(v), 2) for v in lo], [round(float(v), 2) for v in hi]],
        }


@dataclass(frozen=True, eq=False)
class Segmentation:
    """A label volume: ``labels[i, j, k]`` (integers >= 0, 0 = unlabelled) on ``grid``, and
    ``names`` (label -> structure name as the file or table spells it)."""

    labels: np.ndarray
    grid: Grid
    names: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    source: str = ""

    def present(self) -> dict[int, int]:
        """Label -> voxel count, for every label > 0 in the volume."""
        if not self.labels.size:
            return {}
        if int(self.labels.max()) <= BINCOUNT_MAX_LABEL:
            counts = np.bincount(self.labels.ravel())
            return {int(v): int(c) for v, c in enumerate(counts) if v > 0 and c > 0}
        values, counts = np.unique(self.labels, return_counts=True)  # labels up to 2**31: no array of that length
        return {int(v): int(c) for v, c in zip(values, counts, strict=True) if v > 0}


@dataclass(frozen=True, eq=False)
class Image:
    """A scalar image (CT in HU, MR in arbitrary units) on ``grid``; ``modality`` where the file says."""

    values: np.ndarray
    grid: Grid
    modality: str | None = None
    source: str = ""

    def summary(self) -> dict:
        return self.grid.summary() | {"modality": self.modality, "source": self.source}


NRRD_SPACE = re.compile(rb"^space:\s*(\S+)\s*$", re.MULTILINE)
NRRD_HEADER_BYTES = 8192


def native_frame(path: Path, metadata: Mapping[str, str]) -> str:
    """The convention a file's users read its coordinates in (module docstring). An NRRD's ``space``
    is read from its header text: ITK converts a RAS space to LPS and does not say it did."""
    name = path.name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return "RAS"
    space = metadata.get("NRRD_space", "").lower()
    if name.endswith(NRRD_SUFFIXES):
        with path.open("rb") as handle:
            found = NRRD_SPACE.search(handle.read(NRRD_HEADER_BYTES).split(b"\n\n", 1)[0])
        space = found.group(1).decode("ascii", "replace").lower() if found else space
    if space in ("right-anterior-superior", "ras"):
        return "RAS"
    return "LPS"


def grid_from_itk(image, frame: str, where: str) -> Grid:
    """The grid of a SimpleITK image (reported in LPS) written in ``frame``, with its affine checked."""
    dimension = image.GetDimension()
    if dimension != 3:
        raise ValidationError(f"{where}: a {dimension}D volume of size {tuple(image.GetSize())}; must be 3D")
    spacing = np.asarray(image.GetSpacing(), dtype=float)
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    origin = np.asarray(image.GetOrigin(), dtype=float)
    affine = np.eye(4)
    affine[:3, :3] = direction * spacing
    affine[:3, 3] = origin
    if frame == "RAS":
        affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    check_affine(affine, where)
    return Grid(tuple(int(n) for n in image.GetSize()), affine, frame)


def check_affine(affine: np.ndarray, where: str) -> None:
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise ValidationError(f"{where} affine = {np.round(affine, 4).tolist()}: must be a finite 4x4 matrix")
    det = float(np.linalg.det(affine[:3, :3]))
    if not math.isfinite(det) or abs(det) < SINGULAR_DET:
        raise ValidationError(f"{where} affine determinant = {det:g}: must be non-singular (voxel -> mm)")


def integer_labels(array: np.ndarray, where: str) -> np.ndarray:
    """``array`` as non-negative integer labels (whole-number floats accepted), else one-line errors."""
    if array.dtype == bool:
        return array.astype(np.uint8)
    if not np.issubdtype(array.dtype, np.integer):
        whole = np.issubdtype(array.dtype, np.floating) and bool(np.all(np.isfinite(array))) and bool(np.all(array == np.round(array)))
        if not whole or (array.size and float(np.abs(array).max()) > MAX_FLOAT_LABEL):
            raise ValidationError(f"{where} dtype = {array.dtype}: must hold integer labels (a label map, not an image)")
        array = array.astype(np.int64)
    if array.size and int(array.min()) < 0:
        raise ValidationError(f"{where}: label {int(array.min())} is negative; labels must be integers >= 0")
    if array.size and int(array.max()) > MAX_LABEL:
        raise ValidationError(f"{where}: label {int(array.max())} exceeds the supported {MAX_LABEL}")
    return array


__all__ = ["FRAMES", "Grid", "Image", "Segmentation", "check_affine", "grid_from_itk", "integer_labels", "native_frame", "patient_axis", "to_frame"]
