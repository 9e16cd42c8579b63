"""Needle-aligned tetrahedral mesh for one needle or two parallel needles (bipolar).

Built in the frame of the first needle (apex at the origin, shaft along +z toward the
hub, second needle on the +x axis) and moved rigidly into the anatomy:

* cross-section: graded rings of points around every needle (centre point, rings inside
  the metal, on the coating's inner radius and on the needle surface, at h/2, h/4, ...
  outside it for the edge singularity, then spacing h and geometric growth); for two
  needles the rings stop short of mid-way and a graded tensor grid fills the rest of a
  square (points closer than h/2 to a ring are dropped). A 2D Delaunay triangulation of
  all points is the cross-section mesh; it also locates points for sampling.
* the needle-surface ring (and the metal rings inside it) is pushed out so that its
  polygon has the area of the circle: r_poly = a sqrt(2 pi / (n sin(2 pi / n))).
* extrusion along z on graded lines placed on the apex, the cone base, the end of the
  active tip (with h/2, h/4, ... lines around both electrode edges) and the margins;
  every prism is split into three tetrahedra by the vertex-order rule, which makes
  neighbouring prisms conforming.
* the sharp cone (r = a z / h_cone) is a staircase of prisms: z-lines at the heights
  where the cone crosses the metal rings and half-way between, and a prism is metal
  when all its vertices lie inside the cone radius at the top of its layer (steps half-way
  between rings, so the metal volume matches the cone's to first order).

All lengths in metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.spatial import Delaunay

from neurolysis.physics.mesh import NeedleGeometry, Region, graded_points, uniform_points
from neurolysis.validation import ValidationError

MERGE_TOLERANCE_M = 1e-9
"""Grid lines or points closer than this are merged (near-duplicates give degenerate tets)."""


@dataclass(frozen=True)
class Mesh3DSpec:
    """Resolution and extent of the 3D mesh (metres).

    ``h_fine_m``: spacing where lesions form; ``sectors``: points per ring around a
    needle; ``fine_margin_m``: reach of the fine region beyond the needle surface, below
    the apex and above the active tip; ``domain_m``: distance of the far boundary
    beyond the fine region; ``growth``: ratio of neighbouring cells outside it.
    """

    h_fine_m: float = 0.4e-3
    sectors: int = 16
    fine_margin_m: float = 6e-3
    domain_m: float = 60e-3
    growth: float = 1.3
    edge_levels: int = 3

    def refined(self, factor: float = 2.0) -> Mesh3DSpec:
        """Spacing divided and sectors multiplied by ``factor`` (for refinement studies)."""
        return Mesh3DSpec(self.h_fine_m / factor, int(round(self.sectors * factor)), self.fine_margin_m, self.domain_m, self.growth, self.edge_levels)

    def as_dict(self) -> dict:
        """The resolution in user units, for results' ``mesh`` entries."""
        return {
            "h_fine_mm": self.h_fine_m * 1e3,
            "sectors": self.sectors,
            "fine_margin_mm": self.fine_margin_m * 1e3,
            "domain_mm": self.domain_m * 1e3,
            "growth": self.growth,
        }


def _merge(lines: np.ndarray) -> np.ndarray:
    lines = np.unique(lines)
    keep = np.concatenate([[True], np.diff(lines) > MERGE_TOLERANCE_M])
    return lines[keep]


def _polygon_factor(n: int) -> float:
    """Radius factor giving a regular n-gon the area of its nominal circle."""
    return float(np.sqrt(2 * np.pi / (n * np.sin(2 * np.pi / n))))


@dataclass(frozen=True, eq=False)
class CrossSection:
    """The 2D triangulation extruded along the needles (needle frame, metres)."""

    points: np.ndarray  # (n, 2)
    triangles: np.ndarray  # (n_tri, 3)
    ring_needle: np.ndarray  # (n,) index of the needle a ring point belongs to, -1 for background
    ring_radius: np.ndarray  # (n,) nominal ring radius (inf for background points)
    centre_nodes: np.ndarray  # (k,) index of each needle's centre point
    hull_nodes: np.ndarray  # nodes on the outer boundary
    rank: np.ndarray  # (n,) order used to split prisms (see build_needle_mesh3d)

    @cached_property
    def _finder(self):
        from matplotlib.tri import Triangulation  # deferred: only sampling needs it

        return Triangulation(self.points[:, 0], self.points[:, 1], self.triangles).get_trifinder()

    @cached_property
    def ranked_triangles(self) -> np.ndarray:
        """The triangles with their vertices in rank order: the order ``extrude`` splits prisms by."""
        return np.take_along_axis(self.triangles, np.argsort(self.rank[self.triangles], axis=1), axis=1)

    def find_triangle(self, xy: np.ndarray) -> np.ndarray:
        """Index of the triangle containing each point, -1 outside."""
        return np.asarray(self._finder(xy[:, 0], xy[:, 1]), dtype=np.int64)


def _ring_radii(geometry: NeedleGeometry, spec: Mesh3DSpec, r_max: float) -> tuple[np.ndarray, np.ndarray]:
    """(radii inside the needle incl. its surface, radii outside up to ``r_max``)."""
    a, h = geometry.radius_m, spec.h_fine_m
    coating_inner = a - geometry.insulation_thickness_m
    n_in = max(2, int(np.ceil(a / h)))
    inner = [np.linspace(0.0, a, n_in + 1), [coating_inner]]
    if geometry.lumen_radius_m > 0:
        inner.append([geometry.lumen_radius_m])
    inner = _merge(np.concatenate(inner))
    margin = spec.fine_margin_m
    fine = uniform_points(a, a + margin, h)
    far = graded_points(a + margin, a + margin + spec.domain_m, fine[-1] - fine[-2], spec.growth)
    edges = a + h * 0.5 ** np.arange(1, spec.edge_levels + 1)
    outer = _merge(np.concatenate([edges, fine[1:], far[1:]]))
    return inner, outer[outer <= r_max * (1 + 1e-12)]


def _ring_points(centre, radii, sectors_of, scale_upto: float, needle: int):
    pts, owner, nominal = [], [], []
    for r in radii:
        if r <= MERGE_TOLERANCE_M:
            pts.append(np.asarray(centre)[None, :])
            nominal.append([0.0])
            continue
        n = sectors_of(r)
        theta = 2 * np.pi * np.arange(n) / n
        rr = r * _polygon_factor(n) if r <= scale_upto * (1 + 1e-12) else r
        pts.append(np.column_stack([centre[0] + rr * np.cos(theta), centre[1] + rr * np.sin(theta)]))
        nominal.append(np.full(n, r))
    pts = np.vstack(pts)
    owner = np.full(len(pts), needle)
    return pts, owner, np.concatenate(nominal)


def build_cross_section(geometry: NeedleGeometry, spacing_m: float | None, spec: Mesh3DSpec) -> CrossSection:
    """Cross-section for one needle at the origin, or two at (0, 0) and (``spacing_m``, 0)."""
    a, h, g = geometry.radius_m, spec.h_fine_m, spec.growth
    extent = a + spec.fine_margin_m + spec.domain_m
    if spacing_m is None:
        inner, outer = _ring_radii(geometry, spec, np.inf)
        radii = np.concatenate([inner, outer])
        pts, owner, nominal = _ring_points((0.0, 0.0), radii, lambda r: spec.sectors, a, 0)
        triangles, rank = _ring_triangles(len(radii) - 1, spec.sectors)
        hull = np.arange(len(pts) - spec.sectors, len(pts))
        return CrossSection(pts, triangles, owner, nominal, np.array([0]), hull, rank)
    else:
        near = min(0.35 * spacing_m, a + 2.0e-3)
        inner, outer = _ring_radii(geometry, spec, near)
        radii = np.concatenate([inner, outer])
        sectors = lambda r: max(spec.sectors, int(np.ceil(2 * np.pi * r / (1.5 * h))))  # noqa: E731
        blocks = [_ring_points((cx, 0.0), radii, sectors, a, k) for k, cx in enumerate((0.0, spacing_m))]
        centres = [0, len(blocks[0][0])]
        # background: Cartesian points at h inside the ellipse with semi-axes
        # (spacing/2 + margin, margin) around the midpoint, then ellipses offset by graded
        # distances d (semi-axes A + d, B + d) out to the far boundary, each with points
        # spaced like its radial step
        mid, w = 0.5 * spacing_m, spec.fine_margin_m
        ax, by = 0.5 * spacing_m + w, w
        xs = uniform_points(mid - ax, mid + ax, h)
        ys = uniform_points(-by, by, h)
        xx, yy = np.meshgrid(xs, ys)
        bg = np.column_stack([xx.ravel(), yy.ravel()])
        inset = 1.0 - 0.5 * h / by
        bg = bg[((bg[:, 0] - mid) / ax) ** 2 + (bg[:, 1] / by) ** 2 < inset**2]
        offsets = graded_points(0.0, extent, h, g)
        steps = np.diff(offsets, prepend=0.0)
        steps[0] = h
        for d, step in zip(offsets, steps, strict=True):
            A, B = ax + d, by + d
            perimeter = np.pi * (3 * (A + B) - np.sqrt((3 * A + B) * (A + 3 * B)))
            n = max(spec.sectors, int(np.ceil(perimeter / max(step, h))))
            theta = 2 * np.pi * np.arange(n) / n
            bg = np.vstack([bg, np.column_stack([mid + A * np.cos(theta), B * np.sin(theta)])])
        keep = np.ones(len(bg), bool)
        for cx in (0.0, spacing_m):
            keep &= np.hypot(bg[:, 0] - cx, bg[:, 1]) > radii[-1] + 0.5 * h
        bg = bg[keep]
        pts = np.vstack([blocks[0][0], blocks[1][0], bg])
        owner = np.concatenate([blocks[0][1], blocks[1][1], np.full(len(bg), -1)])
        nominal = np.concatenate([blocks[0][2], blocks[1][2], np.full(len(bg), np.inf)])
    tri = Delaunay(pts)
    hull = np.unique(tri.convex_hull)
    return CrossSection(pts, tri.simplices.astype(np.int64), owner, nominal, np.array(centres), hull, np.arange(len(pts)))


def _ring_triangles(n_rings: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Structured triangles of a centre point and ``n_rings`` rings of ``n`` points, and node ranks.

    Node (ring k >= 1, sector j) is 1 + (k - 1) n + j with rank k + j. Cells are cut by the
    diagonal (k, j)-(k+1, j+1), and at the seam j = n - 1 by (k, 0)-(k+1, n - 1), so that in
    every triangle the vertex of middle rank is the (near-)right-angle corner: the prism
    split then is the Kuhn split of a box, whose stiffness matrix has no positive
    off-diagonal couplings (an M-matrix; classical AMG converges fast on it).
    """
    j = np.arange(n)
    jn = (j + 1) % n
    tris = [np.column_stack([np.zeros(n, np.int64), 1 + j, 1 + jn])]
    for k in range(1, n_rings):
        lo, hi = 1 + (k - 1) * n, 1 + k * n
        a, b, c, d = lo + j, lo + jn, hi + j, hi + jn  # (k,j) (k,j+1) (k+1,j) (k+1,j+1)
        normal = j < n - 1
        tris.append(np.column_stack([a, b, d])[normal])
        tris.append(np.column_stack([a, c, d])[normal])
        tris.append(np.column_stack([b, a, c])[~normal])  # seam: diagonal (k,0)-(k+1,n-1) = b-c
        tris.append(np.column_stack([b, d, c])[~normal])
    rank = np.concatenate([[0], (np.arange(1, n_rings + 1)[:, None] + j[None, :]).ravel()])
    return np.vstack(tris).astype(np.int64), rank


@dataclass(frozen=True, eq=False)
class NeedleMesh3D:
    """Tetrahedral mesh of needle(s) and tissue in the first needle's frame.

    Node ``layer * n_xy + i`` is cross-section point ``i`` on z-line ``layer``;
    tet ``3 * (layer * n_tri + triangle) + k`` is piece ``k`` of that prism.
    """

    geometry: NeedleGeometry
    spec: Mesh3DSpec
    section: CrossSection
    z_lines: np.ndarray
    needle_xyz: np.ndarray  # (k, 3) apex of each needle in the frame
    region: np.ndarray  # (n_tets,) Region label
    needle_of: np.ndarray  # (n_tets,) needle index of metal tets, -1 in tissue
    tets: np.ndarray  # (n_tets, 4) int64
    thermocouple_nodes: np.ndarray  # (k,) node on each needle's axis at the cone base
    active_nodes: tuple[np.ndarray, ...]  # per needle: electrode surface in contact with tissue
    outer_nodes: np.ndarray  # far boundary (pad, body core)

    @property
    def n_nodes(self) -> int:
        return len(self.section.points) * len(self.z_lines)

    @cached_property
    def nodes(self) -> np.ndarray:
        """(n_nodes, 3) coordinates in the needle frame."""
        p = self.section.points
        nz = len(self.z_lines)
        return np.column_stack([np.tile(p[:, 0], nz), np.tile(p[:, 1], nz), np.repeat(self.z_lines, len(p))])

    @property
    def tissue(self) -> np.ndarray:
        return self.region == Region.TISSUE

    @cached_property
    def tissue_nodes(self) -> np.ndarray:
        mask = np.zeros(self.n_nodes, bool)
        mask[self.tets[self.tissue].ravel()] = True
        return mask

    @cached_property
    def centroids(self) -> np.ndarray:
        return self.nodes[self.tets].mean(axis=1)

    def locate(self, local_xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(tet index or -1, barycentric weights (n, 4)) of points in the needle frame.

        A point's prism is its section triangle and z-layer; within the prism its weights follow
        from its 2D barycentrics (alpha_a, alpha_b, alpha_c in rank order) and height fraction t,
        one formula per piece of ``extrude``'s split:
        (a0 b0 c0 a1): (alpha_a - t, alpha_b, alpha_c, t);
        (b0 c0 a1 b1): (alpha_a + alpha_b - t, alpha_c, alpha_a, t - alpha_a);
        (c0 a1 b1 c1): (1 - t, alpha_a, alpha_b, t - alpha_a - alpha_b).
        The piece whose smallest weight is largest holds the point."""
        pts = np.asarray(local_xyz, float).reshape(-1, 3)
        tri = self.section.find_triangle(pts[:, :2])
        z = self.z_lines
        layer = np.searchsorted(z, pts[:, 2], side="right") - 1
        layer = np.where(pts[:, 2] == z[-1], len(z) - 2, layer)
        inside = (tri >= 0) & (layer >= 0) & (layer <= len(z) - 2)
        best = np.full(len(pts), -1)
        weights = np.zeros((len(pts), 4))
        idx = np.flatnonzero(inside)
        if idx.size == 0:
            return best, weights
        p, lay = pts[idx], layer[idx]
        corners = self.section.points[self.section.ranked_triangles[tri[idx]]]  # (m, 3, 2): a, b, c
        ab, ac, ap = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0], p[:, :2] - corners[:, 0]
        det = ab[:, 0] * ac[:, 1] - ab[:, 1] * ac[:, 0]
        alpha_b = (ap[:, 0] * ac[:, 1] - ap[:, 1] * ac[:, 0]) / det
        alpha_c = (ab[:, 0] * ap[:, 1] - ab[:, 1] * ap[:, 0]) / det
        alpha_a = 1.0 - alpha_b - alpha_c
        t = (p[:, 2] - z[lay]) / (z[lay + 1] - z[lay])
        pieces = np.stack(
            [
                np.column_stack([alpha_a - t, alpha_b, alpha_c, t]),
                np.column_stack([alpha_a + alpha_b - t, alpha_c, alpha_a, t - alpha_a]),
                np.column_stack([1.0 - t, alpha_a, alpha_b, t - alpha_a - alpha_b]),
            ],
            axis=1,
        )  # (m, 3, 4)
        k = pieces.min(axis=2).argmax(axis=1)
        best[idx] = 3 * (lay * len(self.section.triangles) + tri[idx]) + k
        weights[idx] = pieces[np.arange(idx.size), k]
        return best, weights

    def interpolate(self, nodal: np.ndarray, local_xyz: np.ndarray, outside: float) -> np.ndarray:
        """P1 interpolation of nodal fields at points (needle frame); ``outside`` off the mesh."""
        tet, w = self.locate(local_xyz)
        out = np.full(len(tet), outside, float)
        ok = tet >= 0
        out[ok] = (nodal[self.tets[tet[ok]]] * w[ok]).sum(axis=1)
        return out


def _z_lines(geometry: NeedleGeometry, spec: Mesh3DSpec, metal_radii: np.ndarray, apexes: np.ndarray) -> np.ndarray:
    a, L, hc = geometry.radius_m, geometry.tip_length_m, geometry.cone_length_m
    h, margin, far, g = spec.h_fine_m, spec.fine_margin_m, spec.domain_m, spec.growth
    lines = []
    for z0 in apexes:
        cone = hc * metal_radii / a
        cone = np.concatenate([cone, 0.5 * (cone[1:] + cone[:-1])])
        edges = h * 0.5 ** np.arange(1, spec.edge_levels + 1)
        lines += [z0 + cone, z0 + uniform_points(hc, L, h), z0 + L + edges, z0 + L - edges, z0 - edges]
    low, high = apexes.min(), apexes.max()
    below = uniform_points(low - margin, low, h)
    above = uniform_points(high + L, high + L + margin, h)
    lines += [below, above]
    lines += [graded_points(low - margin, low - margin - far, below[1] - below[0], g), graded_points(high + L + margin, high + L + margin + far, above[1] - above[0], g)]
    return _merge(np.concatenate(lines))


def extrude(section: CrossSection, n_layers: int) -> tuple[np.ndarray, np.ndarray]:
    """(triangles ordered by rank, tets (n, 4)) of the cross-section extruded over ``n_layers`` z-lines.

    Prism (layer l, triangle a < b < c by rank) -> (a0 b0 c0 a1), (b0 c0 a1 b1), (c0 a1 b1 c1):
    a shared vertical face is cut from the bottom of its higher-rank to the top of its
    lower-rank vertex, so neighbouring prisms conform.
    """
    n_xy = len(section.points)
    tri = section.ranked_triangles
    layer = np.arange(n_layers - 1, dtype=np.int64)[:, None]
    bottom = [layer * n_xy + tri[:, j][None, :] for j in range(3)]
    top = [b + n_xy for b in bottom]
    pieces = [(bottom[0], bottom[1], bottom[2], top[0]), (bottom[1], bottom[2], top[0], top[1]), (bottom[2], top[0], top[1], top[2])]
    tets = np.stack([np.stack([v.ravel() for v in piece], axis=1) for piece in pieces], axis=1).reshape(-1, 4)
    return tri, tets


def build_needle_mesh3d(geometry: NeedleGeometry, spec: Mesh3DSpec = Mesh3DSpec(), spacing_m: float | None = None, offset_z_m: float = 0.0) -> NeedleMesh3D:
    """Mesh one needle (``spacing_m`` None) or two parallel needles ``spacing_m`` apart.

    The second needle's apex is at (spacing_m, 0, offset_z_m) in the first needle's frame.
    """
    a, L, hc = geometry.radius_m, geometry.tip_length_m, geometry.cone_length_m
    if spec.sectors < 8:
        raise ValidationError(f"mesh sectors = {spec.sectors}: must be at least 8")
    section = build_cross_section(geometry, spacing_m, spec)
    inner, _ = _ring_radii(geometry, spec, np.inf)
    apexes = np.array([0.0] if spacing_m is None else [0.0, offset_z_m])
    z = _z_lines(geometry, spec, inner, apexes)
    n_xy, nz = len(section.points), len(z)
    tri, tets = extrude(section, nz)
    n_tri = len(tri)

    # materials per prism from nominal ring radii of its triangle (same needle for all 3 vertices)
    owner = section.ring_needle[tri]
    same = (owner[:, 0] >= 0) & (owner == owner[:, :1]).all(axis=1)
    r_tri = np.where(same, section.ring_radius[tri].max(axis=1), np.inf)
    r_tri_min = np.where(same, section.ring_radius[tri].min(axis=1), np.inf)
    tri_needle = np.where(same, owner[:, 0], -1)
    coating_inner = a - geometry.insulation_thickness_m
    tol = 1e-9
    region = np.full((nz - 1, n_tri), Region.TISSUE, dtype=np.int8)
    needle_of = np.full((nz - 1, n_tri), -1, dtype=np.int8)
    z0, z1 = z[:-1, None], z[1:, None]
    for k, apex in enumerate(apexes):
        zl0, zl1 = z0 - apex, z1 - apex
        mine = (tri_needle == k)[None, :]
        cone_r = np.where(zl1 >= hc - tol, a, a * zl1 / hc)
        metal = mine & (zl0 >= -tol) & (r_tri[None, :] <= cone_r * (1 + 1e-9) + tol)
        region[metal] = Region.METAL
        needle_of[metal] = k
        region[metal & (zl0 >= L - tol) & (r_tri_min[None, :] >= coating_inner - tol)] = Region.INSULATION
        if geometry.lumen_radius_m > 0:
            region[metal & (zl0 >= hc - tol) & (r_tri[None, :] <= geometry.lumen_radius_m + tol)] = Region.LUMEN
    region = np.repeat(region.ravel(), 3)
    needle_of = np.repeat(needle_of.ravel(), 3)

    n_nodes = n_xy * nz
    in_metal = np.zeros(n_nodes, bool)
    in_tissue = np.zeros(n_nodes, bool)
    in_tissue[tets[region == Region.TISSUE].ravel()] = True
    node_z = np.repeat(z, n_xy)
    active = []
    for k, apex in enumerate(apexes):
        in_metal[:] = False
        in_metal[tets[needle_of == k].ravel()] = True
        active.append(np.flatnonzero(in_metal & in_tissue & (node_z - apex <= L * (1 + 1e-9) + tol)))
    thermocouples = np.array([int(np.argmin(abs(z - apex - hc))) * n_xy + section.centre_nodes[k] for k, apex in enumerate(apexes)])
    outer = np.union1d((np.arange(nz)[:, None] * n_xy + section.hull_nodes[None, :]).ravel(), np.concatenate([np.arange(n_xy), (nz - 1) * n_xy + np.arange(n_xy)]))
    needle_xyz = np.column_stack([[0.0] * len(apexes) if spacing_m is None else [0.0, spacing_m], np.zeros(len(apexes)), apexes])
    return NeedleMesh3D(geometry, spec, section, z, needle_xyz, region, needle_of, tets, thermocouples, tuple(active), outer)
