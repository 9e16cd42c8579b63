"""Region lookup in a voxel grid, with nerves painted over the voxels: the ``label_at`` of every
scene that comes from a volume (a label map with its TOML table, or a segmentation)."""

from __future__ import annotations

import numpy as np

from .primitives import paint

MM = 1e-3


class VoxelRegions:
    """``regions[i, j, k]`` (region indices) placed by ``affine_mm`` (voxel index -> mm); ``nerve_layers``
    ((region, shape) pairs, painted over the voxels in order) may be appended to after construction.

    ``label_at(points_m)`` gives the region of the nearest voxel to each point (n, 3) m, nerves painted
    over it, and ``outside`` (default 0) beyond the grid.
    """

    def __init__(self, regions: np.ndarray, affine_mm: np.ndarray, outside: int = 0) -> None:
        self.regions = regions
        self.affine_mm = np.asarray(affine_mm, dtype=float)
        self.shape = np.asarray(regions.shape)
        self.outside = outside
        self.nerve_layers: list = []
        self._inverse = np.linalg.inv(self.affine_mm)

    def to_index(self, points_m: np.ndarray) -> np.ndarray:
        """Fractional voxel indices (n, 3) of points (n, 3) m."""
        pts_mm = np.asarray(points_m, dtype=float).reshape(-1, 3) / MM
        return pts_mm @ self._inverse[:3, :3].T + self._inverse[:3, 3]

    def inside(self, index: np.ndarray) -> np.ndarray:
        """Which rounded indices fall in the grid."""
        return np.all((index >= 0) & (index < self.shape), axis=1)

    def label_at(self, points_m: np.ndarray) -> np.ndarray:
        pts = np.asarray(points_m, dtype=float).reshape(-1, 3)
        ijk = np.rint(self.to_index(pts)).astype(np.int64)
        inside = self.inside(ijk)
        out = np.full(len(ijk), self.outside, dtype=np.int32)
        i = ijk[inside]
        out[inside] = self.regions[i[:, 0], i[:, 1], i[:, 2]]
        if self.nerve_layers and inside.any():
            idx = np.flatnonzero(inside)
            out[idx] = paint(pts[idx], out[idx], self.nerve_layers)
        return out

    def bounds_m(self) -> tuple[np.ndarray, np.ndarray]:
        """The axis-aligned box (m) around the voxels' outer faces."""
        n = self.shape
        corners = np.array([[a, b, c] for a in (-0.5, n[0] - 0.5) for b in (-0.5, n[1] - 0.5) for c in (-0.5, n[2] - 0.5)])
        world = (corners @ self.affine_mm[:3, :3].T + self.affine_mm[:3, 3]) * MM
        return world.min(axis=0), world.max(axis=0)

    def centreline_outside(self, centerline_m: np.ndarray) -> int | None:
        """Index of the first centreline point outside the grid (half a voxel tolerance), or None."""
        index = self.to_index(centerline_m)
        outside = ~np.all((index >= -0.5) & (index <= self.shape - 0.5), axis=1)
        return int(np.argmax(outside)) if outside.any() else None


def sample_linear(values: np.ndarray, regions: VoxelRegions, points_m: np.ndarray, fill: float) -> np.ndarray:
    """``values`` (on the same grid as ``regions``) interpolated linearly at each point; ``fill`` beyond the grid."""
    from scipy.ndimage import map_coordinates

    index = regions.to_index(points_m)
    return map_coordinates(values, index.T, order=1, mode="constant", cval=fill)


__all__ = ["VoxelRegions", "sample_linear"]
