"""The stimulation test before an RF lesion: sensory and motor thresholds at the generator.

1. **Field.** The RF engine's quasi-static potential for 1 V on the active tip at body
   temperature, before any fluid (``RF3DResult.stimulation_potential``), with the tip's
   conductance G (S): 1 V drives G amperes. Frequency dispersion is ignored (RF conductivities).
2. **Sheath.** The nerve's nearest fascicle (radius a, on the side facing the tip, under the
   epineurium) has a core of uniform potential along which current flows, leaking through the
   perineurium; its potential is the outside potential smoothed by a cable of length constant
   lambda (``data/stimulation.toml [sheath]``)::

       lambda^2 V_in'' - V_in = -<V_out>,   lambda^2 = sigma_endo a t / (2 sigma_peri)

   with <V_out> the mean around the fascicle. A point source in homogeneous tissue, without it,
   gives thresholds several-fold below measured ones (literature-5 1b, 1e).
3. **Fibre.** Thresholds computed ahead by PyFibers on NEURON (``data/stimulation_thresholds.toml``,
   ``scripts/build_stimulation_table.py``) for a point source: the peak extracellular potential
   at threshold, Ve*(d), for a profile of width d. A profile of any shape is read as the point
   source of the same full width at half maximum, d = FWHM / (2 sqrt 3), and fires at
   Ve*(d) / peak(V_in) volts. Its error against direct PyFibers runs on other shapes is in
   ``data/stimulation_surrogate_check.toml``.

One pulse is simulated; the frequency (50 Hz sensory, 2 Hz motor) is reported, not modelled.
Assumptions and valid range: docs/models/stimulation.md.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
from scipy.linalg import solve_banded

from neurolysis._catalog import load_catalog
from neurolysis.anatomy.centreline import nerve_frame
from neurolysis.anatomy.scene import FibreClass, Nerve
from neurolysis.validation import ValidationError

FWHM_PER_DISTANCE = 2.0 * math.sqrt(3.0)
"""Full width at half maximum of a point source's potential along a line at distance d, per d."""

FIBRE_STEP_M = 0.2e-3  # the core profile is smooth over lambda (1-2 mm): 0.1 mm changes the lumbar thresholds by < 0.01 % at twice the cost
FIBRE_EXTENSION_M = 30e-3  # the nerve continues straight beyond its template centreline
RING_POINTS = 8


@dataclass(frozen=True, eq=False)
class FibreTable:
    """Thresholds of one model fibre: ``peak_ve_mv[i, j]`` at ``pulse_ms[i]`` and width ``distance_mm[j]``."""

    key: str
    family: str  # myelinated | small-myelinated | unmyelinated
    diameter_um: float
    pulse_ms: np.ndarray
    distance_mm: np.ndarray
    peak_ve_mv: np.ndarray


@cache
def fibre_tables() -> tuple[FibreTable, ...]:
    out = []
    for key, entry in load_catalog("stimulation_thresholds")["fibre"].items():
        family = "unmyelinated" if not entry["myelinated"] else ("small-myelinated" if key.startswith("small") else "myelinated")
        out.append(FibreTable(key, family, float(entry["diameter_um"]), np.array(entry["pulse_ms"], float),
                              np.array(entry["distance_mm"], float), np.array(entry["peak_ve_mv"], float)))
    return tuple(out)


def test_settings() -> dict:
    return dict(load_catalog("stimulation")["test"])


def _loglog(x: float, xs: np.ndarray, ys: np.ndarray) -> float:
    """ys(x) interpolated linearly in log-log, clamped to the ends."""
    if len(xs) == 1:
        return float(ys[0])
    return float(np.exp(np.interp(math.log(x), np.log(xs), np.log(ys))))


def table_peak_ve_mv(family: str, diameter_um: float, pulse_ms: float, width_mm: float) -> tuple[float, bool]:
    """Peak Ve (mV) at threshold for a fibre of ``family`` and ``diameter_um``, and whether any input
    lay outside the table (then the nearest edge is used)."""
    tables = sorted((t for t in fibre_tables() if t.family == family), key=lambda t: t.diameter_um)
    if not tables:
        raise ValidationError(f"fibre family = {family!r}: one of myelinated, small-myelinated, unmyelinated")
    outside = False

    def at(table: FibreTable) -> float:
        nonlocal outside
        outside |= not (table.distance_mm[0] <= width_mm <= table.distance_mm[-1])
        outside |= not (table.pulse_ms[0] <= pulse_ms <= table.pulse_ms[-1])
        per_pulse = np.array([_loglog(width_mm, table.distance_mm, row) for row in table.peak_ve_mv])
        return _loglog(pulse_ms, table.pulse_ms, per_pulse)

    diameters = np.array([t.diameter_um for t in tables])
    outside |= not (diameters[0] <= diameter_um <= diameters[-1])
    values = np.array([at(t) for t in tables])
    if len(tables) == 1:
        return float(values[0]), outside
    return float(np.exp(np.interp(diameter_um, diameters, np.log(values)))), outside


def equivalent_width_mm(arc_mm: np.ndarray, profile: np.ndarray) -> float:
    """d = FWHM / (2 sqrt 3) of |profile| along ``arc_mm``: the distance of the point source of the same width.

    A side that never falls to half within the fibre takes the other side's half width.
    """
    v = np.abs(np.asarray(profile, float))
    peak = int(np.argmax(v))
    half = 0.5 * v[peak]

    def half_width(indices: np.ndarray) -> float | None:
        below = indices[v[indices] < half]
        if len(below) == 0:
            return None
        j = below[0]
        k = j - 1 if j > peak else j + 1
        frac = (v[k] - half) / (v[k] - v[j])
        return abs(arc_mm[k] + frac * (arc_mm[j] - arc_mm[k]) - arc_mm[peak])

    right = half_width(np.arange(peak + 1, len(v)))
    left = half_width(np.arange(peak - 1, -1, -1))
    sides = [w for w in (left, right) if w is not None]
    if not sides:
        return float((arc_mm[-1] - arc_mm[0]) / FWHM_PER_DISTANCE)
    return float(2.0 * sum(sides) / len(sides) / FWHM_PER_DISTANCE)


def surrogate_threshold(arc_mm, ve_mv, fibre_key: str, pulse_ms: float) -> float:
    """Amplitude factor at which the profile ``ve_mv`` (per unit amplitude) fires the table fibre ``fibre_key``."""
    table = next((t for t in fibre_tables() if t.key == fibre_key), None)
    if table is None:
        raise ValidationError(f"fibre = {fibre_key!r}: one of {', '.join(t.key for t in fibre_tables())}")
    arc, ve = np.asarray(arc_mm, float), np.asarray(ve_mv, float)
    peak_ve, _ = table_peak_ve_mv(table.family, table.diameter_um, pulse_ms, equivalent_width_mm(arc, ve))
    return peak_ve / float(np.max(np.abs(ve)))


@cache
def sheath() -> dict:
    return dict(load_catalog("stimulation")["sheath"])


def fascicle_radius_m(nerve_radius_m: float) -> float:
    return min(nerve_radius_m, sheath()["fascicle_radius_mm"] * 1e-3)


def sheath_length_constant_m(fascicle_radius: float) -> float:
    """lambda = sqrt(sigma_endo a t / (2 sigma_peri)), t = fraction x 2a (m)."""
    s = sheath()
    thickness = s["perineurium_thickness_fraction"] * 2.0 * fascicle_radius
    return math.sqrt(s["endoneurium_longitudinal_s_m"] * fascicle_radius * thickness * s["perineurium_resistivity_ohm_m"] / 2.0)


def core_potential(step_m: float, outside: np.ndarray, length_constant_m: float) -> np.ndarray:
    """V_in with lambda^2 V_in'' - V_in = -V_out on a uniform grid, sealed (zero-flux) ends."""
    n = len(outside)
    r = (length_constant_m / step_m) ** 2
    band = np.zeros((3, n))
    band[0, 1:] = -r
    band[2, :-1] = -r
    band[1] = 1.0 + 2.0 * r
    band[1, [0, -1]] = 1.0 + r
    return solve_banded((1, 1), band, np.asarray(outside, float))


@dataclass(frozen=True)
class NerveThreshold:
    """The lowest threshold of one nerve's fibres of a role (sensory: touch and pain; motor)."""

    nerve: str
    role: str
    fibre_class: str
    diameter_um: float
    threshold_v: float
    threshold_ma: float
    distance_mm: float  # tip to the nerve's surface (0 inside it)
    width_mm: float  # the core profile's equivalent point-source distance
    outside_table: bool

    def as_dict(self) -> dict:
        return {"nerve": self.nerve, "role": self.role, "fibre_class": self.fibre_class, "diameter_um": self.diameter_um,
                "threshold_v": round(self.threshold_v, 4), "threshold_ma": round(self.threshold_ma, 4),
                "distance_mm": round(self.distance_mm, 3), "width_mm": round(self.width_mm, 3), "outside_table": self.outside_table}


@lru_cache(maxsize=32)
def _extended_frame(nerve: Nerve):
    """The nerve's centreline continued straight beyond both ends, framed (one per nerve: a cohort reuses it)."""
    line = np.asarray(nerve.centerline_m, float)
    start_dir = (line[0] - line[1]) / np.linalg.norm(line[0] - line[1])
    end_dir = (line[-1] - line[-2]) / np.linalg.norm(line[-1] - line[-2])
    extended = np.vstack([line[0] + start_dir * FIBRE_EXTENSION_M, line, line[-1] + end_dir * FIBRE_EXTENSION_M])
    return nerve_frame(extended, FIBRE_STEP_M)


def _fibre_path(nerve: Nerve, tip_m: np.ndarray):
    """The nearest fascicle's axis (k, 3), its sheath ring (k, RING_POINTS, 3), the grid step and the tip's distance to the nerve surface."""
    frame = _extended_frame(nerve)
    nearest = int(np.argmin(np.linalg.norm(frame.points_m - tip_m, axis=1)))
    to_tip = tip_m - frame.points_m[nearest]
    distance = float(np.linalg.norm(to_tip))
    x, y = float(to_tip @ frame.u[nearest]), float(to_tip @ frame.w[nearest])
    radial = math.hypot(x, y)
    a = fascicle_radius_m(nerve.radius_m)
    shift = nerve.radius_m - a
    cx, cy = (shift * x / radial, shift * y / radial) if radial > 1e-12 else (0.0, 0.0)
    angles = np.linspace(0.0, 2 * math.pi, RING_POINTS, endpoint=False)
    ring = frame.offset_points(cx + a * np.cos(angles), cy + a * np.sin(angles))
    return frame.offset_points([cx], [cy])[:, 0], ring, frame.ds_m, max(0.0, distance - nerve.radius_m) * 1e3


def fibre_classes(nerve: Nerve, role: str) -> tuple[FibreClass, ...]:
    roles = ("motor",) if role == "motor" else ("touch", "pain")
    return tuple(f for f in nerve.fibres if f.role in roles)


def nerve_thresholds(potential_at: Callable[[np.ndarray], np.ndarray], conductance_s: float, nerve: Nerve,
                     tip_m: np.ndarray, roles: Sequence[str], pulse_ms: float) -> dict[str, NerveThreshold | None]:
    """Per role, the lowest threshold (V and mA at the generator) of ``nerve``'s fibres of that role
    (None: it has none); the nerve's core potential is sampled once for all roles.

    ``potential_at(points (n, 3) m)`` is the potential (V) for 1 V on the electrode.
    """
    classes = {role: fibre_classes(nerve, role) for role in roles}
    if not any(classes.values()):
        return dict.fromkeys(roles)
    _, ring, step, distance_mm = _fibre_path(nerve, np.asarray(tip_m, float))
    outside = potential_at(ring.reshape(-1, 3)).reshape(ring.shape[:2]).mean(axis=1)
    core = core_potential(step, outside, sheath_length_constant_m(fascicle_radius_m(nerve.radius_m)))
    peak = float(np.max(np.abs(core)))
    width = equivalent_width_mm(np.arange(len(core)) * step * 1e3, core)
    family_of = load_catalog("stimulation")["fibre_models"]
    out = {}
    for role, fibres in classes.items():
        best = None
        for fibre in fibres:
            ve_mv, outside_table = table_peak_ve_mv(family_of[fibre.name], fibre.diameter_um, pulse_ms, width)
            volts = ve_mv * 1e-3 / max(peak, 1e-30)
            if best is None or volts < best.threshold_v:
                best = NerveThreshold(nerve.name, role, fibre.name, fibre.diameter_um, volts, volts * conductance_s * 1e3, distance_mm, width, outside_table)
        out[role] = best
    return out


def nerve_threshold(potential_at: Callable[[np.ndarray], np.ndarray], conductance_s: float, nerve: Nerve,
                    tip_m: np.ndarray, role: str, pulse_ms: float) -> NerveThreshold | None:
    """The lowest threshold of ``nerve``'s fibres of one ``role`` (:func:`nerve_thresholds`)."""
    return nerve_thresholds(potential_at, conductance_s, nerve, tip_m, (role,), pulse_ms)[role]


@dataclass(frozen=True)
class StimulationTest:
    """Sensory (target nerve) and motor (nearest motor nerve or root) thresholds of one needle."""

    pulse_ms: float
    sensory: NerveThreshold | None
    motor: NerveThreshold | None  # the lowest over the motor nerves and roots of the anatomy
    target_motor: NerveThreshold | None  # the target's own motor fibres (a mixed nerve's muscle)
    nerves: tuple[NerveThreshold, ...]
    impedance_ohm: float
    wall_time_s: float

    @property
    def sensory_ok(self) -> bool:
        return self.sensory is not None and self.sensory.threshold_v < test_settings()["sensory_cutoff_v"]

    @property
    def motor_ok(self) -> bool:
        if self.motor is None:
            return True
        floor = test_settings()["motor_multiple"] * (self.sensory.threshold_v if self.sensory else 0.0)
        return self.motor.threshold_v >= floor

    def warnings(self) -> list[str]:
        t, out = test_settings(), []
        if self.sensory is not None and not self.sensory_ok:
            out.append(f"SENSORY: {self.sensory.nerve} is felt at {self.sensory.threshold_v:.2f} V, above the {t['sensory_cutoff_v']:g} V cut-off: the tip is {self.sensory.distance_mm:.1f} mm from the nerve")
        if not self.motor_ok:
            out.append(f"MOTOR: {self.motor.nerve} responds at {self.motor.threshold_v:.2f} V, under {t['motor_multiple']:g} x the sensory threshold: the tip is {self.motor.distance_mm:.1f} mm from a motor nerve or root; do not lesion")
        return out

    def verdict(self) -> str:
        if self.sensory is None:
            return "no sensory fibres in the target nerve"
        t = test_settings()
        head = (f"sensory {self.sensory.threshold_v:.2f} V {'<' if self.sensory_ok else '>='} {t['sensory_cutoff_v']:g} V"
                f" ({'at the nerve' if self.sensory_ok else 'too far from the nerve'})")
        if self.motor is None:
            return head + "; no motor nerve or root in the anatomy"
        return head + (f"; motor {self.motor.threshold_v:.2f} V at {self.motor.nerve}"
                       f" {'>=' if self.motor_ok else '<'} {t['motor_multiple']:g} x sensory"
                       f" ({'no twitch below it' if self.motor_ok else 'twitch: too close to a motor nerve'})")

    def to_dict(self) -> dict:
        t = test_settings()

        def value(threshold, key):
            return None if threshold is None else round(getattr(threshold, key), 4)

        return {
            "sensory_threshold_v": value(self.sensory, "threshold_v"),
            "sensory_threshold_ma": value(self.sensory, "threshold_ma"),
            "sensory_nerve": None if self.sensory is None else self.sensory.nerve,
            "motor_threshold_v": value(self.motor, "threshold_v"),
            "motor_threshold_ma": value(self.motor, "threshold_ma"),
            "motor_nerve": None if self.motor is None else self.motor.nerve,
            "target_motor_threshold_v": value(self.target_motor, "threshold_v"),
            "distance_mm": value(self.sensory, "distance_mm"),
            "pulse_ms": self.pulse_ms,
            "sensory_frequency_hz": t["sensory_frequency_hz"],
            "motor_frequency_hz": t["motor_frequency_hz"],
            "sensory_cutoff_v": t["sensory_cutoff_v"],
            "motor_multiple": t["motor_multiple"],
            "sensory_ok": self.sensory_ok,
            "motor_ok": self.motor_ok,
            "verdict": self.verdict(),
            "warnings": self.warnings(),
            "impedance_ohm": round(self.impedance_ohm, 1),
            "nerves": [n.as_dict() for n in self.nerves],
            "wall_time_s": round(self.wall_time_s, 3),
        }


def stimulation_test(potential_at: Callable[[np.ndarray], np.ndarray], conductance_s: float, target: Nerve,
                     motor_nerves: Sequence[Nerve], tip_m: np.ndarray, pulse_ms: float | None = None) -> StimulationTest:
    """The sensory threshold of ``target`` and the motor thresholds of ``motor_nerves`` for one needle tip."""
    started = time.perf_counter()
    pulse = test_settings()["pulse_ms"] if pulse_ms is None else pulse_ms
    own = nerve_thresholds(potential_at, conductance_s, target, tip_m, ("sensory", "motor"), pulse)
    sensory, target_motor = own["sensory"], own["motor"]
    motors = [m for m in (nerve_threshold(potential_at, conductance_s, n, tip_m, "motor", pulse) for n in motor_nerves) if m is not None]
    motor = min(motors, key=lambda m: m.threshold_v, default=None)
    nerves = tuple(x for x in (sensory, target_motor, *motors) if x is not None)
    return StimulationTest(pulse, sensory, motor, target_motor, nerves, 1.0 / conductance_s, time.perf_counter() - started)
