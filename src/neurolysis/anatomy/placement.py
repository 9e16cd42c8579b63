"""Recommended needle poses derived from a nerve's centerline (templates and label maps).

``parallel``: the needle lies alongside the nerve, its active tip centred on the target
point and its surface touching the nerve (axis offset = nerve radius + needle radius),
as in Lau, Mercer, Govind, Bogduk, Pain Med 2004;5(3):289 (electrode parallel to the
medial branch, inserted obliquely from below). ``perpendicular``: the needle points at
the nerve across its course, its tip touching the nerve surface.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from neurolysis.fields import NeedlePose
from neurolysis.validation import ValidationError, check_choice

from .scene import APPROACHES, Nerve

DEFAULT_TIP_LENGTH_M = 10e-3
"""Active tip of the default conventional electrode (18 G, 10 mm; data/devices.toml)."""
DEFAULT_NEEDLE_RADIUS_M = 0.635e-3
"""18 G outer radius, 1.27 mm / 2 (data/devices.toml gauge table)."""
PATH_STEP_M = 0.5e-3
MAX_PATH_M = 150e-3


def point_and_tangent(nerve: Nerve, at: float = 0.5, span_m: float = DEFAULT_TIP_LENGTH_M) -> tuple[np.ndarray, np.ndarray]:
    """The point at fraction ``at`` of the nerve's length and the unit tangent there
    (proximal -> distal), taken as the chord over ``span_m`` centred on the point."""
    if not 0.0 <= at <= 1.0:
        raise ValidationError(f"placement.at = {at}: allowed range is [0, 1] (fraction of the nerve's length)")
    line = nerve.centerline_m
    seg = np.linalg.norm(np.diff(line, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])

    def point(arc: float) -> np.ndarray:
        return np.array([np.interp(arc, s, line[:, i]) for i in range(3)])

    total = s[-1]
    mid = at * total
    half = 0.5 * min(span_m, total)
    lo, hi = max(0.0, mid - half), min(total, mid + half)
    if hi - lo < half:  # near an end: keep the chord length
        lo, hi = (0.0, 2 * half) if lo == 0.0 else (total - 2 * half, total)
    chord = point(hi) - point(lo)
    return point(mid), chord / np.linalg.norm(chord)


def _perp(v: np.ndarray, t: np.ndarray) -> np.ndarray | None:
    w = np.asarray(v, float) - np.dot(v, t) * t
    n = float(np.linalg.norm(w))
    return None if n < 1e-9 else w / n


def needle_path(pose: NeedlePose, length_m: float, step_m: float = PATH_STEP_M) -> np.ndarray:
    """Points along the needle axis from the tip back toward the hub, ``length_m`` long."""
    s = np.arange(0.0, length_m + 0.5 * step_m, step_m)
    return pose.tip_m - s[:, None] * pose.direction


def _path_in_bounds(pose: NeedlePose, bounds_m) -> np.ndarray:
    pts = needle_path(pose, MAX_PATH_M)
    lo, hi = bounds_m
    inside = np.all((pts >= lo) & (pts <= hi), axis=1)
    n = len(inside) if inside.all() else int(np.argmin(inside))
    return pts[: max(n, 1)]


def recommended_pose(
    nerve: Nerve,
    approach: str,
    *,
    at: float = 0.5,
    toward: Sequence[float] | None = None,
    side: Sequence[float] | None = None,
    tip_length_m: float = DEFAULT_TIP_LENGTH_M,
    needle_radius_m: float = DEFAULT_NEEDLE_RADIUS_M,
    label_at: Callable[[np.ndarray], np.ndarray] | None = None,
    bounds_m: tuple[np.ndarray, np.ndarray] | None = None,
    blocked: Sequence[int] = (),
    avoid: Sequence[int] = (),
    n_angles: int = 24,
) -> NeedlePose:
    """The ``approach`` pose for ``nerve`` at fraction ``at`` of its length.

    ``toward`` is a rough hub -> tip direction (the side the needle comes from) and
    ``side`` the direction from the nerve to a parallel needle's axis; both are made
    perpendicular to (perpendicular: ``toward``) or chosen along (parallel) the tangent.
    Without them, candidate directions around the nerve are scored along the needle path
    inside ``bounds_m`` with ``label_at``: fewest points in ``blocked`` regions (bone),
    then in ``avoid`` regions (critical), then the shortest path to the boundary.
    """
    check_choice("placement.approach", approach, APPROACHES)
    c, t = point_and_tangent(nerve, at, tip_length_m)
    angles = np.linspace(0.0, 2 * np.pi, n_angles, endpoint=False)
    u = _perp(np.array([1.0, 0.0, 0.0]) if abs(t[0]) < 0.9 else np.array([0.0, 1.0, 0.0]), t)
    ring = [np.cos(a) * u + np.sin(a) * np.cross(t, u) for a in angles]
    toward = None if toward is None else np.asarray(toward, float)
    if approach == "parallel":
        if toward is not None:
            dirs = [t if float(t @ toward) >= 0 else -t]
        else:
            dirs = [t, -t]
        sides = [_perp(np.asarray(side, float), t)] if side is not None else ring
        if any(s is None for s in sides):
            raise ValidationError(f"placement.side = {[float(v) for v in side]}: must not be parallel to the nerve")
        offset = nerve.radius_m + needle_radius_m
        candidates = [NeedlePose(c + offset * s + 0.5 * tip_length_m * d, d) for d in dirs for s in sides]
    else:
        if toward is not None:
            d = _perp(toward, t)
            if d is None:
                raise ValidationError(f"placement.toward = {[float(v) for v in toward]}: must not be parallel to the nerve for a perpendicular approach")
            dirs = [d]
        else:
            dirs = [-s for s in ring]
        candidates = [NeedlePose(c - nerve.radius_m * d, d) for d in dirs]
    if len(candidates) == 1:
        return candidates[0]
    if label_at is None or bounds_m is None:
        raise ValidationError(f"placement for {nerve.name!r}: give toward/side, or a scene to choose the approach side from")
    blocked, avoid = np.asarray(blocked, int), np.asarray(avoid, int)

    def score(pose: NeedlePose):
        pts = _path_in_bounds(pose, bounds_m)
        labels = np.asarray(label_at(pts))
        return (int(np.isin(labels, blocked).sum()), int(np.isin(labels, avoid).sum()), len(pts))

    return min(candidates, key=score)
