"""A segmentation read and classified: what the landmark rules and the scene builder see.

:class:`SegmentedAnatomy` holds one or more label layers on one grid (the first is the main
segmentation; later ones, such as TotalSegmentator's ``vertebrae_body`` task, add structures
that the main one does not separate) with every label classified by the name rules, and
answers the questions landmark rules ask: the voxels of a kind of structure (at a level, on a
side), their points in mm, bounding boxes, and the patient's directions in the file's frame.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy import ndimage

from neurolysis.validation import ValidationError

from .rules import Structure
from .volume import Grid, Image, Segmentation, patient_axis

MAX_DENSE_LABEL = 65535
"""Label values up to this are boxed in one pass (``ndimage.find_objects`` keeps a list as long as the largest label)."""


@dataclass(frozen=True, eq=False)
class Layer:
    """One label volume on the anatomy's grid and its classified structures (label -> Structure)."""

    segmentation: Segmentation
    structures: Mapping[int, Structure]
    names_source: str = ""

    @cached_property
    def boxes(self) -> dict[int, tuple[slice, slice, slice]]:
        """Label -> the index box (slices) that holds its voxels (one pass over the volume)."""
        labels = self.segmentation.labels
        if labels.size and int(labels.max()) <= MAX_DENSE_LABEL:
            found = ndimage.find_objects(labels)
            return {label: box for label, box in enumerate(found, start=1) if box is not None}
        out = {}
        for label in self.structures:  # sparse large label values: one pass per label
            ijk = np.nonzero(labels == label)
            if ijk[0].size:
                out[label] = tuple(slice(int(a.min()), int(a.max()) + 1) for a in ijk)
        return out


@dataclass(frozen=True, eq=False)
class SegmentedAnatomy:
    """Label layers on one ``grid`` (module docstring), an optional ``image`` resampled onto it,
    ``warnings`` from reading (names absent from the volume, unmapped structures), and the
    ``files_sha256`` of what was read (a case on a scan names its files by content)."""

    layers: tuple[Layer, ...]
    image: Image | None = None
    warnings: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)
    files_sha256: Mapping[str, str] = field(default_factory=dict)  # path -> sha256 of every file read

    @property
    def grid(self) -> Grid:
        return self.layers[0].segmentation.grid

    @property
    def frame(self) -> str:
        return self.grid.frame

    def axis(self, direction: str) -> np.ndarray:
        """Unit vector of a patient direction (right, left, anterior, posterior, superior, inferior) in the frame."""
        return patient_axis(self.frame, direction)

    def structures(self, predicate: Callable[[Structure], bool] | None = None) -> list[tuple[int, Structure]]:
        """(layer index, structure) for every structure (that satisfies ``predicate``)."""
        return [(i, s) for i, layer in enumerate(self.layers) for s in layer.structures.values() if predicate is None or predicate(s)]

    def find(self, kind: str, level: str | None = None, side: str | None = None) -> list[tuple[int, Structure]]:
        """Structures of ``kind`` (at ``level``, on ``side`` where given)."""
        return self.structures(lambda s: s.kind == kind and (level is None or s.level == level) and (side is None or s.side == side))

    def require(self, kind: str, level: str | None = None, side: str | None = None, *, what: str, rule: str) -> list[tuple[int, Structure]]:
        """:meth:`find`, or a one-line error naming the missing landmark and the rule that needs it."""
        found = self.find(kind, level, side)
        if not found:
            spelled = ", ".join(f"{k} {v}" for k, v in (("kind", kind), ("level", level), ("side", side)) if v)
            raise ValidationError(f"target: {what} is not in the segmentation (no structure of {spelled}); the landmark rule '{rule}' needs it (see `neurolysis anatomy inspect`)")
        return found

    def box(self, found: Sequence[tuple[int, Structure]], margin_voxels: int = 0) -> tuple[slice, slice, slice]:
        """The index box holding every voxel of ``found`` (plus a margin), clipped to the grid."""
        lo = np.full(3, np.iinfo(np.int64).max)
        hi = np.full(3, -1)
        for i, s in found:
            b = self.layers[i].boxes.get(s.label)
            if b is None:
                continue
            lo = np.minimum(lo, [sl.start for sl in b])
            hi = np.maximum(hi, [sl.stop for sl in b])
        if np.any(hi < 0):
            raise ValueError("no voxels")
        shape = np.asarray(self.grid.shape)
        lo = np.maximum(lo - margin_voxels, 0)
        hi = np.minimum(hi + margin_voxels, shape)
        return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))  # type: ignore[return-value]

    def mask(self, found: Sequence[tuple[int, Structure]], box: tuple[slice, slice, slice] | None = None) -> np.ndarray:
        """Boolean mask of the voxels of ``found`` (within ``box``, else the whole grid)."""
        box = box or tuple(slice(0, n) for n in self.grid.shape)
        out = np.zeros(tuple(b.stop - b.start for b in box), dtype=bool)
        for i, s in found:
            out |= self.layers[i].segmentation.labels[box] == s.label
        return out

    def points_mm(self, mask: np.ndarray, box: tuple[slice, slice, slice] | None = None) -> np.ndarray:
        """Voxel centres (n, 3) mm of a mask (taken within ``box``)."""
        ijk = np.argwhere(mask)
        if box is not None:
            ijk = ijk + np.array([b.start for b in box])
        return self.grid.to_mm(ijk)

    def voxels_mm(self, found: Sequence[tuple[int, Structure]], margin_voxels: int = 0) -> np.ndarray:
        """Voxel centres (n, 3) mm of every voxel of ``found``."""
        box = self.box(found, margin_voxels)
        return self.points_mm(self.mask(found, box), box)

    def summary(self) -> dict:
        """Grid, structures (label, name, tissue, voxels, volume mL), unmapped names, image: ``anatomy inspect``."""
        volume = self.grid.voxel_volume_mm3
        structures = []
        for i, layer in enumerate(self.layers):
            counts = layer.segmentation.present()
            for label, s in layer.structures.items():
                structures.append(s.summary(counts.get(label, 0), volume) | ({"layer": i} if len(self.layers) > 1 else {}))
        return {
            "grid": self.grid.summary(),
            "segmentation": [layer.segmentation.source for layer in self.layers],
            "names": [layer.names_source for layer in self.layers],
            "structures": structures,
            "unmapped": [s["name"] for s in structures if not s["mapped"]],
            "image": None if self.image is None else self.image.summary(),
            "warnings": list(self.warnings),
        }


__all__ = ["Layer", "SegmentedAnatomy"]
