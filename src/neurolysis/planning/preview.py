"""An instant answer for a plan's needle while it is moved: the tabulated RF lesion placed at the
pose, the share of the target's pain fibres it reaches, and the critical structures it touches.

The lesion is :func:`~neurolysis.engines.rf.lesion_table.instant_lesion` (verified axisymmetric
solves interpolated; its stated error in docs/models/rf.md), in the tissue at the tip, placed
as the ellipsoid of its width and length along the needle: from ``distal_mm`` beyond the apex to
``proximal_mm`` behind the active tip. Homogeneous tissue is assumed around the needle: bone,
vessels and tissue boundaries, which the 3D solve sees, are not (the preview is a screen; the
full solve is one request away). Settings outside the table give ``in_range: false`` and no
lesion. What the answer reads is cached per anatomy and nerve, so that a dragged needle costs
only the geometry (docs/benchmarks.md, "Instant lesion").
"""

from __future__ import annotations

import time

import numpy as np

from neurolysis.about import DISCLAIMER
from neurolysis.anatomy.centreline import nerve_frame
from neurolysis.anatomy.scene import Nerve, Scene
from neurolysis.engines.rf.lesion_table import instant_lesion
from neurolysis.outcome.axons import axon_population
from neurolysis.outcome.risk import structure_points
from neurolysis.planning.simulate import prepare

AXON_STEP_M = 0.25e-3
STRUCTURE_SPACING_M = 1.0e-3
RF_METHODS = ("rf", "cooled-rf", "pulsed-rf")


_CACHE: dict[tuple, object] = {}
_CACHE_LIMIT = 64


def _scene_key(scene: Scene) -> tuple:
    """A template is rebuilt by every ``prepare``; its name (and a scan's file hashes) name it."""
    return (scene.name, tuple(sorted(scene.files_sha256.items())))


def _cached(key: tuple, build):
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = build()
    return _CACHE[key]


def _axon_points(scene: Scene, nerve_name: str, n_axons: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points (k, n, 3) along each modelled axon of the nerve, and its pain and motor masks."""

    def build():
        nerve: Nerve = scene.nerve(nerve_name)
        population = axon_population(nerve, n_axons, seed)
        points = nerve_frame(nerve.centerline_m, AXON_STEP_M).offset_points(population.x_m, population.y_m)
        return points, population.role == "pain", population.role == "motor"

    return _cached(("axons", _scene_key(scene), nerve_name, n_axons, seed), build)


def _structures(scene: Scene) -> tuple[tuple[str, str, np.ndarray], ...]:
    """Each critical structure's points over the whole anatomy at 1 mm (and its nerve tube)."""

    def build():
        lo, hi = (np.asarray(b, float) for b in scene.bounds_m)
        where = structure_points(scene, lo, hi, STRUCTURE_SPACING_M)
        return tuple((s.name, s.kind, where.points[where.index[k]]) for k, s in enumerate(scene.critical))

    return _cached(("structures", _scene_key(scene)), build)


def _inside(points: np.ndarray, centre: np.ndarray, axis: np.ndarray, radial_m: float, axial_m: float) -> np.ndarray:
    d = points - centre
    along = d @ axis
    across2 = np.einsum("...j,...j->...", d, d) - along**2
    return across2 / radial_m**2 + along**2 / axial_m**2 <= 1.0


def preview_context(ctx) -> dict:
    """The instant answer for a prepared plan (``planning.simulate.prepare``), first needle."""
    started = time.perf_counter()
    pose = ctx.pose
    head = {"method": ctx.plan.procedure.method, "placement": {"tip_mm": [round(float(v) * 1e3, 4) for v in pose.tip_m], "direction": [round(float(v), 6) for v in pose.direction]},
            "full_solve": "POST /api/simulate (or neurolysis simulate): the 3D solve in the anatomy", "disclaimer": DISCLAIMER}  # fmt: skip
    if ctx.plan.procedure.method not in RF_METHODS:
        return head | {"in_range": False, "reason": f"method {ctx.plan.procedure.method!r}: the instant lesion is tabulated for RF only", "lesion": None, "target": None,
                       "critical": None, "wall_time_s": time.perf_counter() - started}  # fmt: skip
    lesion = instant_lesion(ctx.settings)
    if not lesion.in_range:
        return head | {"in_range": False, "reason": lesion.reason, "lesion": lesion.as_dict(), "target": None, "critical": None, "wall_time_s": time.perf_counter() - started}
    axis = -np.asarray(pose.direction, float)  # apex -> hub, the engine's +z
    tip_len_mm = float(ctx.settings.tip_mm)
    z_centre_mm = 0.5 * (tip_len_mm + lesion.proximal_mm - lesion.distal_mm)
    centre = pose.tip_m + axis * z_centre_mm * 1e-3
    radial, axial = 0.5 * lesion.width_mm * 1e-3, 0.5 * lesion.length_mm * 1e-3
    points, pain, motor = _axon_points(ctx.scene, ctx.nerve.name, ctx.plan.simulation.n_axons, ctx.plan.simulation.seed)
    reached = _inside(points, centre, axis, radial, axial).any(axis=0)
    touched = [{"name": name, "kind": kind, "touched": bool(len(pts) and _inside(pts, centre, axis, radial, axial).any())}
               for name, kind, pts in _structures(ctx.scene)]  # fmt: skip
    return head | {
        "in_range": True,
        "reason": lesion.reason,
        "lesion": lesion.as_dict() | {"centre_mm": [round(float(v) * 1e3, 3) for v in centre], "shape": "ellipsoid of the width and length along the needle"},
        "target": {"nerve": ctx.nerve.name, "pain_fibres_reached_fraction": round(float(reached[pain].mean()) if pain.any() else 0.0, 4),
                   "motor_fibres_reached_fraction": round(float(reached[motor].mean()), 4) if motor.any() else None},
        "critical": touched,
        "wall_time_s": time.perf_counter() - started,
    }  # fmt: skip


def preview(plan) -> dict:
    """The instant answer for ``plan`` (validated as ``simulate`` validates it)."""
    return preview_context(prepare(plan))
