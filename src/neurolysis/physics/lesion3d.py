"""Lesion shape from a nodal field on the needle-aligned tet mesh (first needle's frame).

Same definitions as :mod:`neurolysis.lesion` (apex at z = 0, active tip ends at z = L):

  width_mm     largest diameter perpendicular to the shaft: the Feret diameter of the
               lesion projected on the plane z = 0 (for a body of revolution 2 max r)
  length_mm    extent along the shaft, z_max - z_min
  distal_mm    -z_min;  proximal_mm  z_max - L
  area_mm2     area of the lesion in the plane y = 0 (contains the shaft, and for two
               needles both shafts), from the field sampled on a 0.05 mm grid
  volume_mm3   exact volume of {field >= threshold} for the P1 field (per tet)

The P1 level set is piecewise planar, so the extreme z and the projected hull are
attained at lesion nodes or at threshold crossings on mesh edges (linear interpolation).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from neurolysis.lesion import LesionShape
from neurolysis.physics.mesh3d import NeedleMesh3D

AREA_GRID_M = 0.05e-3


def tissue_edges(mesh: NeedleMesh3D) -> np.ndarray:
    """Unique edges (m, 2) of the tissue tets."""
    t = mesh.tets[mesh.tissue]
    pairs = np.concatenate([t[:, [i, j]] for i in range(4) for j in range(i + 1, 4)])
    pairs.sort(axis=1)
    key = np.unique(pairs[:, 0] * mesh.n_nodes + pairs[:, 1])
    return np.column_stack([key // mesh.n_nodes, key % mesh.n_nodes])


def level_fraction_below(values: np.ndarray, threshold: float) -> np.ndarray:
    """Volume fraction of each tet where the linear field < threshold.

    With vertex values f_i (distinct), vol{f <= t} / V = sum_i (t - f_i)_+^3 / prod_{j != i} (f_j - f_i)
    (the cubic B-spline CDF); values are separated by a relative 1e-6 jitter first.
    """
    f = np.sort(values, axis=1)
    result = (f[:, 0] < threshold).astype(float)  # 1 below everywhere, 0 above everywhere
    cross = (f[:, 0] < threshold) & (f[:, -1] >= threshold)
    f = f[cross]
    f = f + (f[:, -1] - f[:, 0])[:, None] * 1e-6 * np.arange(4)
    total = np.zeros(len(f))
    for i in range(4):
        denom = np.ones(len(f))
        for j in range(4):
            if j != i:
                denom *= f[:, j] - f[:, i]
        total += np.maximum(threshold - f[:, i], 0.0) ** 3 / denom
    result[cross] = np.clip(total, 0.0, 1.0)
    return result


def feret_diameter(points_2d: np.ndarray) -> float:
    if len(points_2d) < 2:
        return 0.0
    try:
        hull = points_2d[ConvexHull(points_2d).vertices]
    except QhullError:
        hull = points_2d
    d = hull[:, None, :] - hull[None, :, :]
    return float(np.sqrt((d**2).sum(axis=2)).max())


def measure_lesion3d(mesh: NeedleMesh3D, field: np.ndarray, threshold: float, criterion: str, edges: np.ndarray, volume: np.ndarray) -> LesionShape:
    """Dimensions of the tissue where ``field`` >= ``threshold`` (``edges`` from :func:`tissue_edges`, tet volumes)."""
    inside = mesh.tissue_nodes & (field >= threshold)
    if not inside.any():
        return LesionShape(criterion, threshold, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    nodes = mesh.nodes
    f0, f1 = field[edges[:, 0]], field[edges[:, 1]]
    cross = (f0 >= threshold) != (f1 >= threshold)
    e = edges[cross]
    s = (threshold - f0[cross]) / (f1[cross] - f0[cross])
    crossing = nodes[e[:, 0]] + s[:, None] * (nodes[e[:, 1]] - nodes[e[:, 0]])
    pts = np.vstack([nodes[inside], crossing])
    z_min, z_max = pts[:, 2].min(), pts[:, 2].max()
    width = feret_diameter(pts[:, :2])
    t = mesh.tets[mesh.tissue]
    below = level_fraction_below(field[t], threshold)
    vol = float(((1.0 - below) * volume[mesh.tissue]).sum())
    # area in the plane y = 0 over the lesion's bounding box
    x0, x1 = pts[:, 0].min(), pts[:, 0].max()
    xs = np.arange(x0, x1 + AREA_GRID_M, AREA_GRID_M)
    zs = np.arange(z_min, z_max + AREA_GRID_M, AREA_GRID_M)
    xx, zz = np.meshgrid(xs, zs)
    grid = np.column_stack([xx.ravel(), np.zeros(xx.size), zz.ravel()])
    tet, w = mesh.locate(grid)
    ok = tet >= 0
    ok[ok] &= mesh.tissue[tet[ok]]
    values = np.full(len(grid), -np.inf)
    values[ok] = (field[mesh.tets[tet[ok]]] * w[ok]).sum(axis=1)
    area = float((values >= threshold).sum()) * AREA_GRID_M**2
    at_edge = bool((field[mesh.outer_nodes] >= threshold).any())
    tip = mesh.geometry.tip_length_m
    return LesionShape(
        criterion=criterion,
        threshold=threshold,
        width_mm=1e3 * width,
        length_mm=1e3 * float(z_max - z_min),
        distal_mm=-1e3 * float(z_min),
        proximal_mm=1e3 * float(z_max - tip),
        area_mm2=1e6 * area,
        volume_mm3=1e9 * vol,
        reaches_domain_edge=at_edge,
    )
