"""Agents: neurolytic agents (catalog, transport, dose response, systemic exposure) and local anaesthetics (catalog, maximum dose).

Neurolytic agents (``data/agents.toml``, docs/models/chemical.md). An axon dies when its
lethal index reaches one,

    Lambda = integral rate(C(t)) dt >= 1,
    rate(C) = ((C - C_s)+ / (C_ref - C_s))^m / t_ref  +  (C - C_f)+ / K_f     (1/s)

with C the *local aqueous* concentration: a slow cytotoxic term (days at 1-2 % ethanol)
plus a fast solvent/denaturing term (seconds above C_f). Where the dose also reaches
(C - C_d)+ / K_f integrated to 1 the endoneurial tubes are destroyed (Sunderland >= 3).
Both agents cross cell membranes, so an injected bolus is diluted at once into the tissue
water (capacity theta > phi, :func:`transport_coefficients`). Parameters are solved from
published anchors at load time (:func:`dose_response`; ethanol K_f through the model of
Taylor's topical experiment, :func:`topical_exposure`), so the data file holds only anchors.

Local anaesthetics (``data/anaesthetics.toml``): the catalog, the maximum dose and its
check; the block model itself is :mod:`neurolysis.engines.block`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType

import numpy as np

from neurolysis._catalog import catalog_records, load_catalog
from neurolysis.physics.transport import ExposureAccumulator, TransportSolver, cylinder_operators, effective_diffusivity
from neurolysis.tissue import load_tissue
from neurolysis.validation import check_choice, check_range

MINUTE_S = 60.0
HOUR_S = 3600.0
MG_PER_ML_PER_PCT = 10.0  # 1 % w/v = 1 g / 100 mL = 10 mg/mL
MAX_VOLUME_ML = 100.0
WEIGHT_RANGE_KG = (1.0, 300.0)

# ---------------------------------------------------------------------------------------
# Neurolytic agents
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NeurolyticAgent:
    """A neurolytic solution: solute, allowed concentration range, transport constants."""

    id: str
    name: str
    solute: str  # "ethanol" | "phenol"
    concentration_unit: str  # "% v/v" | "% w/v"
    concentration_min_pct: float
    concentration_max_pct: float
    diffusivity_water_37c_m2_s: float
    vehicle_diffusion_factor: float
    partition_tissue_blood: float
    cell_uptake: bool  # permeant: capacity = tissue water theta, not phi
    perineurium_factor: float  # replaces the perineurium's diffusion_factor for this agent
    sources: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), compare=False)


def neurolytic_agents() -> dict[str, NeurolyticAgent]:
    """All catalogued neurolytic agents by id."""
    return catalog_records(NeurolyticAgent, load_catalog("agents")["agent"])


def neurolytic_agent(agent_id: str) -> NeurolyticAgent:
    agents = neurolytic_agents()
    check_choice("agent", agent_id, sorted(agents))
    return agents[agent_id]


def check_neurolytic_injection(agent_id: str, concentration_pct: float, volume_ml: float) -> NeurolyticAgent:
    """Validate one injection before any solve; one-line ValidationError naming the field."""
    agent = neurolytic_agent(agent_id)
    check_range("concentration_pct", concentration_pct, agent.concentration_min_pct, agent.concentration_max_pct,
                low_inclusive=False, unit=f"{agent.concentration_unit} for {agent_id}")
    check_range("volume_ml", volume_ml, 0.0, MAX_VOLUME_ML, low_inclusive=False, unit="mL")
    return agent


@dataclass(frozen=True)
class TransportCoefficients:
    """Per-tissue coefficients of theta dc/dt = div(D_eff grad c) - k theta c (c: aqueous concentration)."""

    diffusivity_m2_s: float  # D_eff (tissue-averaged conductance, extracellular path)
    volume_fraction: float  # phi (the fraction the injectate fills)
    clearance_per_s: float  # k
    capacity_fraction: float  # theta: water fraction for a permeant agent, else phi


def transport_coefficients(agent_id: str, tissue: str) -> TransportCoefficients:
    """D_eff = phi D_water v f / lambda^2, phi, flow-limited k = w_b / partition (or the table's ``clearance_per_s``: a vessel lumen)
    and the capacity theta (``water_fraction`` for an agent with ``cell_uptake``, else phi).

    w_b = perfusion_w_m3_k / (rho_b c_b) with the blood values of ``tissues.toml``; in the
    perineurium f is the agent's ``perineurium_factor``.
    """
    agent = neurolytic_agent(agent_id)
    table = load_catalog("agents")["transport_tissue"]
    check_choice("tissue", tissue, sorted(k for k in table if k != "sources"))
    t = table[tissue]
    blood = load_tissue("blood")
    perfusion_per_s = load_tissue(t["perfusion_tissue"]).perfusion_w_m3_k / (blood.density_kg_m3 * blood.heat_capacity_j_kg_k)
    factor = agent.perineurium_factor if tissue == "perineurium" else float(t.get("diffusion_factor", 1.0))
    d_eff = effective_diffusivity(agent.diffusivity_water_37c_m2_s * agent.vehicle_diffusion_factor, float(t["volume_fraction"]), float(t["tortuosity"]), factor)
    clearance = float(t["clearance_per_s"]) if "clearance_per_s" in t else perfusion_per_s / agent.partition_tissue_blood
    phi = float(t["volume_fraction"])
    return TransportCoefficients(d_eff, phi, clearance, max(phi, float(t["water_fraction"])) if agent.cell_uptake else phi)


@dataclass(frozen=True)
class ConcentrationTimeLaw:
    """Axon lethal-index rate (1/s) as a function of concentration (in % of the agent's unit).

    rate(C) = ((C - C_s)+ / (C_ref - C_s))^m / t_ref + (C - C_f)+ / K_f ; either term may be
    absent (t_ref = inf or K_f = inf). Tubes (Sunderland >= 3): (C - C_d)+ / K_f integrated to >= 1.
    """

    solute: str
    slow_threshold_pct: float
    slow_reference_pct: float
    slow_reference_s: float
    slow_exponent: float
    fast_threshold_pct: float
    fast_constant_pct_s: float
    tubes_threshold_pct: float = math.inf

    def tubes_rate_per_s(self, concentration_pct) -> np.ndarray:
        """Rate of the tube-destruction index (1/s): (C - C_d)+ / K_f."""
        return np.maximum(np.asarray(concentration_pct, float) - self.tubes_threshold_pct, 0.0) / self.fast_constant_pct_s

    def rate_per_s(self, concentration_pct) -> np.ndarray:
        c = np.asarray(concentration_pct, float)
        slow = (np.maximum(c - self.slow_threshold_pct, 0.0) / (self.slow_reference_pct - self.slow_threshold_pct)) ** self.slow_exponent / self.slow_reference_s
        fast = np.maximum(c - self.fast_threshold_pct, 0.0) / self.fast_constant_pct_s
        return slow + fast

    def lethal_time_s(self, concentration_pct: float) -> float:
        """Exposure at constant concentration that gives Lambda = 1 (inf below the thresholds)."""
        rate = float(self.rate_per_s(concentration_pct))
        return math.inf if rate <= 0 else 1.0 / rate

    def lethal_index(self, concentration_pct: float, exposure_s: float) -> float:
        """Lambda after a constant exposure."""
        return float(self.rate_per_s(concentration_pct)) * exposure_s


@cache
def dose_response(solute: str) -> ConcentrationTimeLaw:
    """The calibrated law for ``"ethanol"`` or ``"phenol"``, solved from the anchors in agents.toml.

    Ethanol: C_s (Eraenkoe no-effect 0.5 %), t_ref at C_ref (2 %, 24 h), m from 1 % at 168 h:
    m = ln(t_1 / t_ref) / ln((C_ref - C_s) / (C_1 - C_s)); C_f = 4 g/dL / 0.789 (Heaton);
    K_f = int (c_rim - C_f)+ dt / (1 - Lambda_slow,rim) in the topical model of Taylor's 10 % for 15 s
    (the rim fibre reaches Lambda = 1). Phenol (anchors injected, x phi/theta of ``anchor_tissue``):
    no slow term, C_f = 2 % x phi/theta, K_f = (5 - 2) phi/theta x 60 s, C_d = 5 % x phi/theta.
    """
    table = load_catalog("agents")["dose_response"]
    check_choice("solute", solute, [k for k in table if k not in ("topical", "roles")])
    a = table[solute]
    if solute == "ethanol":
        c_s, c_ref, c_1 = float(a["no_effect_pct"]), float(a["reference_pct"]), float(a["second_pct"])
        t_ref, t_1 = float(a["reference_lethal_h"]) * HOUR_S, float(a["second_lethal_h"]) * HOUR_S
        m = math.log(t_1 / t_ref) / math.log((c_ref - c_s) / (c_1 - c_s))
        c_f = float(a["fast_no_effect_g_dl"]) / float(load_catalog("agents")["systemic"]["ethanol_density_g_ml"])
        slow = ConcentrationTimeLaw(solute, c_s, c_ref, t_ref, m, c_f, math.inf)
        excess = lambda c: np.maximum(np.asarray(c, float) - c_f, 0.0)
        run = topical_exposure("ethanol", float(a["fast_anchor_pct"]), float(a["fast_anchor_s"]), {"slow": slow.rate_per_s, "excess": excess})
        k_f = run.at_rim("excess") / (1.0 - run.at_rim("slow"))
        return ConcentrationTimeLaw(solute, c_s, c_ref, t_ref, m, c_f, k_f, float(a["tubes_threshold_pct"]))
    co = transport_coefficients("phenol-water", a["anchor_tissue"])
    dilution = co.volume_fraction / co.capacity_fraction
    c_p = float(a["no_effect_pct"]) * dilution
    k_p = (float(a["neurolytic_pct"]) * dilution - c_p) * float(a["neurolytic_lethal_s"])
    return ConcentrationTimeLaw(solute, c_p, c_p + 1.0, math.inf, 1.0, c_p, k_p, float(a["tubes_threshold_pct"]) * dilution)


@dataclass(frozen=True)
class TopicalExposure:
    """A nerve cross-section after a topical exposure and its wash-out: nodal radii and dose integrals."""

    radius_m: np.ndarray
    nerve_radius_m: float
    rim_depth_m: float
    doses: Mapping[str, np.ndarray]
    peak_pct: np.ndarray

    def at_rim(self, name: str) -> float:
        """The dose ``name`` at the rim fibre (``rim_depth_m`` under the sheath)."""
        return float(np.interp(self.nerve_radius_m - self.rim_depth_m, self.radius_m, self.doses[name]))

    def killed_depth_m(self, name: str = "lethal") -> float:
        """Depth under the sheath of the deepest node with dose >= 1 (0: none; R: the whole nerve)."""
        inside = self.radius_m <= self.nerve_radius_m * (1 + 1e-12)
        hit = inside & (self.doses[name] >= 1.0)
        return float(self.nerve_radius_m - self.radius_m[hit].min()) if hit.any() else 0.0

    def killed_area_fraction(self, name: str = "lethal") -> float:
        """Share of the endoneurial cross-section with dose >= 1 (P1 nodes, area-weighted)."""
        r = self.radius_m[self.radius_m <= self.nerve_radius_m * (1 + 1e-12)]
        area = np.gradient(r**2)
        return float(area[self.doses[name][: len(r)] >= 1.0].sum() / area.sum())


def topical_exposure(agent_id: str, bath_pct: float, exposure_s: float, rates: Mapping | None = None, *, cells: int | None = None,
                     washout_s: float | None = None, dt_s: float = 0.05) -> TopicalExposure:
    """Taylor's topical experiment as a model (``agents.toml [dose_response.topical]``).

    Endoneurium 0 <= r <= R (the agent's "nerve" coefficients), perineurium R..R+L_p ("perineurium"),
    bath at r = R + L_p held at ``bath_pct`` for ``exposure_s`` (solved for u = bath - c), then
    washed (c = 0 there) for ``washout_s``; theta dc/dt = div(D_eff grad c), backward Euler,
    no clearance (seconds). ``rates``: name -> rate(c) integrated (default: the agent's lethal
    and tubes rates).
    """
    top = load_catalog("agents")["dose_response"]["topical"]
    radius, sheath = float(top["nerve_radius_m"]), float(top["perineurium_m"])
    n = int(cells or top["cells"])
    washout = float(top["washout_s"]) if washout_s is None else float(washout_s)
    agent = neurolytic_agent(agent_id)
    if rates is None:
        law = dose_response(agent.solute)
        rates = {"lethal": law.rate_per_s, "tubes": law.tubes_rate_per_s}
    r = np.concatenate([np.linspace(0.0, radius, n + 1), np.linspace(radius, radius + sheath, 11)[1:]])
    mid = 0.5 * (r[1:] + r[:-1])
    nerve, wall = transport_coefficients(agent_id, "nerve"), transport_coefficients(agent_id, "perineurium")
    inner = mid < radius
    ops = cylinder_operators(r, np.where(inner, nerve.diffusivity_m2_s, wall.diffusivity_m2_s),
                             np.where(inner, nerve.capacity_fraction, wall.capacity_fraction), [len(r) - 1])
    bath = float(bath_pct)
    u = np.full(len(r), bath)
    u[-1] = 0.0
    acc = ExposureAccumulator(bath - u, rates)
    solver = TransportSolver(ops, dt_s)
    for _ in range(round(exposure_s / dt_s)):
        u = solver.step(u)
        acc.advance(bath - u, dt_s)
    c = bath - u
    c[-1] = 0.0
    acc.restart(c)
    wash_dt = 10 * dt_s
    solver = TransportSolver(ops, wash_dt)
    for _ in range(round(washout / wash_dt)):
        c = solver.step(c)
        acc.advance(c, wash_dt)
    return TopicalExposure(r, radius, float(top["rim_depth_m"]), {k: v.copy() for k, v in acc.doses.items()}, acc.peak.copy())


@dataclass(frozen=True)
class SystemicExposure:
    """Total solute given and its systemic measure against a published threshold."""

    agent: str
    total_volume_ml: float
    ethanol_g: float = 0.0
    peak_bac_permille: float = 0.0  # Widmark, g per kg of blood (upper bound)
    peak_bac_g_l: float = 0.0
    phenol_mg: float = 0.0
    phenol_toxic_mg: float = 0.0
    over_threshold: bool = False
    source: str = ""


def ethanol_grams(volume_ml: float, concentration_pct: float) -> float:
    """A = V x C/100 x 0.789 g/mL (grams of ethanol in a % v/v solution)."""
    return volume_ml * concentration_pct / 100.0 * float(load_catalog("agents")["systemic"]["ethanol_density_g_ml"])


def widmark_peak_permille(ethanol_g: float, weight_kg: float, sex: str = "male") -> float:
    """Widmark peak blood alcohol A / (r W) in g/kg (permille): full absorption, no elimination."""
    sys_ = load_catalog("agents")["systemic"]
    check_choice("sex", sex, ["male", "female"])
    check_range("weight_kg", weight_kg, *WEIGHT_RANGE_KG, unit="kg")
    return ethanol_g / (float(sys_[f"widmark_r_{sex}"]) * weight_kg)


def millimolar_per_pct(solute: str) -> float:
    """mmol/L of one percent: ethanol (% v/v) 10 mL/L x 0.789 g/mL / 46.07 g/mol = 171.3; phenol (% w/v) 10 g/L / 94.11 g/mol = 106.3."""
    check_choice("solute", solute, ["ethanol", "phenol"])
    grams_per_l = 10.0 * (float(load_catalog("agents")["systemic"]["ethanol_density_g_ml"]) if solute == "ethanol" else 1.0)
    return grams_per_l / float(load_catalog("agents")["molar_mass_g_mol"][solute]) * 1e3


def phenol_milligrams(volume_ml: float, concentration_pct: float) -> float:
    """mg = V (mL) x C (% w/v) x 10 mg/mL per %."""
    return volume_ml * concentration_pct * MG_PER_ML_PER_PCT


def systemic_exposure(agent_id: str, concentration_pct: float, volume_ml: float, injections: int = 1,
                      weight_kg: float = 70.0, sex: str = "male") -> SystemicExposure:
    """Total ethanol g and Widmark peak, or total phenol mg against the ~1 g lethal level."""
    agent = check_neurolytic_injection(agent_id, concentration_pct, volume_ml)
    n = int(check_range("injections", injections, 1, 20))
    check_range("weight_kg", weight_kg, *WEIGHT_RANGE_KG, unit="kg")
    total_ml = n * volume_ml
    sys_ = load_catalog("agents")["systemic"]
    if agent.solute == "ethanol":
        grams = ethanol_grams(total_ml, concentration_pct)
        permille = widmark_peak_permille(grams, weight_kg, sex)
        return SystemicExposure(agent_id, total_ml, ethanol_g=grams, peak_bac_permille=permille,
                                peak_bac_g_l=permille * float(sys_["blood_density_g_ml"]),
                                source=sys_["sources"]["widmark_r_male"])
    mg = phenol_milligrams(total_ml, concentration_pct)
    limit = float(sys_["phenol_toxic_mg"])
    return SystemicExposure(agent_id, total_ml, phenol_mg=mg, phenol_toxic_mg=limit, over_threshold=mg >= limit,
                            source=sys_["sources"]["phenol_toxic_mg"])


# ---------------------------------------------------------------------------------------
# Local anaesthetics: catalog and maximum dose
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Anaesthetic:
    """A local anaesthetic: dose limits (plain / with epinephrine) and concentrations."""

    id: str
    max_mg_per_kg_plain: float
    cap_mg_plain: float
    max_mg_per_kg_epinephrine: float
    cap_mg_epinephrine: float
    concentration_max_pct: float
    reference_pct: float
    onset_like: str
    sources: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), compare=False)


def anaesthetics() -> dict[str, Anaesthetic]:
    """All catalogued local anaesthetics by id."""
    return catalog_records(Anaesthetic, load_catalog("anaesthetics")["agent"])


def anaesthetic(agent_id: str) -> Anaesthetic:
    table = anaesthetics()
    check_choice("agent", agent_id, sorted(table))
    return table[agent_id]


def check_block_inputs(agent_id: str, concentration_pct: float, volume_ml: float, weight_kg: float | None) -> Anaesthetic:
    """Validate agent, concentration, volume and weight (None: not checked here) before any computation."""
    agent = anaesthetic(agent_id)
    check_range("concentration_pct", concentration_pct, 0.0, agent.concentration_max_pct, low_inclusive=False, unit=f"% w/v for {agent_id}")
    check_range("volume_ml", volume_ml, 0.0, MAX_VOLUME_ML, low_inclusive=False, unit="mL")
    if weight_kg is not None:
        check_range("weight_kg", weight_kg, *WEIGHT_RANGE_KG, unit="kg")
    return agent


def max_dose_check(agent: str, concentration_pct: float, volume_ml: float, weight_kg: float,
                   epinephrine: bool = False) -> tuple[float, float, bool]:
    """(dose_mg, limit_mg, over): dose = C x 10 x V; limit = min(mg/kg x weight, cap).

    The mg/kg and cap are the plain or the with-epinephrine values. ``over`` is dose > limit.
    """
    a = check_block_inputs(agent, concentration_pct, volume_ml, weight_kg)
    dose = concentration_pct * MG_PER_ML_PER_PCT * volume_ml
    per_kg, cap = (a.max_mg_per_kg_epinephrine, a.cap_mg_epinephrine) if epinephrine else (a.max_mg_per_kg_plain, a.cap_mg_plain)
    limit = min(per_kg * weight_kg, cap)
    return dose, limit, dose > limit
