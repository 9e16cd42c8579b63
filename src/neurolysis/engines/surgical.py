"""Surgical neurectomy: a segment of the target nerve is cut out.

Geometry, not physics: the excised region is the nerve's tube (radius R (1 + margin))
over an arc-length window of ``segment`` centred at the centerline point nearest the
surgical site (the plan's placement tip), clipped to the nerve's ends:

    excised(p) = |p - c(s*)| <= R (1 + margin)  and  |s* - s_0| <= segment / 2,

with c(s*) the nearest point of the centerline (densified to 0.02 mm). Every axon of the
cross-section crosses the window, so all die (neurotmesis, Sunderland 5); the relief
model (``nerve.py``) makes regrowth cross the gap at the slow, tube-less rate. Nothing
else is harmed: other structures are cut only if their tube passes through the window
(a real dissection injures more; not modelled). Outcome and complication rates are
reported from ``data/surgery.toml`` (docs/models/surgical.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy.spatial import cKDTree

from neurolysis._catalog import load_catalog
from neurolysis.anatomy.centreline import nerve_frame
from neurolysis.anatomy.scene import Nerve
from neurolysis.fields import FieldSample, unharmed
from neurolysis.physics.lesion import LesionShape
from neurolysis.validation import check_range

DENSIFY_M = 0.02e-3


def _cat():
    return load_catalog("surgery")


@dataclass(frozen=True, eq=False)
class Excision:
    """A cut-out segment of one nerve (lengths in m; ``to_dict`` in mm)."""

    nerve: str
    segment_m: float  # as planned
    start_m: float  # arc length from the proximal end of the centerline
    end_m: float
    radius_m: float
    clipped: bool  # the planned window ran past an end of the centerline
    _s_m: np.ndarray = field(repr=False)
    _tree: cKDTree = field(repr=False)

    @property
    def removed_length_m(self) -> float:
        return self.end_m - self.start_m

    def sample(self, points_m: np.ndarray) -> FieldSample:
        """``lethal`` inside the excised tube; body temperature and no dose everywhere."""
        pts = np.asarray(points_m, float).reshape(-1, 3)
        reach = self.radius_m * (1.0 + float(_cat()["tube_margin"])) + DENSIFY_M
        # points beyond the reach cannot be cut: the bound stops their search early (inf, index n)
        dist, idx = self._tree.query(pts, k=1, distance_upper_bound=np.nextafter(reach, np.inf))
        near = dist <= reach
        s = np.full(len(pts), -np.inf)
        s[near] = self._s_m[idx[near]]
        cut = near & (s >= self.start_m) & (s <= self.end_m)
        return replace(unharmed(pts), lethal=cut)

    def lesion(self) -> LesionShape:
        """The excised cylinder as a lesion (width = nerve diameter, length = segment)."""
        length_mm, width_mm = 1e3 * self.removed_length_m, 2e3 * self.radius_m
        return LesionShape("excised segment", 0.0, width_mm, length_mm, 0.0, 0.0, width_mm * length_mm, np.pi * (width_mm / 2) ** 2 * length_mm)

    def to_dict(self) -> dict:
        cat = _cat()
        return {
            "nerve": self.nerve,
            "segment_mm": 1e3 * self.segment_m,
            "removed_length_mm": 1e3 * self.removed_length_m,
            "start_mm": 1e3 * self.start_m,
            "end_mm": 1e3 * self.end_m,
            "clipped_at_nerve_end": self.clipped,
            "injury": "neurotmesis (Sunderland 5): all axons of the segment cut; the gap delays and can prevent regrowth",
            "outcomes": [dict(o) for o in cat["outcome"]],
            "complications": [dict(c) for c in cat["complication"]],
        }


def plan_excision(nerve: Nerve, site_m: np.ndarray, segment_m: float) -> Excision:
    """The segment of ``nerve`` of length ``segment_m`` centred nearest to ``site_m`` (anatomy frame, m)."""
    segment = check_range("procedure.segment_mm", segment_m * 1e3, 0.0, float(_cat()["segment_max_mm"]), low_inclusive=False, unit="mm") * 1e-3
    frame = nerve_frame(nerve.centerline_m, DENSIFY_M)
    tree = cKDTree(frame.points_m)
    _, i = tree.query(np.asarray(site_m, float).reshape(3), k=1)
    centre = float(frame.s_m[i])
    start, end = centre - segment / 2, centre + segment / 2
    clipped = start < 0.0 or end > frame.length_m
    return Excision(nerve.name, segment, max(start, 0.0), min(end, frame.length_m), nerve.radius_m, clipped, frame.s_m, tree)


__all__ = ["Excision", "plan_excision"]
