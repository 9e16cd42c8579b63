"""The RF generator model both engines share: control, time steps, the time loop, the energy budget.

Each time step of either engine (axisymmetric or 3D):

1. the quasi-static potential for 1 V with sigma(T) of the last step;
2. one backward-Euler bioheat step, split into the response without RF and the response
   to the unit Joule heat Q1 = sigma |grad phi|^2 -- the step is linear in V^2, so
3. the generator chooses V^2 for this control interval (:func:`controller_voltage`): the
   value that brings the thermocouple(s) to the set-point ramp (conventional, cooled; with
   two thermocouples the hotter one limits), or the pulse voltage unless that would push a
   thermocouple over its limit (pulsed), always within the power and voltage limits;
4. Omega, CEM43 and the peak temperature accumulate at every node.

:func:`run_generator` is that loop, written once; an engine supplies its mesh's element
materials (:class:`NeedleMaterials`), its potential and heat problems, and an observer for
what only it records. Energy (J) is kept as delivered + boundary inflow = stored +
perfusion + coolant (:class:`EnergyBudget`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from neurolysis import devices as catalog
from neurolysis.about import DISCLAIMER
from neurolysis.engines.rf.settings import RFSettings
from neurolysis.fields import BODY_TEMP_C
from neurolysis.physics.bioheat import perfusion_exchange
from neurolysis.physics.damage import DamageAccumulator, arrhenius
from neurolysis.physics.lesion import LesionShape
from neurolysis.physics.mesh import Region
from neurolysis.tissue import Tissue

WATER_NUSSELT_LAMINAR = 4.36
"""Fully developed laminar flow, constant wall heat flux (Incropera, Fundamentals of Heat
and Mass Transfer, 6th ed., eq. 8.53): h = Nu k_water / D of the coolant channel."""
FLOWING_TISSUES = ("blood",)
"""Tissues that are flowing blood in a vessel lumen: a convective heat sink (below)."""
VESSEL_FLOW_RATE_PER_S = 10.0
"""Rate (1/s) at which flow replaces the blood in a meshed vessel segment: velocity ~0.1-0.2
m/s over the ~10-20 mm of vessel inside the fine mesh (the same washout rate as the chemical
engine's lumen, docs/models/chemical.md 6.2; an assumption). Times rho c of blood it is the
lumen's exchange coefficient (~4e7 W/m^3/K, ~10^4 x muscle perfusion): the lumen is held
near body temperature, the constant-wall-temperature model of a large vessel (dos Santos,
Haemmerich et al., BioMed Eng OnLine 2008;7:21 [READ, abstract]); docs/models/rf3d.md."""
PULSE_SUBSTEPS = 5
"""Pulsed RF: implicit steps per pulse; the off time is stepped geometrically from there."""
PULSED_REFRESH_S = 1.0
"""Pulsed RF: interval (s) at which temperature-dependent properties and the potential are
renewed; the temperature is resolved within every pulse regardless."""


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


class NeedleMaterials:
    """Element coefficients of needle metal, coating, coolant channel and tissue(s).

    ``region`` per element (:class:`~neurolysis.physics.mesh.Region`); ``tissue_of`` the
    tissue id of each element (read only on tissue elements); ``element_nodes`` the node
    indices (elements, nodes per element); ``mesh_lumen_radius_m`` the radius of the meshed
    coolant channel (the wall's heat transfer is spread over its section); ``sigma_factor`` per
    element multiplies the electrical conductivity (a pre-injected fluid, :mod:`.fluid`).
    """

    def __init__(self, region: np.ndarray, tissue_of: np.ndarray, tissues: dict[str, Tissue], settings: RFSettings,
                 element_nodes: np.ndarray, mesh_lumen_radius_m: float = 0.0, sigma_factor: np.ndarray | None = None):  # fmt: skip
        self.element_nodes = element_nodes
        self.sigma_factor = sigma_factor  # a pre-injected fluid's factor on the tissue conductivity (engines/rf/fluid.py)
        self.is_tissue = region == Region.TISSUE
        self.is_lumen = region == Region.LUMEN
        self.groups = [(tissues[tid], np.flatnonzero(self.is_tissue & (tissue_of == tid))) for tid in sorted(set(tissue_of[self.is_tissue]))]
        steel, coating = catalog.material("steel"), catalog.material("insulation")
        is_coating = region == Region.INSULATION
        self.metal_k = np.where(is_coating, coating.thermal_conductivity_w_m_k, steel.thermal_conductivity_w_m_k)
        self.heat_capacity = np.where(is_coating, coating.volumetric_heat_capacity_j_m3_k, steel.volumetric_heat_capacity_j_m3_k)
        self.perfusion = np.zeros(len(region))
        for tissue, idx in self.groups:
            self.heat_capacity[idx] = tissue.volumetric_heat_capacity_j_m3_k
            self.perfusion[idx] = tissue.perfusion_w_m3_k
        # vessel lumens (in vivo): flowing blood, a heat sink that coagulation does not stop
        self.flowing = self.is_tissue & np.isin(tissue_of, FLOWING_TISSUES) & (not settings.ex_vivo)
        self.perfusion[self.flowing] = self.heat_capacity[self.flowing] * VESSEL_FLOW_RATE_PER_S
        self.coolant_exchange = 0.0
        self.coolant_inlet_c = None
        self.coolant_capacity_w_k = 0.0
        if settings.mode == "cooled":
            water = catalog.material("water")
            lumen_r = settings.device.lumen_diameter_mm * 0.5e-3
            h = WATER_NUSSELT_LAMINAR * water.thermal_conductivity_w_m_k / (2 * lumen_r)
            # wall area per length 2 pi r_l h spread over the meshed channel section pi r_m^2
            self.coolant_exchange = 2 * h * lumen_r / mesh_lumen_radius_m**2
            self.coolant_inlet_c = settings.coolant_temp_c
            self.coolant_capacity_w_k = water.volumetric_heat_capacity_j_m3_k * settings.coolant_flow_ml_min * 1e-6 / 60.0

    def element_mean(self, nodal: np.ndarray) -> np.ndarray:
        return nodal[self.element_nodes].mean(axis=1)

    def tissue_sigma(self, temp_e: np.ndarray) -> np.ndarray:
        """The tissues' own electrical conductivity (S/m) per element, without a pre-injected fluid."""
        out = np.zeros_like(temp_e)
        for tissue, idx in self.groups:
            out[idx] = tissue.electrical_conductivity(temp_e[idx])
        return out

    def sigma(self, temp_e: np.ndarray) -> np.ndarray:
        out = self.tissue_sigma(temp_e)
        return out if self.sigma_factor is None else out * self.sigma_factor

    def conductivity(self, temp_e: np.ndarray) -> np.ndarray:
        out = self.metal_k.copy()
        for tissue, idx in self.groups:
            out[idx] = tissue.thermal_conductivity(temp_e[idx])
        return out

    def exchange(self, omega_e: np.ndarray, blood_c: float, coolant_c: float | None):
        """(perfusion part, coolant part, reference temperature) per element."""
        perf = perfusion_exchange(self.perfusion, omega_e)
        perf[self.flowing] = self.perfusion[self.flowing]
        cool = np.where(self.is_lumen, self.coolant_exchange, 0.0)
        ref = np.where(self.is_lumen, coolant_c if coolant_c is not None else blood_c, blood_c)
        return perf, cool, ref


@dataclass(frozen=True, eq=False)
class GeneratorRun:
    """The end state of :func:`run_generator`: nodal fields, traces and the energy budget."""

    settings: RFSettings
    temp_c: np.ndarray
    damage: DamageAccumulator
    phi: np.ndarray
    traces: Traces
    energy: EnergyBudget
    peak_tissue_c: float
    time_s: float

    def summary(self) -> dict:
        """The result fields both engines report (keyword arguments of their results)."""
        t = self.traces
        return {
            "settings": self.settings,
            "max_tissue_temp_c": self.peak_tissue_c,
            "tip_temp_c_final": float(t.tip_temp_c[-1]),
            "mean_power_w": float(np.sum(t.power_w * np.diff(t.time_s, prepend=0.0)) / self.time_s),
            "impedance_ohm_start": float(t.impedance_ohm[0]),
            "impedance_ohm_end": float(t.impedance_ohm[-1]),
            "traces": t,
            "energy": self.energy,
        }

    def warnings(self, shapes: Sequence[LesionShape]) -> list[str]:
        """What the user must know about the run: lesion at the domain edge, set point not
        reached, boiling, a thermal lesion from pulsed RF (``shapes[0]`` is Omega >= 1)."""
        s, gen, out = self.settings, catalog.generator(), []
        if any(shape.reaches_domain_edge for shape in shapes):
            out.append("a lesion reaches the edge of the simulated domain: increase domain_mm")
        tip_c = self.traces.tip_temp_c[-1]
        if s.mode != "pulsed" and tip_c < s.set_temp_c - 2.0:
            out.append(
                f"the tip reached only {tip_c:.1f} C of the {s.set_temp_c:g} C set: "
                f"the generator hit its power limit ({s.max_power_w:g} W) or voltage limit ({gen.max_voltage_v:g} V)"
            )
        if self.peak_tissue_c >= 100.0:
            out.append(f"tissue reached {self.peak_tissue_c:.0f} C: boiling and charring are modelled only as a loss of conductivity")
        if s.mode == "pulsed" and shapes[0].volume_mm3 > 0:
            out.append("pulsed RF produced a thermal lesion (Omega >= 1): settings are not those of non-lesional PRF")
        return out


def run_generator(
    s: RFSettings,
    materials: NeedleMaterials,
    electric: Any,
    heat: Any,
    *,
    current_a: Callable[[np.ndarray, np.ndarray], float],
    node_weights: Callable[[np.ndarray], np.ndarray],
    thermocouples: Sequence[int],
    tissue_nodes: np.ndarray,
    volume_factor: float = 1.0,
    observe: Callable[[int, float, float, np.ndarray, DamageAccumulator], None] | None = None,
    progress: Callable[[float], None] | None = None,
) -> GeneratorRun:
    """Advance the coupled potential, bioheat, generator and damage over ``time_steps(s)``.

    ``electric``: ``solve(sigma) -> phi``, ``unit_joule(sigma, phi)``, ``unit_power_w(q1)``;
    ``current_a(sigma, phi)`` the current at 1 V (A); ``heat``: ``operators``, ``step``,
    ``boundary_inflow_w`` (:class:`~neurolysis.physics.bioheat.HeatProblem` or
    :class:`~neurolysis.physics.fem3d.Heat3D`); ``node_weights`` lumps element values to
    nodes; ``volume_factor`` turns the mesh's integrals into volumes (2 pi for an
    axisymmetric mesh). ``observe(i, t, dt, temp, damage)`` is called after every step.
    """
    gen = catalog.generator()
    start_c = s.start_temp_c
    blood_c = start_c if s.ex_vivo else BODY_TEMP_C
    mass_nodes = node_weights(materials.heat_capacity)
    temp = np.full(len(mass_nodes), start_c)
    damage = DamageAccumulator(temp, arrhenius(s.damage_model))
    steps = time_steps(s)
    n_steps = len(steps)
    record = {f.name: np.empty(n_steps) for f in fields(Traces)}
    delivered = perfusion_loss = coolant_loss = boundary_in = 0.0
    coolant_c = materials.coolant_inlet_c
    peak_tissue_c = float(start_c)
    t_now = 0.0
    pulse_v2 = (s.pulse_voltage_v or 0.0) ** 2
    # pulsed: tissue properties change little within a pulse train; refresh them (and the
    # potential) every PULSED_REFRESH_S instead of every step (verified in the tests)
    refresh_every = len(pulsed_steps(s)) * max(1, round(PULSED_REFRESH_S * s.pulse_frequency_hz)) if s.mode == "pulsed" else 1
    phi = electric.phi
    for i, (dt, rf_on) in enumerate(steps):
        temp_e = materials.element_mean(temp)
        if i % refresh_every == 0:
            sigma = materials.sigma(temp_e)
            phi = electric.solve(sigma)
            unit_joule = electric.unit_joule(sigma, phi)
            unit_power = electric.unit_power_w(unit_joule)
            unit_current = current_a(sigma, phi)
            perf, cool, ref = materials.exchange(materials.element_mean(damage.omega), blood_c, coolant_c)
            ops = heat.operators(materials.conductivity(temp_e), materials.heat_capacity, perf + cool, ref)
            perf_nodes, cool_nodes = node_weights(perf), node_weights(cool)
            joule_nodes = node_weights(unit_joule)
        free, responses = heat.step(temp, dt, ops, [unit_joule] if rf_on else [])
        v2_limit = min(gen.max_voltage_v**2, s.max_power_w / unit_power)
        if not rf_on:
            v2, response = 0.0, 0.0
        else:
            response = responses[0]
            target = s.pulse_temp_limit_c if s.mode == "pulsed" else setpoint_c(t_now + dt, start_c, s.set_temp_c, s.ramp_s)
            v2 = min(controller_voltage(target, free[tc], response[tc], v2_limit) for tc in thermocouples)
            if s.mode == "pulsed":
                v2 = min(pulse_v2, v2)
        new_temp = free + v2 * response
        t_now += dt

        delivered += unit_current * v2 * dt
        boundary_in += heat.boundary_inflow_w(new_temp, ops, v2 * joule_nodes) * dt
        perfusion_loss += volume_factor * float(perf_nodes @ (new_temp - blood_c)) * dt
        if s.mode == "cooled":
            coolant_power = volume_factor * float(cool_nodes @ (new_temp - coolant_c))
            coolant_loss += coolant_power * dt
            # mean channel temperature: inlet plus half the rise the removed heat causes
            coolant_c = materials.coolant_inlet_c + 0.5 * max(coolant_power, 0.0) / (materials.coolant_capacity_w_k * len(thermocouples))
        temp = new_temp
        damage.advance(temp, dt)
        peak_tissue_c = max(peak_tissue_c, float(temp[tissue_nodes].max()))
        record["time_s"][i] = t_now
        record["tip_temp_c"][i] = temp[list(thermocouples)].max()
        record["voltage_v"][i] = np.sqrt(v2)
        record["power_w"][i] = v2 * unit_power
        record["impedance_ohm"][i] = 1.0 / unit_power
        if observe is not None:
            observe(i, t_now, dt, temp, damage)
        if progress is not None:
            progress((i + 1) / n_steps)

    stored = volume_factor * float(mass_nodes @ (temp - start_c))
    energy = EnergyBudget(delivered, stored, perfusion_loss, coolant_loss, -boundary_in)
    return GeneratorRun(s, temp, damage, phi, Traces(**record), energy, peak_tissue_c, t_now)


@dataclass(frozen=True, kw_only=True)
class RFLesionResult:
    """What every RF engine reports (user units in the names); engines add their own fields."""

    settings: RFSettings
    lesion: LesionShape
    isotherm50: LesionShape
    cem43: LesionShape
    coagulation: LesionShape
    """visible coagulation of the medium (data/coagulation.toml): the edge ex vivo studies measure"""
    max_tissue_temp_c: float
    tip_temp_c_final: float
    mean_power_w: float
    impedance_ohm_start: float
    impedance_ohm_end: float
    traces: Traces
    energy: EnergyBudget
    mesh: dict
    wall_time_s: float
    warnings: tuple[str, ...] = ()
    pre_injection: dict | None = None  # the fluid injected before heating: fluid, volume_ml, conductivity_s_m, reach_mm

    def _dict_head(self) -> dict:
        return ({"pre_injection": self.pre_injection} if self.pre_injection is not None else {}) | {
            "lesion": self.lesion.as_dict(),
            "isotherm50": self.isotherm50.as_dict(),
            "cem43": self.cem43.as_dict(),
            "coagulation": self.coagulation.as_dict(),
            "max_tissue_temp_c": self.max_tissue_temp_c,
            "tip_temp_c_final": self.tip_temp_c_final,
            "mean_power_w": self.mean_power_w,
            "impedance_ohm_start": self.impedance_ohm_start,
            "impedance_ohm_end": self.impedance_ohm_end,
            "traces": self.traces.as_dict(),
        }

    def _dict_tail(self) -> dict:
        return {
            "mesh": self.mesh,
            "energy": self.energy.as_dict(),
            "wall_time_s": self.wall_time_s,
            "warnings": list(self.warnings),
            "disclaimer": DISCLAIMER,
        }
