"""A nerve's centreline resampled with a transported frame: where its axons run.

Axon i runs along the centerline c(s) offset in a frame (u, w) transported along it
(rotation-minimising, double-reflection method):

    p_i(s) = c(s) + x_i u(s) + y_i w(s),   0 <= s <= L (arc length, proximal -> distal)

Used by the nerve outcome (axon paths), the risk model (nerve tubes), surgery (the excised
segment) and the cryo method (frozen length).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from neurolysis.validation import ValidationError


@dataclass(frozen=True, eq=False)
class NerveFrame:
    """The centerline resampled at cell centres with a transported orthonormal frame.

    ``s_m`` (k,) arc length of each sample from the proximal end; ``points_m``, ``tangent``,
    ``u``, ``w`` (k, 3); ``ds_m`` the cell length; ``length_m`` the centerline length.
    """

    s_m: np.ndarray
    points_m: np.ndarray
    tangent: np.ndarray
    u: np.ndarray
    w: np.ndarray
    ds_m: float
    length_m: float

    def offset_points(self, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
        """Points (k, n, 3) of paths offset by (x_i, y_i) in the (u, w) frame."""
        x = np.asarray(x_m, float)[None, :, None]
        y = np.asarray(y_m, float)[None, :, None]
        return self.points_m[:, None, :] + x * self.u[:, None, :] + y * self.w[:, None, :]


def nerve_frame(centerline_m: np.ndarray, step_m: float) -> NerveFrame:
    """Resample a polyline at cell centres (spacing <= step_m) with a rotation-minimising frame.

    Tangents are interpolated between vertex tangents (mean of adjacent segment
    directions). The normal u is carried by double reflection (Wang W et al., ACM Trans
    Graph 2008;27(1):2), so the frame does not twist about the tangent.
    """
    line = np.asarray(centerline_m, float)
    if not np.all(np.isfinite(line)):
        raise ValidationError("nerve.centerline_m: must be finite numbers")
    seg = np.diff(line, axis=0)
    seg_len = np.linalg.norm(seg, axis=1)
    keep = np.concatenate([[True], seg_len > 1e-12])
    line = line[keep]
    if line.shape[0] < 2:
        raise ValidationError("nerve.centerline_m: must have non-zero length")
    seg = np.diff(line, axis=0)
    seg_len = np.linalg.norm(seg, axis=1)
    seg_dir = seg / seg_len[:, None]
    vert_t = np.empty_like(line)
    vert_t[0], vert_t[-1] = seg_dir[0], seg_dir[-1]
    mid = seg_dir[:-1] + seg_dir[1:]
    mid_norm = np.linalg.norm(mid, axis=1)
    vert_t[1:-1] = np.where(mid_norm[:, None] > 1e-9, mid / np.maximum(mid_norm, 1e-300)[:, None], seg_dir[1:])

    cum = np.concatenate([[0.0], np.cumsum(seg_len)])
    length = float(cum[-1])
    n = max(1, math.ceil(length / step_m - 1e-9))
    ds = length / n
    s = (np.arange(n) + 0.5) * ds
    pts = np.column_stack([np.interp(s, cum, line[:, j]) for j in range(3)])
    tan = np.column_stack([np.interp(s, cum, vert_t[:, j]) for j in range(3)])
    tan /= np.linalg.norm(tan, axis=1)[:, None]

    u = np.empty_like(pts)
    t0 = tan[0]
    helper = np.eye(3)[int(np.argmin(np.abs(t0)))]
    u0 = np.cross(t0, helper)
    u[0] = u0 / np.linalg.norm(u0)
    for k in range(n - 1):
        v1 = pts[k + 1] - pts[k]
        c1 = float(v1 @ v1)
        if c1 < 1e-30:
            u[k + 1] = u[k]
            continue
        r_l = u[k] - (2.0 / c1) * float(v1 @ u[k]) * v1
        t_l = tan[k] - (2.0 / c1) * float(v1 @ tan[k]) * v1
        v2 = tan[k + 1] - t_l
        c2 = float(v2 @ v2)
        r = r_l if c2 < 1e-30 else r_l - (2.0 / c2) * float(v2 @ r_l) * v2
        r = r - float(r @ tan[k + 1]) * tan[k + 1]  # keep exactly orthogonal
        u[k + 1] = r / np.linalg.norm(r)
    w = np.cross(tan, u)
    return NerveFrame(s, pts, tan, u, w, ds, length)
