"""Radiofrequency lesions: conventional, internally cooled and pulsed RF from one needle.

A single straight needle in homogeneous tissue, solved axisymmetrically. Each time step:

1. the quasi-static potential for 1 V on the active tip with sigma(T) of the last step
   (:mod:`neurolysis.physics.electric`);
2. one backward-Euler bioheat step, split into the response without RF and the
   response to the unit Joule heat (:mod:`neurolysis.physics.bioheat`) -- the step is
   linear in V^2, so
3. the generator chooses V^2 for this control interval: the value that brings the tip
   thermocouple to the set-point ramp (conventional, cooled), or the pulse voltage
   unless that would push the thermocouple over its limit (pulsed), always within the
   generator's power and voltage limits (see :func:`controller_voltage`);
4. Omega, CEM43 and the peak temperature are accumulated at every node.

Assumptions and valid range are listed in docs/models/rf.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

from neurolysis import devices as catalog
from neurolysis.fields import BODY_TEMP_C
from neurolysis.lesion import LesionShape, measure_lesion
from neurolysis.physics.bioheat import HeatProblem, perfusion_exchange
from neurolysis.physics.damage import DamageAccumulator, arrhenius, arrhenius_sets, catalog_thresholds
from neurolysis.physics.electric import UnitPotential
from neurolysis.physics.fem import TWO_PI, element_geometry, unit_stiffness_entries
from neurolysis.physics.mesh import MeshSpec, NeedleGeometry, NeedleMesh, Region, build_needle_mesh
from neurolysis.tissue import Tissue, load_tissue, tissue_ids
from neurolysis.validation import ValidationError, check_choice, check_number, check_range

DISCLAIMER = "research and education tool, not for clinical decisions"
WATER_NUSSELT_LAMINAR = 4.36
"""Fully developed laminar flow, constant wall heat flux (Incropera, Fundamentals of Heat
and Mass Transfer, 6th ed., eq. 8.53): h = Nu k_water / D of the coolant channel."""

MESH_TOLERANCE_MM = 0.1
"""Verified bound (mm) on the error of lesion width and length at the default mesh and time
step: against one halving of both and against a converged solution (h = 0.05 mm)
(tests/verification/test_rf_engine.py)."""

FIELD_DISTANCES_MM = (0.5, 1.0, 2.0)
GROWTH_INTERVAL_S = 10.0
"""Lesion (Arrhenius) size is also recorded every GROWTH_INTERVAL_S, as bench studies
photograph it (Provenzano 2015 measured every 10 s)."""
PULSE_SUBSTEPS = 5
"""Pulsed RF: implicit steps per pulse; the off time is stepped geometrically from there."""
PULSED_REFRESH_S = 1.0
"""Pulsed RF: interval (s) at which temperature-dependent properties and the potential are
renewed; the temperature is resolved within every pulse regardless."""


@dataclass(frozen=True)
class RFSettings:
    """Inputs of an RF lesion simulation, in user units (mm, C, s, mL/min, V).

    ``None`` means "the device's or generator's default" (see :meth:`resolved`).
    """

    mode: str = "conventional"
    gauge: int | None = None
    tip_mm: float | None = None
    set_temp_c: float | None = None
    time_s: float | None = None
    ramp_s: float | None = None
    tissue: str = "muscle"
    ex_vivo: bool = False
    initial_temp_c: float | None = None
    damage_model: str | None = None
    coolant_temp_c: float | None = None
    coolant_flow_ml_min: float | None = None
    pulse_voltage_v: float | None = None
    pulse_frequency_hz: float | None = None
    pulse_width_ms: float | None = None
    pulse_temp_limit_c: float | None = None
    max_power_w: float | None = None
    h_fine_mm: float = 0.2
    dt_s: float = 1.0
    domain_mm: float = 60.0

    def __post_init__(self) -> None:
        check_choice("mode", self.mode, catalog.MODES)
        check_choice("tissue", self.tissue, tissue_ids())
        if self.gauge is not None:
            gauges = sorted(catalog.gauge_outer_diameters_mm())
            if check_number("gauge", self.gauge) != int(self.gauge):
                raise ValidationError(f"gauge = {self.gauge}: must be a whole number; allowed values are {', '.join(map(str, gauges))}")
            check_choice("gauge", int(self.gauge), gauges)
        gen = catalog.generator()
        optional_ranges = {
            "tip_mm": (2.0, 30.0, "mm"),
            "set_temp_c": (40.0, gen.temp_limit_c, "C"),
            "time_s": (1.0, 1800.0, "s"),
            "ramp_s": (0.0, 120.0, "s"),
            "initial_temp_c": (0.0, 45.0, "C"),
            "coolant_temp_c": (0.0, 40.0, "C"),
            "coolant_flow_ml_min": (1.0, 500.0, "mL/min"),
            "pulse_voltage_v": (1.0, gen.max_voltage_v, "V"),
            "pulse_frequency_hz": (0.5, 20.0, "Hz"),
            "pulse_width_ms": (1.0, 200.0, "ms"),
            "pulse_temp_limit_c": (37.0, 50.0, "C"),
            "max_power_w": (1.0, gen.max_power_w, "W"),
        }
        for name, (low, high, unit) in optional_ranges.items():
            value = getattr(self, name)
            if value is not None:
                check_range(name, value, low, high, unit=unit)
        check_range("h_fine_mm", self.h_fine_mm, 0.02, 1.0, unit="mm")
        check_range("dt_s", self.dt_s, 0.001, 5.0, unit="s")
        check_range("domain_mm", self.domain_mm, 10.0, 500.0, unit="mm")
        if self.damage_model is not None:
            check_choice("damage_model", self.damage_model, sorted(arrhenius_sets()))
        if self.initial_temp_c is not None and not self.ex_vivo:
            raise ValidationError(f"initial_temp_c = {self.initial_temp_c:g} C: only used in ex vivo mode (in vivo tissue starts at {BODY_TEMP_C:g} C)")
        if load_tissue(self.tissue).ex_vivo_only and not self.ex_vivo:
            raise ValidationError(f"tissue = {self.tissue!r}: an ex vivo phantom, allowed only with ex vivo mode (--ex-vivo)")
        if self.mode == "pulsed" and self.set_temp_c is not None:
            raise ValidationError(f"set_temp_c = {self.set_temp_c:g} C: pulsed RF is voltage-driven; use pulse_temp_limit_c for its temperature limit")
        if self.mode != "pulsed":
            for name in ("pulse_voltage_v", "pulse_frequency_hz", "pulse_width_ms", "pulse_temp_limit_c"):
                if getattr(self, name) is not None:
                    raise ValidationError(f"{name} = {getattr(self, name):g}: only used in pulsed mode")
        if self.mode != "cooled":
            for name in ("coolant_temp_c", "coolant_flow_ml_min"):
                if getattr(self, name) is not None:
                    raise ValidationError(f"{name} = {getattr(self, name):g}: only used in cooled mode")
        if self.pulse_width_ms is not None and self.pulse_frequency_hz is not None:
            check_range("pulse_width_ms", self.pulse_width_ms, 1.0, 1000.0 / self.pulse_frequency_hz, high_inclusive=False, unit="ms (shorter than the pulse period)")

    @property
    def device(self) -> catalog.Device:
        """The catalog device of this mode that matches gauge and tip, else the mode's default."""
        matches = [
            d
            for d in catalog.all_devices().values()
            if d.mode == self.mode and (self.gauge is None or d.gauge == self.gauge) and (self.tip_mm is None or d.tip_mm == self.tip_mm)
        ]
        return matches[0] if matches else catalog.default_device(self.mode)

    def resolved(self) -> RFSettings:
        """Every ``None`` filled from the device catalog, generator and ex vivo defaults."""
        device, gen = self.device, catalog.generator()
        defaults = {
            "gauge": device.gauge,
            "tip_mm": device.tip_mm,
            "set_temp_c": None if self.mode == "pulsed" else device.default_set_temp_c,
            "time_s": device.default_time_s,
            "ramp_s": gen.ramp_time_s,
            "initial_temp_c": 21.0 if self.ex_vivo else None,
            "damage_model": arrhenius().name,
            "max_power_w": gen.max_power_w,
        }
        if self.mode == "cooled":
            defaults |= {"coolant_temp_c": device.coolant_temp_c, "coolant_flow_ml_min": device.coolant_flow_ml_min}
        if self.mode == "pulsed":
            defaults |= {
                "pulse_voltage_v": device.pulse_voltage_v,
                "pulse_frequency_hz": device.pulse_frequency_hz,
                "pulse_width_ms": device.pulse_width_ms,
                "pulse_temp_limit_c": device.pulse_temp_limit_c,
            }
        changes = {k: v for k, v in defaults.items() if getattr(self, k) is None and v is not None}
        return replace(self, **changes)

    @property
    def start_temp_c(self) -> float:
        return self.initial_temp_c if self.ex_vivo and self.initial_temp_c is not None else BODY_TEMP_C

    def with_(self, **changes) -> RFSettings:
        """A copy with ``changes`` applied (validated again)."""
        return replace(self, **changes)

    def as_dict(self) -> dict:
        """Settings keyed with their units, for JSON and reports."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Traces:
    """Generator time traces, one entry per control interval (end of step)."""

    time_s: np.ndarray
    tip_temp_c: np.ndarray
    voltage_v: np.ndarray
    power_w: np.ndarray
    impedance_ohm: np.ndarray

    def as_dict(self, digits: int = 5) -> dict:
        return {f.name: [float(f"{x:.{digits}g}") for x in getattr(self, f.name)] for f in fields(self)}


@dataclass(frozen=True)
class LesionGrowth:
    """Arrhenius lesion size over time (one entry every GROWTH_INTERVAL_S and at the end)."""

    time_s: tuple[float, ...]
    width_mm: tuple[float, ...]
    length_mm: tuple[float, ...]
    volume_mm3: tuple[float, ...]

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EnergyBudget:
    """Energy (J) over the whole run: delivered + boundary inflow = stored + perfusion + coolant."""

    delivered_j: float
    stored_j: float
    perfusion_loss_j: float
    coolant_loss_j: float
    boundary_outflow_j: float

    @property
    def imbalance_relative(self) -> float:
        out = self.stored_j + self.perfusion_loss_j + self.coolant_loss_j + self.boundary_outflow_j
        return abs(self.delivered_j - out) / max(abs(self.delivered_j), 1e-30)

    def as_dict(self) -> dict:
        return asdict(self) | {"imbalance_relative": self.imbalance_relative}


@dataclass(frozen=True)
class FieldSnapshot:
    """Nodal fields at the end of the run, for plots and further analysis."""

    needle_mesh: NeedleMesh
    temp_c: np.ndarray
    omega: np.ndarray
    cem43_min: np.ndarray
    max_temp_c: np.ndarray
    unit_potential: np.ndarray


@dataclass(frozen=True)
class RFResult:
    """Outcome of one RF simulation (all numbers carry their unit in the name)."""

    settings: RFSettings
    tissue: Tissue
    lesion: LesionShape
    isotherm50: LesionShape
    cem43: LesionShape
    max_tissue_temp_c: float
    tip_temp_c_final: float
    mean_power_w: float
    impedance_ohm_start: float
    impedance_ohm_end: float
    traces: Traces
    growth: LesionGrowth
    energy: EnergyBudget
    mesh: dict
    wall_time_s: float
    pulsed: dict | None = None
    warnings: tuple[str, ...] = ()
    fields: FieldSnapshot | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict:
        """The JSON object printed by ``neurolysis rf --json``."""
        out = {
            "lesion": self.lesion.as_dict(),
            "isotherm50": self.isotherm50.as_dict(),
            "cem43": self.cem43.as_dict(),
            "max_tissue_temp_c": self.max_tissue_temp_c,
            "tip_temp_c_final": self.tip_temp_c_final,
            "mean_power_w": self.mean_power_w,
            "impedance_ohm_start": self.impedance_ohm_start,
            "impedance_ohm_end": self.impedance_ohm_end,
            "traces": self.traces.as_dict(),
            "lesion_growth": self.growth.as_dict(),
            "settings": self.settings.as_dict(),
            "tissue_properties": self.tissue.properties(),
            "mesh": self.mesh,
            "energy": self.energy.as_dict(),
            "wall_time_s": self.wall_time_s,
            "warnings": list(self.warnings),
            "disclaimer": DISCLAIMER,
        }
        if self.pulsed is not None:
            out["pulsed"] = self.pulsed
        return out


class _NeedleModel:
    """Element-wise material coefficients of needle and tissue for the current state."""

    def __init__(self, needle_mesh: NeedleMesh, tissue: Tissue, settings: RFSettings, device: catalog.Device):
        self.needle_mesh = needle_mesh
        self.tissue = tissue
        region = needle_mesh.region
        self.is_tissue = region == Region.TISSUE
        self.is_lumen = region == Region.LUMEN
        steel, coating = catalog.material("steel"), catalog.material("insulation")
        is_coating = region == Region.INSULATION
        self.metal_k = np.where(is_coating, coating.thermal_conductivity_w_m_k, steel.thermal_conductivity_w_m_k)
        self.heat_capacity = np.select(
            [self.is_tissue, is_coating],
            [tissue.volumetric_heat_capacity_j_m3_k, coating.volumetric_heat_capacity_j_m3_k],
            steel.volumetric_heat_capacity_j_m3_k,
        )
        self.coolant_exchange = 0.0
        self.coolant_inlet_c = None
        if settings.mode == "cooled":
            water = catalog.material("water")
            lumen_r = device.lumen_diameter_mm * 0.5e-3
            h = WATER_NUSSELT_LAMINAR * water.thermal_conductivity_w_m_k / (2 * lumen_r)
            # wall area per length 2 pi r_l h spread over the meshed channel section pi r_m^2
            self.coolant_exchange = 2 * h * lumen_r / needle_mesh.lumen_radius_mesh_m**2
            self.coolant_inlet_c = settings.coolant_temp_c
            self.coolant_capacity_w_k = water.volumetric_heat_capacity_j_m3_k * settings.coolant_flow_ml_min * 1e-6 / 60.0

    def element_mean(self, nodal: np.ndarray) -> np.ndarray:
        return nodal[self.needle_mesh.mesh.t].mean(axis=0)

    def sigma(self, temp_e: np.ndarray) -> np.ndarray:
        return np.where(self.is_tissue, self.tissue.electrical_conductivity(temp_e), 0.0)

    def conductivity(self, temp_e: np.ndarray) -> np.ndarray:
        return np.where(self.is_tissue, self.tissue.thermal_conductivity(temp_e), self.metal_k)

    def exchange(self, omega_e: np.ndarray, blood_c: float, coolant_c: float | None):
        """(perfusion part, coolant part, reference temperature) per element."""
        perf = np.where(self.is_tissue, perfusion_exchange(self.tissue.perfusion_w_m3_k, omega_e), 0.0)
        cool = np.where(self.is_lumen, self.coolant_exchange, 0.0)
        ref = np.where(self.is_lumen, coolant_c if coolant_c is not None else blood_c, blood_c)
        return perf, cool, ref


def controller_voltage(target_c, free_c, gain_c_per_v2, v2_limit):
    """Generator output for one control interval (returns V^2).

    Temperature control in pain RF generators adjusts the output every control interval
    so that the tip thermocouple follows the set-point ramp. The thermocouple reading at
    the end of the interval is affine in V^2 (``free_c + gain * V^2``), so the output
    that lands it on the set point is solved for directly -- the limit of a well-tuned
    PI loop without its overshoot -- then clipped to [0, ``v2_limit``] (power and voltage
    limits), which is where the real generator saturates too.
    """
    if gain_c_per_v2 <= 0:
        return 0.0
    return float(np.clip((target_c - free_c) / gain_c_per_v2, 0.0, v2_limit))


def setpoint_c(t_s: float, start_c: float, set_c: float, ramp_s: float) -> float:
    if ramp_s <= 0 or t_s >= ramp_s:
        return set_c
    return start_c + (set_c - start_c) * t_s / ramp_s


def pulsed_steps(settings: RFSettings) -> list[tuple[float, bool]]:
    """(dt, RF on) for one pulse period: PULSE_SUBSTEPS steps per pulse, geometric steps while off."""
    period = 1.0 / settings.pulse_frequency_hz
    width = settings.pulse_width_ms * 1e-3
    on = [(width / PULSE_SUBSTEPS, True)] * PULSE_SUBSTEPS
    off, remaining, dt = [], period - width, width / PULSE_SUBSTEPS
    while remaining > 1e-12:
        dt = min(2 * dt, remaining)
        if remaining - dt < 0.5 * dt:
            dt = remaining
        off.append((dt, False))
        remaining -= dt
    return on + off


def time_steps(settings: RFSettings) -> list[tuple[float, bool]]:
    if settings.mode == "pulsed":
        period_steps = pulsed_steps(settings)
        n_periods = int(round(settings.time_s * settings.pulse_frequency_hz))
        return period_steps * max(1, n_periods)
    n = max(1, int(np.ceil(settings.time_s / settings.dt_s - 1e-9)))
    return [(settings.time_s / n, True)] * n


def build_rf_mesh(settings: RFSettings) -> NeedleMesh:
    """The axisymmetric mesh for resolved ``settings``."""
    device = settings.device
    radius = catalog.outer_radius_m(settings.gauge)
    lumen = device.lumen_diameter_mm * 0.5e-3 if settings.mode == "cooled" else 0.0
    geometry = NeedleGeometry(
        radius_m=radius,
        tip_length_m=settings.tip_mm * 1e-3,
        cone_length_m=catalog.cone_length_over_radius() * radius,
        insulation_thickness_m=catalog.insulation_thickness_m(),
        lumen_radius_m=lumen,
    )
    return build_needle_mesh(geometry, MeshSpec(h_fine_m=settings.h_fine_mm * 1e-3, domain_m=settings.domain_mm * 1e-3))


def _probe_points(needle_mesh: NeedleMesh) -> dict[str, tuple[float, float]]:
    """Points (r, z) at FIELD_DISTANCES_MM lateral to the middle of the active tip and distal to the apex."""
    a, L = needle_mesh.geometry.radius_m, needle_mesh.geometry.tip_length_m
    points = {}
    for d in FIELD_DISTANCES_MM:
        points[f"lateral_{d:g}mm"] = (a + d * 1e-3, 0.5 * L)
        points[f"distal_{d:g}mm"] = (1e-6, -d * 1e-3)
    return points


def _interpolation_matrix(needle_mesh: NeedleMesh, points) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(elements, node indices (k, 3), barycentric weights (k, 3)) of the P1 field at ``points``."""
    p, t = needle_mesh.mesh.p, needle_mesh.mesh.t
    elements = needle_mesh.locate(*np.array(points, dtype=float).T)
    nodes = t[:, elements].T
    weights = []
    for (r, z), tri in zip(points, nodes, strict=True):
        x, y = p[0, tri], p[1, tri]
        matrix = np.array([[x[0] - x[2], x[1] - x[2]], [y[0] - y[2], y[1] - y[2]]])
        l0, l1 = np.linalg.solve(matrix, [r - x[2], z - y[2]])
        weights.append([l0, l1, 1 - l0 - l1])
    return elements, nodes, np.array(weights)


def simulate_rf(
    settings: RFSettings,
    progress: Callable[[float], None] | None = None,
    tissue_override: Tissue | None = None,
) -> RFResult:
    """Simulate one RF lesion; ``progress(fraction)`` is called after every step.

    ``tissue_override`` replaces the catalog tissue named in the settings (for
    sensitivity studies and user-measured properties); the properties used are always
    reported in ``RFResult.tissue``.
    """
    started = time.perf_counter()
    s = settings.resolved()
    device = s.device
    tissue = tissue_override if tissue_override is not None else load_tissue(s.tissue)
    if s.ex_vivo:
        tissue = tissue.ex_vivo()
    gen = catalog.generator()
    needle_mesh = build_rf_mesh(s)
    geometry = element_geometry(needle_mesh.mesh)
    entries = unit_stiffness_entries(needle_mesh.mesh)
    electric = UnitPotential.around_needle(needle_mesh, geometry, entries)
    heat = HeatProblem(needle_mesh.mesh.p.shape[1], geometry, entries, needle_mesh.outer_nodes)
    model = _NeedleModel(needle_mesh, tissue, s, device)
    damage_params = arrhenius(s.damage_model)
    start_c = s.start_temp_c
    tc = needle_mesh.thermocouple_node
    tissue_nodes = needle_mesh.tissue_nodes

    temp = np.full(needle_mesh.mesh.p.shape[1], start_c)
    damage = DamageAccumulator(temp, damage_params)
    mass_nodes = heat.node_weights(model.heat_capacity)
    steps = time_steps(s)
    n_steps = len(steps)
    record = {k: np.empty(n_steps) for k in ("time_s", "tip_temp_c", "voltage_v", "power_w", "impedance_ohm")}
    delivered = perfusion_loss = coolant_loss = boundary_in = 0.0
    coolant_c = model.coolant_inlet_c
    mean_temp_accumulator = np.zeros_like(temp)
    probes = _probe_points(needle_mesh)
    probe_elements, probe_nodes, probe_weights = _interpolation_matrix(needle_mesh, list(probes.values()))
    probe_peak = np.full(len(probes), start_c)
    probe_sum = np.zeros(len(probes))
    peak_tissue_c = float(start_c)
    phi = electric.phi
    blood_c = start_c if s.ex_vivo else BODY_TEMP_C
    t_now = 0.0
    pulse_v2 = (s.pulse_voltage_v or 0.0) ** 2
    # pulsed: tissue properties change little within a pulse train; refresh them (and the
    # potential) every PULSED_REFRESH_S instead of every step (verified in the tests)
    refresh_every = len(pulsed_steps(s)) * max(1, round(PULSED_REFRESH_S * s.pulse_frequency_hz)) if s.mode == "pulsed" else 1
    unit_joule = unit_power = unit_current = None
    thresholds = catalog_thresholds()
    growth, next_growth_s = [], GROWTH_INTERVAL_S
    for i, (dt, rf_on) in enumerate(steps):
        temp_e = model.element_mean(temp)
        if i % refresh_every == 0:
            sigma = model.sigma(temp_e)
            phi = electric.solve(sigma)
            unit_joule = electric.unit_joule(sigma, phi)
            unit_power = electric.unit_power_w(unit_joule)
            unit_current = electric.electrode_current_a(sigma, phi)
            conductivity = model.conductivity(temp_e)
            perf, cool, ref = model.exchange(model.element_mean(damage.omega), blood_c, coolant_c)
            ops = heat.operators(conductivity, model.heat_capacity, perf + cool, ref)
            perf_nodes, cool_nodes = heat.node_weights(perf), heat.node_weights(cool)
            joule_nodes = heat.node_weights(unit_joule)
        free, responses = heat.step(temp, dt, ops, [unit_joule] if rf_on else [])
        v2_limit = min(gen.max_voltage_v**2, s.max_power_w / unit_power)
        if not rf_on:
            v2, response = 0.0, 0.0
        elif s.mode == "pulsed":
            response = responses[0]
            v2 = min(pulse_v2, controller_voltage(s.pulse_temp_limit_c, free[tc], response[tc], v2_limit))
        else:
            response = responses[0]
            v2 = controller_voltage(setpoint_c(t_now + dt, start_c, s.set_temp_c, s.ramp_s), free[tc], response[tc], v2_limit)
        new_temp = free + v2 * response
        t_now += dt

        delivered += unit_current * v2 * dt
        boundary_in += heat.boundary_inflow_w(new_temp, ops, v2 * joule_nodes) * dt
        perfusion_loss += TWO_PI * float(perf_nodes @ (new_temp - blood_c)) * dt
        if s.mode == "cooled":
            coolant_power = TWO_PI * float(cool_nodes @ (new_temp - coolant_c))
            coolant_loss += coolant_power * dt
            # mean channel temperature: inlet plus half the rise the removed heat causes
            coolant_c = model.coolant_inlet_c + 0.5 * max(coolant_power, 0.0) / model.coolant_capacity_w_k
        temp = new_temp
        damage.advance(temp, dt)
        mean_temp_accumulator += temp * dt
        probe_temp = (temp[probe_nodes] * probe_weights).sum(axis=1)
        np.maximum(probe_peak, probe_temp, out=probe_peak)
        probe_sum += probe_temp * dt
        peak_tissue_c = max(peak_tissue_c, float(temp[tissue_nodes].max()))
        if t_now >= next_growth_s - 1e-9 or i == n_steps - 1:
            shape = measure_lesion(needle_mesh, damage.omega, thresholds.omega, "arrhenius")
            growth.append((t_now, shape.width_mm, shape.length_mm, shape.volume_mm3))
            next_growth_s += GROWTH_INTERVAL_S
        record["time_s"][i] = t_now
        record["tip_temp_c"][i] = temp[tc]
        record["voltage_v"][i] = np.sqrt(v2)
        record["power_w"][i] = v2 * unit_power
        record["impedance_ohm"][i] = 1.0 / unit_power
        if progress is not None:
            progress((i + 1) / n_steps)

    stored = TWO_PI * float(mass_nodes @ (temp - start_c))
    energy = EnergyBudget(delivered, stored, perfusion_loss, coolant_loss, -boundary_in)
    lesion = measure_lesion(needle_mesh, damage.omega, thresholds.omega, "arrhenius")
    iso = measure_lesion(needle_mesh, damage.max_temp_c, thresholds.isotherm_c, "isotherm50")
    cem = measure_lesion(needle_mesh, damage.cem43_min, thresholds.cem43_min, "cem43")
    warnings = []
    if any(shape.reaches_domain_edge for shape in (lesion, iso, cem)):
        warnings.append("a lesion reaches the edge of the simulated domain: increase domain_mm")
    if s.mode != "pulsed" and record["tip_temp_c"][-1] < s.set_temp_c - 2.0:
        warnings.append(
            f"the tip reached only {record['tip_temp_c'][-1]:.1f} C of the {s.set_temp_c:g} C set: "
            f"the generator hit its power limit ({s.max_power_w:g} W) or voltage limit ({gen.max_voltage_v:g} V)"
        )
    if peak_tissue_c >= 100.0:
        warnings.append(f"tissue reached {peak_tissue_c:.0f} C: boiling and charring are modelled only as a loss of conductivity")
    pulsed = None
    if s.mode == "pulsed":
        probe_report = {name: {"peak_c": float(pk), "mean_c": float(sm / t_now)} for name, pk, sm in zip(probes, probe_peak, probe_sum, strict=True)}
        field_v_m = dict(zip(probes, (np.hypot(*electric.field(phi)) * s.pulse_voltage_v)[probe_elements].tolist(), strict=True))
        pulsed = _pulsed_summary(mean_temp_accumulator / t_now, tissue_nodes, peak_tissue_c, lesion, record, probe_report, field_v_m)
        if lesion.volume_mm3 > 0:
            warnings.append("pulsed RF produced a thermal lesion (Omega >= 1): settings are not those of non-lesional PRF")
    mesh_info = {
        "h_fine_mm": s.h_fine_mm,
        "domain_mm": s.domain_mm,
        "growth": needle_mesh.spec.growth,
        "nodes": int(needle_mesh.mesh.p.shape[1]),
        "elements": int(needle_mesh.mesh.t.shape[1]),
        "time_steps": n_steps,
        "dt_s": s.dt_s if s.mode != "pulsed" else None,
        "verified_tolerance_mm": MESH_TOLERANCE_MM,
        "verified_by": "default conventional case: width and length within verified_tolerance_mm of the solution with h_fine_mm and dt_s halved and of a converged one (h_fine_mm 0.05)",
        "factorizations": sum(solver.factorizations for solver in heat.solvers.values()) + electric.factorizations,
    }
    return RFResult(
        settings=s,
        tissue=tissue,
        lesion=lesion,
        isotherm50=iso,
        cem43=cem,
        max_tissue_temp_c=peak_tissue_c,
        tip_temp_c_final=float(record["tip_temp_c"][-1]),
        mean_power_w=float(np.sum(record["power_w"] * np.diff(record["time_s"], prepend=0.0)) / t_now),
        impedance_ohm_start=float(record["impedance_ohm"][0]),
        impedance_ohm_end=float(record["impedance_ohm"][-1]),
        traces=Traces(**record),
        growth=LesionGrowth(*(tuple(float(x) for x in column) for column in zip(*growth, strict=True))),
        energy=energy,
        mesh=mesh_info,
        wall_time_s=time.perf_counter() - started,
        pulsed=pulsed,
        warnings=tuple(warnings),
        fields=FieldSnapshot(needle_mesh, temp, damage.omega, damage.cem43_min, damage.max_temp_c, phi.copy()),
    )


def _pulsed_summary(mean_temp, tissue_nodes, peak_c, lesion, record, probe_report, field_v_m) -> dict:
    """Peak/mean temperatures and the field at the pulse voltage near the tip."""
    applied = record["voltage_v"][record["voltage_v"] > 0]
    return {
        "peak_tissue_temp_c": peak_c,
        "peak_tissue_temp_note": "hottest mesh node, at the electrode's sharp edge where the field is singular: "
        "it rises as the mesh and pulse resolution are refined; probe_temp_c values are converged",
        "mean_tissue_temp_c": float(mean_temp[tissue_nodes].max()),
        "probe_temp_c": probe_report,
        "electric_field_v_per_m": field_v_m,
        "pulse_voltage_v_mean": float(applied.mean()) if applied.size else 0.0,
        "thermal_lesion": bool(lesion.volume_mm3 > 0),
        "verdict": (
            "no thermal lesion: Omega stayed below 1 everywhere (non-lesional pulsed RF)"
            if lesion.volume_mm3 == 0
            else "THERMAL LESION: Omega reached 1; these settings are lesional"
        ),
    }
