"""Lesion shape from a nodal criterion field: the one place lesions are measured.

Two meshes, one set of definitions: the axisymmetric needle mesh (:func:`measure_lesion`)
and the needle-aligned tet mesh of the 3D engines (:func:`measure_lesion3d`).

Axisymmetric mesh.

The lesion is the tissue where a criterion field reaches its threshold (Omega >= 1,
CEM43 >= 240 min, peak temperature >= 50 C). The field is piecewise linear on the
triangles, so edges are located by linear interpolation along grid lines and areas and
volumes by clipping each triangle at the threshold, both exact for the P1 field.

Definitions (the needle apex is at z = 0, the active tip ends at z = L):
  width_mm     largest diameter perpendicular to the shaft, 2 max r_edge(z)
  length_mm    extent along the shaft, z_max - z_min
  distal_mm    how far the lesion reaches beyond the apex, -z_min (negative: stops short)
  proximal_mm  how far it reaches behind the active tip's proximal end, z_max - L
  area_mm2     area in a plane containing the shaft (both sides of the axis)
  volume_mm3   volume of revolution, 2 pi integral r dr dz

Tet mesh (first needle's frame, same definitions):
  width_mm     the Feret diameter of the lesion projected on the plane z = 0 (for a body
               of revolution 2 max r)
  area_mm2     area of the lesion in the plane y = 0 (contains the shaft, and for two
               needles both shafts), from the field sampled on a 0.05 mm grid
  volume_mm3   exact volume of {field >= threshold} for the P1 field (per tet)
The P1 level set is piecewise planar, so the extreme z and the projected hull are
attained at lesion nodes or at threshold crossings on mesh edges (linear interpolation).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from neurolysis.physics.mesh import NeedleMesh
from neurolysis.physics.mesh3d import NeedleMesh3D


@dataclass(frozen=True)
class LesionShape:
    """Dimensions of a lesion by one criterion (mm, mm^2, mm^3)."""

    criterion: str
    threshold: float
    width_mm: float
    length_mm: float
    distal_mm: float
    proximal_mm: float
    area_mm2: float
    volume_mm3: float
    reaches_domain_edge: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def _last_crossing(values: np.ndarray, coords: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``values`` (rows x points): coordinate where the field last falls below threshold.

    Returns (edge coordinate, row has lesion). Rows are scanned along increasing index.
    """
    above = values >= threshold
    has = above.any(axis=1)
    last = values.shape[1] - 1 - np.argmax(above[:, ::-1], axis=1)
    nxt = np.minimum(last + 1, values.shape[1] - 1)
    rows = np.arange(values.shape[0])
    f0, f1 = values[rows, last], values[rows, nxt]
    c0, c1 = coords[last], coords[nxt]
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where((nxt > last) & np.isfinite(f1) & (f0 > f1), (f0 - threshold) / (f0 - f1), 0.0)
    return c0 + np.clip(s, 0.0, 1.0) * (c1 - c0), has


def _clipped_moments(mesh: NeedleMesh, field: np.ndarray, threshold: float) -> tuple[float, float]:
    """Area (m^2) and r-moment (m^3) of the tissue where the P1 field >= threshold."""
    t = mesh.mesh.t[:, mesh.tissue]
    f = field[t]  # (3, n)
    r = mesh.r[t]
    z = mesh.z[t]
    area = 0.5 * abs((r[1] - r[0]) * (z[2] - z[0]) - (r[2] - r[0]) * (z[1] - z[0]))
    above = f >= threshold
    count = above.sum(axis=0)
    total_area = 0.0
    total_moment = 0.0
    full = count == 3
    total_area += area[full].sum()
    total_moment += (area * r.mean(axis=0))[full].sum()
    for n_above in (1, 2):
        sel = count == n_above
        if not sel.any():
            continue
        fs, rs, As = f[:, sel], r[:, sel], area[sel]
        # the lone vertex: above when one is above, below when two are above
        lone = np.argmax(above[:, sel] if n_above == 1 else ~above[:, sel], axis=0)
        cols = np.arange(fs.shape[1])
        others = np.stack([(lone + 1) % 3, (lone + 2) % 3])
        f0, r0 = fs[lone, cols], rs[lone, cols]
        f1, r1 = fs[others[0], cols], rs[others[0], cols]
        f2, r2 = fs[others[1], cols], rs[others[1], cols]
        s1 = (f0 - threshold) / (f0 - f1)
        s2 = (f0 - threshold) / (f0 - f2)
        corner_area = As * s1 * s2
        corner_r = (r0 + (r0 + s1 * (r1 - r0)) + (r0 + s2 * (r2 - r0))) / 3.0
        if n_above == 1:
            total_area += corner_area.sum()
            total_moment += (corner_area * corner_r).sum()
        else:
            total_area += (As - corner_area).sum()
            total_moment += (As * rs.mean(axis=0) - corner_area * corner_r).sum()
    return total_area, total_moment


def measure_lesion(mesh: NeedleMesh, field: np.ndarray, threshold: float, criterion: str) -> LesionShape:
    """Dimensions of the tissue region where ``field`` >= ``threshold``."""
    masked = np.where(mesh.tissue_nodes, field, -np.inf)
    if not (masked >= threshold).any():
        return LesionShape(criterion, threshold, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    nz, nr = mesh.grid_shape
    grid = masked.reshape(nz, nr)
    r_edge, row_has = _last_crossing(grid, mesh.r_lines, threshold)
    z_top, col_has = _last_crossing(grid.T, mesh.z_lines, threshold)
    z_bottom, _ = _last_crossing(grid.T[:, ::-1], mesh.z_lines[::-1], threshold)
    z_max, z_min = z_top[col_has].max(), z_bottom[col_has].min()
    area, moment = _clipped_moments(mesh, field, threshold)
    at_edge = bool(
        (grid[:, -1] >= threshold).any() or (grid[0] >= threshold).any() or (grid[-1] >= threshold).any()
    )
    tip = mesh.geometry.tip_length_m
    return LesionShape(
        criterion=criterion,
        threshold=threshold,
        width_mm=2e3 * float(r_edge[row_has].max()),
        length_mm=1e3 * float(z_max - z_min),
        distal_mm=-1e3 * float(z_min),
        proximal_mm=1e3 * float(z_max - tip),
        area_mm2=2e6 * area,
        volume_mm3=2 * np.pi * 1e9 * moment,
        reaches_domain_edge=at_edge,
    )


# ------------------------------------------------------------------ needle-aligned tet mesh

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


def level_extent(mesh: NeedleMesh3D, temp_c: np.ndarray, edge_c: float, edges: np.ndarray) -> tuple[float, float]:
    """(width_mm, length_mm) of the tissue at T <= edge_c, as :func:`measure_lesion3d`
    (Feret diameter across the shaft, z extent) without area and volume."""
    inside = mesh.tissue_nodes & (temp_c <= edge_c)
    if not inside.any():
        return 0.0, 0.0
    t0, t1 = temp_c[edges[:, 0]], temp_c[edges[:, 1]]
    cross = (t0 <= edge_c) != (t1 <= edge_c)
    e = edges[cross]
    s = (edge_c - t0[cross]) / (t1[cross] - t0[cross])
    nodes = mesh.nodes
    pts = np.vstack([nodes[inside], nodes[e[:, 0]] + s[:, None] * (nodes[e[:, 1]] - nodes[e[:, 0]])])
    return 1e3 * feret_diameter(pts[:, :2]), 1e3 * float(np.ptp(pts[:, 2]))


def measure_cold_region(mesh: NeedleMesh3D, temp_c: np.ndarray, edge_c: float, criterion: str, edges: np.ndarray, volume: np.ndarray) -> LesionShape:
    """LesionShape of {T <= edge_c} (measured on -T >= -edge_c)."""
    return replace(measure_lesion3d(mesh, -temp_c, -edge_c, criterion, edges, volume), threshold=edge_c)


LATTICE_ORDER = 6
"""Barycentric lattice of :func:`volume_above_m3`: (p+1)(p+2)(p+3)/6 = 84 points per element."""


def volume_above_m3(tets: np.ndarray, element_volume_m3: np.ndarray, nodal: np.ndarray, level: float, order: int = LATTICE_ORDER) -> float:
    """Volume where the P1 field ``nodal`` is >= ``level``: per element, its volume x the share of the
    lattice points (i, j, k, l) / p, i + j + k + l = p, at which the interpolant reaches ``level``.
    Elements whose four nodes agree are counted whole; only the cut ones are sampled (error O(h / p)
    in the cut shell, so the volume converges under mesh refinement, unlike whole node volumes)."""
    above = nodal[tets] >= level
    count = above.sum(axis=1)
    total = float(element_volume_m3[count == 4].sum())
    cut = np.flatnonzero((count > 0) & (count < 4))
    if not len(cut):
        return total
    p = int(order)
    lattice = np.array([(i, j, k, p - i - j - k) for i in range(p + 1) for j in range(p + 1 - i) for k in range(p + 1 - i - j)], float) / p
    values = nodal[tets[cut]] @ lattice.T  # (n_cut, n_points)
    return total + float((element_volume_m3[cut] * (values >= level).mean(axis=1)).sum())
