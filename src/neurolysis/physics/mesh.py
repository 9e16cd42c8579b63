"""Axisymmetric (r, z) triangle mesh of a straight needle electrode in tissue.

The needle lies on the axis r = 0, its sharp apex at z = 0 and its shaft running toward
+z out of the domain. The mesh is a graded tensor grid split into triangles along the
"/" diagonal, with grid lines placed on every material interface so the geometry is
conforming:

* the needle surface r = a (outer radius from the gauge);
* the apex cone: r = a z / h_cone for 0 <= z <= h_cone; inside [0, a] x [0, h_cone] the
  grid is uniform with as many cells radially as axially, so the cone line runs exactly
  along cell diagonals;
* the end of the active (uninsulated) tip z = L;
* the insulation coating: the shell a - t <= r <= a above z = L, with its own grid line
  r = a - t (and the matching z-line where that radius meets the cone, so the cone
  stays conforming), whatever the mesh size.

The fine region (spacing ``h_fine_m``) covers where lesion edges lie; beyond it the
spacing grows geometrically to the far boundary, which stands for the dispersive pad
(0 V) and body-core temperature. All lengths in metres.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from functools import cached_property

import numpy as np
from skfem import MeshTri

from neurolysis.validation import ValidationError


class Region(IntEnum):
    """Material label of an element."""

    TISSUE = 0
    METAL = 1
    INSULATION = 2
    LUMEN = 3  # metal cells that carry the coolant sink of a cooled probe


@dataclass(frozen=True)
class NeedleGeometry:
    """Needle shape in metres: outer radius, active tip length (from the apex), cone length,
    insulation thickness and, for a cooled probe, the radius of the coolant channel."""

    radius_m: float
    tip_length_m: float
    cone_length_m: float
    insulation_thickness_m: float
    lumen_radius_m: float = 0.0

    def __post_init__(self) -> None:
        if self.tip_length_m <= self.cone_length_m:
            raise ValidationError(
                f"tip_mm = {self.tip_length_m * 1e3:g}: must be longer than the sharp tip cone "
                f"({self.cone_length_m * 1e3:.2f} mm)"
            )


@dataclass(frozen=True)
class MeshSpec:
    """Resolution and extent of the mesh (metres).

    ``h_fine_m`` is the element size where lesions form; ``fine_margin_m`` how far the
    fine region reaches beyond the needle radius, below the apex and above the active
    tip (``distal_margin_m`` and ``proximal_margin_m``, when given, below and above);
    ``domain_m`` the distance of the far boundary from the active tip;
    ``growth`` the ratio between neighbouring cells outside the fine region.
    """

    h_fine_m: float = 0.2e-3
    fine_margin_m: float = 8e-3
    domain_m: float = 60e-3
    growth: float = 1.25
    edge_levels: int = 3
    distal_margin_m: float | None = None
    proximal_margin_m: float | None = None


def uniform_points(start: float, stop: float, h: float) -> np.ndarray:
    """Points from ``start`` to ``stop`` (both included) with spacing at most ``h``."""
    n = max(1, int(np.ceil((stop - start) / h - 1e-9)))
    return np.linspace(start, stop, n + 1)


def graded_points(start: float, stop: float, h0: float, growth: float) -> np.ndarray:
    """Points from ``start`` toward ``stop`` whose spacing starts at ``h0`` and grows by ``growth``.

    Works in either direction; the last cell is stretched to end exactly at ``stop``.
    """
    direction = np.sign(stop - start)
    length = abs(stop - start)
    steps = []
    h, total = h0, 0.0
    while total + h < length:
        h *= growth
        steps.append(h)
        total += h
    if not steps:
        return np.array([start, stop])
    steps = np.array(steps) * (length / total)  # stretch so the points end exactly at stop
    return start + direction * np.concatenate([[0.0], np.cumsum(steps)])


@dataclass(frozen=True)
class NeedleMesh:
    """A triangle mesh of needle and tissue with the index sets the solvers need."""

    mesh: MeshTri
    geometry: NeedleGeometry
    spec: MeshSpec
    r_lines: np.ndarray
    z_lines: np.ndarray
    region: np.ndarray  # (n_elements,) Region label
    thermocouple_node: int
    active_nodes: np.ndarray  # electrode surface in contact with tissue, z <= L
    outer_nodes: np.ndarray  # far boundary: dispersive pad and body core
    lumen_radius_mesh_m: float = field(default=0.0)

    @property
    def r(self) -> np.ndarray:
        return self.mesh.p[0]

    @property
    def z(self) -> np.ndarray:
        return self.mesh.p[1]

    @property
    def tissue(self) -> np.ndarray:
        """Boolean mask of tissue elements."""
        return self.region == Region.TISSUE

    @cached_property
    def tissue_nodes(self) -> np.ndarray:
        """Boolean mask of nodes that belong to at least one tissue element."""
        mask = np.zeros(self.mesh.p.shape[1], bool)
        mask[self.mesh.t[:, self.tissue].ravel()] = True
        return mask

    def locate(self, r_m: np.ndarray, z_m: np.ndarray) -> np.ndarray:
        """Indices of the elements containing the points (r, z), found from the tensor grid.

        Element order is that of ``build_needle_mesh``: the lower-right triangle of every
        cell, then the upper-left one; a point above the cell's "/" diagonal is in the latter.
        """
        r, z = np.asarray(r_m, float), np.asarray(z_m, float)
        i = np.clip(np.searchsorted(self.r_lines, r, side="right") - 1, 0, len(self.r_lines) - 2)
        j = np.clip(np.searchsorted(self.z_lines, z, side="right") - 1, 0, len(self.z_lines) - 2)
        s = (r - self.r_lines[i]) / (self.r_lines[i + 1] - self.r_lines[i])
        t = (z - self.z_lines[j]) / (self.z_lines[j + 1] - self.z_lines[j])
        n_cells = (len(self.r_lines) - 1) * (len(self.z_lines) - 1)
        return j * (len(self.r_lines) - 1) + i + np.where(t > s, n_cells, 0)

    @property
    def grid_shape(self) -> tuple[int, int]:
        """(n_z, n_r): node index = j * n_r + i for z-line j and r-line i."""
        return len(self.z_lines), len(self.r_lines)


def build_needle_mesh(geometry: NeedleGeometry, spec: MeshSpec = MeshSpec()) -> NeedleMesh:
    """Mesh the needle of ``geometry`` in a cylinder of tissue at resolution ``spec``."""
    a, L, hc = geometry.radius_m, geometry.tip_length_m, geometry.cone_length_m
    h, margin, far, g = spec.h_fine_m, spec.fine_margin_m, spec.domain_m, spec.growth

    n_needle = max(3, int(np.ceil(a / h)))
    coating = geometry.insulation_thickness_m
    if not 0 < coating < a:
        raise ValidationError(f"insulation thickness = {coating * 1e3:g} mm: must be between 0 and the needle radius {a * 1e3:g} mm")
    coating_inner = a - coating
    r_needle = np.union1d(np.linspace(0.0, a, n_needle + 1), [coating_inner])
    r_fine = uniform_points(a, a + margin, h)
    r_far = graded_points(a + margin, a + margin + far, r_fine[-1] - r_fine[-2], g)
    r_lines = np.unique(np.concatenate([r_needle, r_fine, r_far]))

    z_cone = np.union1d(np.linspace(0.0, hc, n_needle + 1), [hc * coating_inner / a])
    z_tip = uniform_points(hc, L, h)
    above_m = margin if spec.proximal_margin_m is None else spec.proximal_margin_m
    below_m = margin if spec.distal_margin_m is None else spec.distal_margin_m
    z_above = uniform_points(L, L + above_m, h)
    z_below = uniform_points(-below_m, 0.0, h)
    z_top = graded_points(L + above_m, L + above_m + far, z_above[-1] - z_above[-2], g)
    z_bottom = graded_points(-below_m, -below_m - far, z_below[1] - z_below[0], g)[::-1]
    z_lines = np.unique(np.concatenate([z_bottom, z_below, z_cone, z_tip, z_above, z_top]))

    # The field is singular at the electrode's edges (the end of the active tip and the
    # apex): extra lines at h/2, h/4, ... around them restore fast convergence there.
    edge_offsets = h * 0.5 ** np.arange(1, spec.edge_levels + 1)
    r_lines = np.union1d(r_lines, a + edge_offsets)
    z_lines = np.union1d(z_lines, np.concatenate([L + edge_offsets, L - edge_offsets, -edge_offsets]))
    nr, nz = len(r_lines), len(z_lines)
    rr, zz = np.meshgrid(r_lines, z_lines)
    points = np.vstack([rr.ravel(), zz.ravel()])
    node = np.arange(nr * nz).reshape(nz, nr)
    lower_left, lower_right = node[:-1, :-1].ravel(), node[:-1, 1:].ravel()
    upper_left, upper_right = node[1:, :-1].ravel(), node[1:, 1:].ravel()
    # "/" diagonal from lower-left to upper-right: follows the cone line r = a z / hc.
    triangles = np.hstack(
        [
            np.vstack([lower_left, lower_right, upper_right]),
            np.vstack([lower_left, upper_right, upper_left]),
        ]
    )
    mesh = MeshTri(points, triangles, sort_t=False)

    centroid = points[:, triangles].mean(axis=1)
    rc, zc = centroid
    inside_needle = (rc < a) & (zc > 0) & ((zc >= hc) | (rc < a * zc / hc))
    region = np.full(triangles.shape[1], Region.TISSUE, dtype=np.int8)
    region[inside_needle] = Region.METAL
    region[inside_needle & (zc > L) & (rc > coating_inner)] = Region.INSULATION
    lumen_mesh = 0.0
    if geometry.lumen_radius_m > 0:
        # nearest interior r-line to the channel radius stands for the channel wall
        candidates = r_needle[(r_needle > 0) & (r_needle < coating_inner)]
        lumen_mesh = float(candidates[np.argmin(abs(candidates - geometry.lumen_radius_m))])
        region[inside_needle & (zc > hc) & (rc < lumen_mesh)] = Region.LUMEN

    needle_nodes = np.zeros(points.shape[1], bool)
    needle_nodes[triangles[:, region != Region.TISSUE].ravel()] = True
    tissue_nodes = np.zeros(points.shape[1], bool)
    tissue_nodes[triangles[:, region == Region.TISSUE].ravel()] = True
    surface = needle_nodes & tissue_nodes
    active = np.flatnonzero(surface & (points[1] <= L * (1 + 1e-9)))

    r_max, z_min, z_max = r_lines[-1], z_lines[0], z_lines[-1]
    outer = np.flatnonzero(np.isclose(points[0], r_max) | np.isclose(points[1], z_min) | np.isclose(points[1], z_max))
    thermocouple = int(node[np.argmin(abs(z_lines - hc)), 0])

    return NeedleMesh(
        mesh=mesh,
        geometry=geometry,
        spec=spec,
        r_lines=r_lines,
        z_lines=z_lines,
        region=region,
        thermocouple_node=thermocouple,
        active_nodes=active,
        outer_nodes=outer,
        lumen_radius_mesh_m=lumen_mesh,
    )
