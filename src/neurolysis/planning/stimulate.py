"""The stimulation test of a plan's needle: its thresholds, their spread over the placement
cohort, and the scan of thresholds against needle offset (``neurolysis stimulate``).

The physics is :mod:`neurolysis.engines.stimulation`; here the anatomy picks the nerves: the
target's sensory fibres, and the motor fibres of every motor nerve or root the anatomy names as
a critical structure (a limb twitch), besides the target's own (a mixed nerve's muscle).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from neurolysis.anatomy.centreline import nerve_frame
from neurolysis.anatomy.scene import Nerve, Scene
from neurolysis.engines.poses import tissue_at
from neurolysis.engines.rf.engine3d import StimulationField, stimulation_field
from neurolysis.engines.stimulation import StimulationTest, stimulation_test, test_settings
from neurolysis.fields import NeedlePose
from neurolysis.outcome.uncertainty import moved_frame
from neurolysis.validation import ValidationError, check_range

PULSE_LIMITS_MS = (0.05, 3.0)
"""Pulse widths the threshold table covers with its edges (0.1-1 ms) and a little beyond."""


def check_pulse_ms(value) -> float:
    return check_range("pulse_ms", value, *PULSE_LIMITS_MS, unit="ms")


def motor_nerves(scene: Scene, target: Nerve) -> tuple[Nerve, ...]:
    """The motor nerves and roots the anatomy names as critical structures (not the target)."""
    names = {c.nerve for c in scene.critical if c.kind == "motor-nerve" and c.nerve}
    return tuple(n for n in scene.nerves if n.name in names and n.name != target.name)


def needle_test(scene: Scene, target: Nerve, field: StimulationField, pose: NeedlePose, pulse_ms: float | None = None,
                frame=None) -> StimulationTest:
    """Thresholds of one needle at ``pose`` (``frame``: the field moved there rigidly)."""
    test = stimulation_test(lambda points: field.potential(points, frame), field.conductance_s, target,
                            motor_nerves(scene, target), pose.tip_m, pulse_ms)
    return test if frame is not None else replace(test, wall_time_s=test.wall_time_s + field.solve_s)


def cohort_stimulation(scene: Scene, target: Nerve, field: StimulationField, planned: NeedlePose,
                       poses: Sequence[NeedlePose], pulse_ms: float | None = None) -> dict:
    """The thresholds' spread over the placement cohort: the planned field moved rigidly with each
    sample (as the lesion is), and P(sensory threshold below the cut-off)."""
    started = time.perf_counter()
    tests = [needle_test(scene, target, field, pose, pulse_ms, moved_frame(field.frame, planned, pose)) for pose in poses]
    sensory = np.array([t.sensory.threshold_v if t.sensory else np.nan for t in tests])
    motor = np.array([t.motor.threshold_v if t.motor else np.nan for t in tests])
    cutoff = test_settings()["sensory_cutoff_v"]

    def spread(values):
        values = values[np.isfinite(values)]
        if not values.size:
            return None
        p10, med, p90 = np.percentile(values, [10, 50, 90])
        return {"median": round(float(med), 4), "p10": round(float(p10), 4), "p90": round(float(p90), 4)}

    return {
        "sensory_threshold_v": spread(sensory),
        "motor_threshold_v": spread(motor),
        "p_sensory_below_cutoff": round(float(np.mean(sensory < cutoff)), 4),
        "p_motor_warning": round(float(np.mean([not t.motor_ok for t in tests])), 4),
        "sensory_cutoff_v": cutoff,
        "note": "the planned stimulation field moved rigidly with each sampled needle (as the lesion fields are)",
        "wall_time_s": round(time.perf_counter() - started, 3),
    }


@dataclass(frozen=True)
class OffsetRow:
    """Thresholds with the needle moved ``along_mm`` along the nerve and ``across_mm`` away from it."""

    along_mm: float
    across_mm: float
    test: StimulationTest | None  # None: the moved tip is in bone
    tip_mm: tuple[float, float, float]

    def as_dict(self) -> dict:
        t = self.test
        row = {"along_mm": self.along_mm, "across_mm": self.across_mm, "tip_mm": [round(v, 2) for v in self.tip_mm]}
        if t is None:
            return row | {"in_bone": True}
        return row | {
            "distance_mm": round(t.sensory.distance_mm, 3) if t.sensory else None,
            "sensory_threshold_v": round(t.sensory.threshold_v, 4) if t.sensory else None,
            "sensory_threshold_ma": round(t.sensory.threshold_ma, 4) if t.sensory else None,
            "motor_threshold_v": round(t.motor.threshold_v, 4) if t.motor else None,
            "motor_threshold_ma": round(t.motor.threshold_ma, 4) if t.motor else None,
            "motor_nerve": t.motor.nerve if t.motor else None,
            "motor_distance_mm": round(t.motor.distance_mm, 3) if t.motor else None,
            "sensory_ok": t.sensory_ok,
            "motor_ok": t.motor_ok,
        }


def offset_directions(nerve: Nerve, pose: NeedlePose) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors along the nerve at its point nearest the tip, and across it (away from the nerve, in the
    plane normal to it; the needle's own direction crossed with the nerve when the tip sits on its axis)."""
    frame = nerve_frame(nerve.centerline_m, 0.1e-3)
    k = int(np.argmin(np.linalg.norm(frame.points_m - pose.tip_m, axis=1)))
    along = frame.tangent[k]
    away = pose.tip_m - frame.points_m[k]
    away = away - (away @ along) * along
    if np.linalg.norm(away) < 1e-6:
        away = np.cross(pose.direction, along)
    return along, away / np.linalg.norm(away)


def offset_scan(ctx, along_mm: Sequence[float], across_mm: Sequence[float], pulse_ms: float | None = None) -> list[OffsetRow]:
    """Thresholds at each offset of the planned needle (moved without turning), each field solved anew
    in the anatomy at the moved pose; offsets whose tip lies in bone are reported, not solved."""
    along_dir, across_dir = offset_directions(ctx.nerve, ctx.pose)
    rows = []
    for a in along_mm:
        for c in across_mm:
            tip = ctx.pose.tip_m + (a * along_dir + c * across_dir) * 1e-3
            pose = NeedlePose(tip, ctx.pose.direction)
            in_bone = tissue_at(ctx.scene, tip[None, :], "muscle")[0] == "bone"
            test = None if in_bone else needle_test(ctx.scene, ctx.nerve, stimulation_field(ctx.settings, pose, ctx.scene), pose, pulse_ms)
            rows.append(OffsetRow(float(a), float(c), test, tuple(float(v) for v in tip * 1e3)))
    return rows


def parse_offsets(field: str, text: str) -> tuple[float, ...]:
    """``"0,1,2.5"`` -> (0.0, 1.0, 2.5) mm, each within +-20 mm."""
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValidationError(f"{field} = {text!r}: must be comma-separated numbers (mm), e.g. 0,1,2,3,5") from None
    if not values:
        raise ValidationError(f"{field} = {text!r}: give at least one offset (mm)")
    return tuple(check_range(field, v, -20.0, 20.0, unit="mm") for v in values)
