"""Vectorised solid shapes that templates paint into tissue regions.

Each shape answers ``contains(points_m) -> bool array`` for an ``(n, 3)`` array of points
(metres) and gives an axis-aligned bounding box ``bbox_m`` so that a painter can skip
points far away. Shapes are built from data (:func:`shape_from_spec`, millimetres with
``_mm`` keys) so that templates stay in TOML files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from neurolysis.validation import ValidationError

MM = 1e-3
_HUGE_M = 1e3


def in_box(points_m: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Points (n, 3) inside the closed axis-aligned box [lo, hi] (column-wise, fast)."""
    x, y, z = points_m[:, 0], points_m[:, 1], points_m[:, 2]
    return (x >= lo[0]) & (x <= hi[0]) & (y >= lo[1]) & (y <= hi[1]) & (z >= lo[2]) & (z <= hi[2])


def _unit(v, field: str) -> np.ndarray:
    v = np.asarray(v, dtype=float).reshape(3)
    n = float(np.linalg.norm(v))
    if not np.isfinite(n) or n < 1e-12:
        raise ValidationError(f"{field} = {list(v)}: must be a finite non-zero vector")
    return v / n


def _perpendicular_frame(axis: np.ndarray, hint=None) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors (u, v) perpendicular to unit ``axis``; u follows ``hint`` if given."""
    if hint is None:
        hint = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.asarray(hint, float) - np.dot(hint, axis) * axis
    if np.linalg.norm(u) < 1e-9:
        raise ValidationError(f"u_axis = {list(hint)}: must not be parallel to the shape axis")
    u /= np.linalg.norm(u)
    return u, np.cross(axis, u)


@dataclass(frozen=True, eq=False)
class Box:
    """A box with centre, half-sizes and orthonormal axes (axis-aligned by default)."""

    center_m: np.ndarray
    half_m: np.ndarray
    axes: np.ndarray = field(default_factory=lambda: np.eye(3))  # rows: the box's local x, y, z in the anatomy frame

    def contains(self, points_m: np.ndarray) -> np.ndarray:
        if self.axis_aligned:
            return in_box(points_m, *self.bbox_m)
        local = np.abs((points_m - self.center_m) @ self.axes.T)
        return (local[:, 0] <= self.half_m[0]) & (local[:, 1] <= self.half_m[1]) & (local[:, 2] <= self.half_m[2])

    @property
    def axis_aligned(self) -> bool:
        """True when the box is its own bounding box (a painter need not test further)."""
        return bool(np.array_equal(self.axes, np.eye(3)))

    @property
    def bbox_m(self) -> tuple[np.ndarray, np.ndarray]:
        extent = np.abs(self.axes.T) @ self.half_m
        return self.center_m - extent, self.center_m + extent


@dataclass(frozen=True, eq=False)
class Ellipsoid:
    """An axis-aligned ellipsoid: sum(((x - c) / r)^2) <= 1."""

    center_m: np.ndarray
    radii_m: np.ndarray

    def contains(self, points_m: np.ndarray) -> np.ndarray:
        q = (points_m - self.center_m) / self.radii_m
        return q[:, 0] * q[:, 0] + q[:, 1] * q[:, 1] + q[:, 2] * q[:, 2] <= 1.0

    @property
    def bbox_m(self) -> tuple[np.ndarray, np.ndarray]:
        return self.center_m - self.radii_m, self.center_m + self.radii_m


@dataclass(frozen=True, eq=False)
class EllipticCylinder:
    """A cylinder from ``a_m`` to ``b_m`` (flat ends) with an elliptic section.

    The section's semi-axes are ``radii_m[0]`` along ``u`` and ``radii_m[1]`` along
    ``v = axis x u``; a round cylinder has equal radii.
    """

    a_m: np.ndarray
    b_m: np.ndarray
    radii_m: np.ndarray
    u: np.ndarray

    def contains(self, points_m: np.ndarray) -> np.ndarray:
        axis = self.b_m - self.a_m
        length = float(np.linalg.norm(axis))
        axis = axis / length
        v = np.cross(axis, self.u)
        k, i, j = (int(np.argmax(np.abs(w))) for w in (axis, self.u, v))
        if max(abs(axis[k]), abs(self.u[i]), abs(v[j])) == 1.0 == min(abs(axis[k]), abs(self.u[i]), abs(v[j])):
            # axes along the coordinate axes: work on columns (the common case, 3x faster)
            lo, hi = sorted((self.a_m[k], self.b_m[k]))
            c = points_m[:, k]
            pu = (points_m[:, i] - self.a_m[i]) / self.radii_m[0]
            pv = (points_m[:, j] - self.a_m[j]) / self.radii_m[1]
            return (c >= lo) & (c <= hi) & (pu * pu + pv * pv <= 1.0)
        frame = np.column_stack([axis, self.u / self.radii_m[0], v / self.radii_m[1]])
        local = points_m @ frame - self.a_m @ frame
        s, pu, pv = local[:, 0], local[:, 1], local[:, 2]
        return (s >= 0.0) & (s <= length) & (pu * pu + pv * pv <= 1.0)

    @property
    def bbox_m(self) -> tuple[np.ndarray, np.ndarray]:
        r = float(np.max(self.radii_m))
        return np.minimum(self.a_m, self.b_m) - r, np.maximum(self.a_m, self.b_m) + r


@dataclass(frozen=True, eq=False)
class Tube:
    """Points within ``radius_m`` of a polyline (a capsule when it has two points)."""

    points_m: np.ndarray  # (k, 3), k >= 2
    radius_m: float

    def distance(self, points_m: np.ndarray) -> np.ndarray:
        """Distance (m) from each point to the polyline."""
        return polyline_distance(points_m, self.points_m)

    def contains(self, points_m: np.ndarray) -> np.ndarray:
        return self.distance(points_m) <= self.radius_m

    @property
    def bbox_m(self) -> tuple[np.ndarray, np.ndarray]:
        return self.points_m.min(axis=0) - self.radius_m, self.points_m.max(axis=0) + self.radius_m


@dataclass(frozen=True, eq=False)
class HalfSpace:
    """Points on the inner side of a plane: (x - p) . n <= 0 (``n`` is the outward normal)."""

    point_m: np.ndarray
    normal: np.ndarray

    def contains(self, points_m: np.ndarray) -> np.ndarray:
        return (points_m - self.point_m) @ self.normal <= 0.0

    @property
    def bbox_m(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = np.full(3, -_HUGE_M), np.full(3, _HUGE_M)
        for i in range(3):  # a plane normal to an axis bounds that axis on one side
            if np.allclose(np.delete(self.normal, i), 0.0):
                (hi if self.normal[i] > 0 else lo)[i] = self.point_m[i]
        return lo, hi


@dataclass(frozen=True, eq=False)
class Slab:
    """Points between two parallel planes: 0 <= (x - p) . n <= thickness."""

    point_m: np.ndarray
    normal: np.ndarray
    thickness_m: float

    def contains(self, points_m: np.ndarray) -> np.ndarray:
        s = (points_m - self.point_m) @ self.normal
        return (s >= 0.0) & (s <= self.thickness_m)

    @property
    def bbox_m(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = np.full(3, -_HUGE_M), np.full(3, _HUGE_M)
        for i in range(3):
            if np.allclose(np.delete(self.normal, i), 0.0):
                a, b = self.point_m[i], self.point_m[i] + self.normal[i] * self.thickness_m
                lo[i], hi[i] = min(a, b), max(a, b)
        return lo, hi


@dataclass(frozen=True, eq=False)
class Clipped:
    """A shape restricted to the points also inside every shape of ``within``."""

    shape: object
    within: tuple

    def contains(self, points_m: np.ndarray) -> np.ndarray:
        inside = self.shape.contains(points_m)
        for w in self.within:
            if not inside.any():
                break
            idx = np.flatnonzero(inside)
            inside[idx] = w.contains(points_m[idx])
        return inside

    @property
    def bbox_m(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.shape.bbox_m
        for w in self.within:
            wlo, whi = w.bbox_m
            lo, hi = np.maximum(lo, wlo), np.minimum(hi, whi)
        return lo, hi


def polyline_distance(points_m: np.ndarray, line_m: np.ndarray) -> np.ndarray:
    """Distance from each of ``points_m`` (n, 3) to the polyline ``line_m`` (k, 3)."""
    points_m = np.asarray(points_m, float).reshape(-1, 3)
    best = np.full(len(points_m), np.inf)
    for a, b in zip(line_m[:-1], line_m[1:], strict=True):
        ab = b - a
        denom = float(ab @ ab)
        rel = points_m - a
        t = np.clip(rel @ ab / denom, 0.0, 1.0) if denom > 0 else np.zeros(len(points_m))
        d = rel - t[:, None] * ab
        best = np.minimum(best, np.einsum("ij,ij->i", d, d))
    return np.sqrt(best)


SHAPES = ("box", "ellipsoid", "cylinder", "elliptic-cylinder", "tube", "half-space", "slab")


def _vec(spec: Mapping, key: str, where: str, shape=(3,)) -> np.ndarray:
    if key not in spec:
        raise ValidationError(f"{where}.{key} = None: required for shape {spec.get('shape')!r}")
    try:
        v = np.asarray(spec[key], dtype=float)
    except (TypeError, ValueError):
        raise ValidationError(f"{where}.{key} = {spec[key]!r}: must be numbers") from None
    if v.shape != shape and not (shape == (-1, 3) and v.ndim == 2 and v.shape[1] == 3 and len(v) >= 2):
        raise ValidationError(f"{where}.{key} = {spec[key]!r}: must have shape {shape} (mm)")
    if not np.all(np.isfinite(v)):
        raise ValidationError(f"{where}.{key} = {spec[key]!r}: must be finite")
    return v


def _positive(spec: Mapping, key: str, where: str) -> float:
    value = spec.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value) or value <= 0:
        raise ValidationError(f"{where}.{key} = {value!r}: must be a finite number > 0 (mm)")
    return float(value)


def shape_from_spec(spec: Mapping, where: str = "shape"):
    """A shape from a TOML table with a ``shape`` key and millimetre geometry.

    ``box``: ``min_mm``/``max_mm``, or ``center_mm``/``size_mm`` with optional
    ``x_axis``/``y_axis``; ``ellipsoid``: ``center_mm``, ``radii_mm``; ``cylinder``:
    ``a_mm``, ``b_mm``, ``radius_mm``; ``elliptic-cylinder``: ``a_mm``, ``b_mm``,
    ``radii_mm`` (2), ``u_axis``; ``tube``: ``points_mm`` (k x 3), ``radius_mm``;
    ``half-space``: ``point_mm``, ``normal`` (outward); ``slab``: ``point_mm``,
    ``normal``, ``thickness_mm``. Any shape may carry ``within = [ {shape...}, ... ]``.
    """
    kind = spec.get("shape")
    if kind not in SHAPES:
        raise ValidationError(f"{where}.shape = {kind!r}: allowed values are {', '.join(SHAPES)}")
    if kind == "box":
        if "min_mm" in spec or "max_mm" in spec:
            lo, hi = _vec(spec, "min_mm", where), _vec(spec, "max_mm", where)
            if np.any(hi <= lo):
                raise ValidationError(f"{where}.max_mm = {list(hi)}: must exceed min_mm = {list(lo)}")
            shape = Box((lo + hi) * 0.5 * MM, (hi - lo) * 0.5 * MM)
        else:
            size = _vec(spec, "size_mm", where)
            if np.any(size <= 0):
                raise ValidationError(f"{where}.size_mm = {list(size)}: must be > 0")
            x = _unit(spec.get("x_axis", (1, 0, 0)), f"{where}.x_axis")
            y, z = _perpendicular_frame(x, spec.get("y_axis", None))
            shape = Box(_vec(spec, "center_mm", where) * MM, size * 0.5 * MM, np.vstack([x, y, z]))
    elif kind == "ellipsoid":
        radii = _vec(spec, "radii_mm", where)
        if np.any(radii <= 0):
            raise ValidationError(f"{where}.radii_mm = {list(radii)}: must be > 0")
        shape = Ellipsoid(_vec(spec, "center_mm", where) * MM, radii * MM)
    elif kind in ("cylinder", "elliptic-cylinder"):
        a, b = _vec(spec, "a_mm", where) * MM, _vec(spec, "b_mm", where) * MM
        axis = _unit(b - a, f"{where}.b_mm - a_mm")
        if kind == "cylinder":
            r = _positive(spec, "radius_mm", where) * MM
            radii = np.array([r, r])
        else:
            radii = _vec(spec, "radii_mm", where, (2,)) * MM
            if np.any(radii <= 0):
                raise ValidationError(f"{where}.radii_mm = {list(radii / MM)}: must be > 0")
        u, _ = _perpendicular_frame(axis, spec.get("u_axis"))
        shape = EllipticCylinder(a, b, radii, u)
    elif kind == "tube":
        shape = Tube(_vec(spec, "points_mm", where, (-1, 3)) * MM, _positive(spec, "radius_mm", where) * MM)
    elif kind == "half-space":
        shape = HalfSpace(_vec(spec, "point_mm", where) * MM, _unit(spec.get("normal"), f"{where}.normal"))
    else:
        shape = Slab(_vec(spec, "point_mm", where) * MM, _unit(spec.get("normal"), f"{where}.normal"), _positive(spec, "thickness_mm", where) * MM)
    within = spec.get("within", ())
    if within:
        shape = Clipped(shape, tuple(shape_from_spec(w, f"{where}.within[{i}]") for i, w in enumerate(within)))
    return shape


def paint(points_m: np.ndarray, fill, layers) -> np.ndarray:
    """Region index of each point: ``fill`` (an index, or an array of one per point),
    then each ``(region, shape)`` of ``layers`` in order (a later layer wins). Points are
    sorted along x once so that each shape only tests the contiguous run of points
    inside its bounding box.
    """
    points_m = np.asarray(points_m, dtype=float).reshape(-1, 3)
    order = np.argsort(points_m[:, 0])
    ps = points_m[order]
    xs = ps[:, 0]
    if np.ndim(fill):
        labels = np.asarray(fill, dtype=np.int32)[order]
    else:
        labels = np.full(len(ps), fill, dtype=np.int32)
    if not len(ps):
        return labels
    pmin, pmax = ps.min(axis=0), ps.max(axis=0)
    for region, shape in layers:
        lo, hi = shape.bbox_m
        if np.any(lo > pmax) or np.any(hi < pmin):
            continue
        i0, i1 = int(np.searchsorted(xs, lo[0], side="left")), int(np.searchsorted(xs, hi[0], side="right"))
        if i1 <= i0:
            continue
        p = ps[i0:i1]
        keep = None
        for axis in (1, 2):  # only filter along axes the box does not span entirely
            if lo[axis] > pmin[axis] or hi[axis] < pmax[axis]:
                k = (p[:, axis] >= lo[axis]) & (p[:, axis] <= hi[axis])
                keep = k if keep is None else keep & k
        exact = isinstance(shape, Box) and shape.axis_aligned
        if keep is None:
            if exact:
                labels[i0:i1] = region
            else:
                labels[i0:i1][shape.contains(p)] = region
            continue
        idx = np.flatnonzero(keep)
        if len(idx):
            labels[i0 + (idx if exact else idx[shape.contains(p[idx])])] = region
    out = np.empty_like(labels)
    out[order] = labels
    return out
