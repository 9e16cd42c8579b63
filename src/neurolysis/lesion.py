"""Lesion shape from a nodal damage field on the axisymmetric needle mesh.

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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from neurolysis.physics.mesh import NeedleMesh


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
