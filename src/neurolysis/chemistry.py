"""Chemical neurolysis and local-anaesthetic block: agent catalogs, dose responses, limits.

Neurolytic agents (``data/agents.toml``, docs/models/chemical.md). An axon dies when its
lethal index reaches one,

    Lambda = integral rate(C(t)) dt >= 1,
    rate(C) = ((C - C_s)+ / (C_ref - C_s))^m / t_ref  +  (C - C_f)+ / K_f     (1/s)

a slow cytotoxic term (days at 1-2 % ethanol) plus a fast solvent/denaturing term
(seconds at 10-100 % ethanol, > 2 % phenol). Parameters are solved from published
anchors at load time (:func:`dose_response`), so the data file holds only the anchors.

Local anaesthetics (``data/anaesthetics.toml``, docs/models/block.md). The perineural
depot is absorbed at k_d and the nerve takes up the drug at k_in:

    C_n(t) = C_inj k_in / (k_in - k_d) (exp(-k_d t) - exp(-k_in t)),
    k_d = k_d,20 (20 mL / V)^p  x eps (with epinephrine)  / (1 + delta) (with dexamethasone),

sensory conduction is blocked while sum_i C_n,i / C_m,i > 1 (additive for mixtures),
C_m = C_ref exp(-L); motor while the same sum exceeds kappa. Between patients k_d is
log-normal (sigma = CV of the ulnar-block duration), giving median/p10/p90 hours.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType

import numpy as np
from scipy.optimize import brentq, fsolve

from neurolysis._catalog import load_catalog
from neurolysis.physics.transport import effective_diffusivity
from neurolysis.tissue import load_tissue
from neurolysis.validation import ValidationError, check_choice, check_range

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
    sources: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), compare=False)


def neurolytic_agents() -> dict[str, NeurolyticAgent]:
    """All catalogued neurolytic agents by id."""
    out = {}
    for agent_id, e in load_catalog("agents")["agent"].items():
        out[agent_id] = NeurolyticAgent(
            agent_id, e["name"], e["solute"], e["concentration_unit"], float(e["concentration_min_pct"]),
            float(e["concentration_max_pct"]), float(e["diffusivity_water_37c_m2_s"]), float(e["vehicle_diffusion_factor"]),
            float(e["partition_tissue_blood"]), MappingProxyType(dict(e.get("sources", {}))),
        )
    return out


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
    """Per-tissue coefficients of phi dc/dt = div(D_eff grad c) - k phi c."""

    diffusivity_m2_s: float  # D_eff (tissue-averaged conductance)
    volume_fraction: float  # phi (capacity and bolus fill fraction)
    clearance_per_s: float  # k


def transport_coefficients(agent_id: str, tissue: str) -> TransportCoefficients:
    """D_eff = phi D_water v f / lambda^2, phi, and flow-limited k = w_b / partition.

    w_b = perfusion_w_m3_k / (rho_b c_b) with the blood values of ``tissues.toml``.
    """
    agent = neurolytic_agent(agent_id)
    table = load_catalog("agents")["transport_tissue"]
    check_choice("tissue", tissue, sorted(k for k in table if k != "sources"))
    t = table[tissue]
    blood = load_tissue("blood")
    perfusion_per_s = load_tissue(t["perfusion_tissue"]).perfusion_w_m3_k / (blood.density_kg_m3 * blood.heat_capacity_j_kg_k)
    d_eff = effective_diffusivity(agent.diffusivity_water_37c_m2_s * agent.vehicle_diffusion_factor,
                                  float(t["volume_fraction"]), float(t["tortuosity"]), float(t.get("diffusion_factor", 1.0)))
    return TransportCoefficients(d_eff, float(t["volume_fraction"]), perfusion_per_s / agent.partition_tissue_blood)


@dataclass(frozen=True)
class ConcentrationTimeLaw:
    """Axon lethal-index rate (1/s) as a function of concentration (in % of the agent's unit).

    rate(C) = ((C - C_s)+ / (C_ref - C_s))^m / t_ref + (C - C_f)+ / K_f ; either term may be
    absent (t_ref = inf or K_f = inf).
    """

    solute: str
    slow_threshold_pct: float
    slow_reference_pct: float
    slow_reference_s: float
    slow_exponent: float
    fast_threshold_pct: float
    fast_constant_pct_s: float

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
    m = ln(t_1 / t_ref) / ln((C_ref - C_s) / (C_1 - C_s)); C_f = 4 g/dL / 0.789 (Heaton),
    K_f = (10 % - C_f) x 15 s (Taylor). Phenol: no slow term, C_f = 2 %, K_f = (5 - 2) x 60 s.
    """
    table = load_catalog("agents")["dose_response"]
    check_choice("solute", solute, sorted(table))
    a = table[solute]
    if solute == "ethanol":
        c_s, c_ref, c_1 = float(a["no_effect_pct"]), float(a["reference_pct"]), float(a["second_pct"])
        t_ref, t_1 = float(a["reference_lethal_h"]) * HOUR_S, float(a["second_lethal_h"]) * HOUR_S
        m = math.log(t_1 / t_ref) / math.log((c_ref - c_s) / (c_1 - c_s))
        c_f = float(a["fast_no_effect_g_dl"]) / float(load_catalog("agents")["systemic"]["ethanol_density_g_ml"])
        k_f = (float(a["fast_anchor_pct"]) - c_f) * float(a["fast_anchor_s"])
        return ConcentrationTimeLaw(solute, c_s, c_ref, t_ref, m, c_f, k_f)
    c_p = float(a["no_effect_pct"])
    k_p = (float(a["neurolytic_pct"]) - c_p) * float(a["neurolytic_lethal_s"])
    return ConcentrationTimeLaw(solute, c_p, c_p + 1.0, math.inf, 1.0, c_p, k_p)


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
    out = {}
    for agent_id, e in load_catalog("anaesthetics")["agent"].items():
        out[agent_id] = Anaesthetic(
            agent_id, float(e["max_mg_per_kg_plain"]), float(e["cap_mg_plain"]), float(e["max_mg_per_kg_epinephrine"]),
            float(e["cap_mg_epinephrine"]), float(e["concentration_max_pct"]), float(e["reference_pct"]), e["onset_like"],
            MappingProxyType(dict(e.get("sources", {}))),
        )
    return out


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


# ---------------------------------------------------------------------------------------
# Local anaesthetics: block model
# ---------------------------------------------------------------------------------------


def intraneural_fraction(t_s, k_in_per_s, k_d_per_s) -> np.ndarray:
    """C_n / C_inj = k_in / (k_in - k_d) (exp(-k_d t) - exp(-k_in t)); k_in t e^(-k t) when equal."""
    t, ki, kd = np.broadcast_arrays(np.asarray(t_s, float), np.asarray(k_in_per_s, float), np.asarray(k_d_per_s, float))
    diff = ki - kd
    close = np.abs(diff) < 1e-9 * ki
    safe = np.where(close, 1.0, diff)
    general = ki / safe * (np.exp(-kd * t) - np.exp(-ki * t))
    return np.where(close, ki * t * np.exp(-ki * t), general)


@dataclass(frozen=True)
class Component:
    """One drug in the depot: injected concentration and its kinetic constants at this volume."""

    concentration_pct: float
    blocking_pct: float  # C_m (sensory)
    k_in_per_s: float
    k_d_per_s: float


def block_window_s(components: Sequence[Component], level: float = 1.0, kd_scale=1.0, horizon_s: float = 96 * HOUR_S):
    """(onset_s, end_s) while sum_i C_n,i / C_m,i > level; NaN where never reached.

    ``kd_scale`` (scalar or array of samples) multiplies every k_d. Vectorised bisection
    on the unimodal sum: peak by a log-spaced scan, then onset and end by 60 halvings.
    """
    scale = np.atleast_1d(np.asarray(kd_scale, float))

    def excess(t):
        total = np.zeros(np.broadcast(t, scale).shape)
        for c in components:
            total = total + c.concentration_pct / c.blocking_pct * intraneural_fraction(t, c.k_in_per_s, c.k_d_per_s * scale)
        return total - level

    grid = np.concatenate([[0.0], np.geomspace(1.0, horizon_s, 400)])
    values = excess(grid[:, None])  # (n_grid, n_samples)
    i_peak = np.argmax(values, axis=0)
    t_peak = grid[i_peak]
    reached = values[i_peak, np.arange(len(scale))] > 0

    def bisect(lo, hi, rising):
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            above = excess(mid) > 0
            move_hi = above if rising else ~above
            hi = np.where(move_hi, mid, hi)
            lo = np.where(move_hi, lo, mid)
        return 0.5 * (lo + hi)

    onset = bisect(np.zeros_like(t_peak), t_peak, True)
    end = bisect(t_peak, np.full_like(t_peak, horizon_s), False)
    return np.where(reached, onset, np.nan), np.where(reached, end, np.nan)


@dataclass(frozen=True)
class BlockCalibration:
    """Block-model parameters solved from the anchors (SI: rates in 1/s)."""

    log_margin: float  # L, C_m = C_ref exp(-L)
    motor_ratio: float  # kappa
    k_d20_per_s: Mapping[str, float]
    k_in_per_s: Mapping[str, float]
    volume_exponent: float
    reference_volume_ml: float
    epinephrine_factor: float
    duration_cv: float
    dexamethasone: Mapping[str, float]

    def blocking_pct(self, agent_id: str) -> float:
        return anaesthetic(agent_id).reference_pct * math.exp(-self.log_margin)

    def component(self, agent_id: str, concentration_pct: float, volume_ml: float, epinephrine: bool = False,
                  dexamethasone: bool = False) -> Component:
        k_d = self.k_d20_per_s[agent_id] * (self.reference_volume_ml / volume_ml) ** self.volume_exponent
        if epinephrine:
            k_d *= self.epinephrine_factor
        if dexamethasone:
            k_d /= 1.0 + self.dexamethasone[agent_id]
        return Component(concentration_pct, self.blocking_pct(agent_id), self.k_in_per_s[agent_id], k_d)


def _anchors() -> dict[str, Mapping]:
    return {a["id"]: a for a in load_catalog("anaesthetics")["block"]["anchor"]}


def _duration_s(cal: BlockCalibration, agent_id, pct, volume, epi=False, motor=False):
    """(duration, onset) in s; a block never reached counts as a 1 ms block (keeps root finders bracketed)."""
    onset, end = block_window_s([cal.component(agent_id, pct, volume, epi)], cal.motor_ratio if motor else 1.0)
    if np.isnan(onset[0]):
        return 1e-3, 1e-3
    return float(end[0] - onset[0]), float(onset[0])


@cache
def block_calibration() -> BlockCalibration:
    """Solve the block parameters from the calibration anchors of ``anaesthetics.toml``.

    1. mepivacaine: L, k_d,20 and k_in from 30 mL 1.5 % / 1 % (270 / 226 min) and the
       3 min onset of Laur 2012 (with epinephrine);
    2. bupivacaine: k_d,20 and k_in from Laur 850 min and 6 min onset; kappa from 1109 min;
    3. ropivacaine (15 h sciatic), lidocaine (145 min), chloroprocaine (75 min at 3 %):
       k_d,20 with k_in borrowed (``onset_like``).
    """
    block = load_catalog("anaesthetics")["block"]
    anchors = _anchors()
    agents = list(anaesthetics())
    dex = {a: float(block["dexamethasone"].get(a, block["dexamethasone_prolongation_default"])) for a in agents}
    base = dict(volume_exponent=float(block["volume_exponent"]), reference_volume_ml=float(block["reference_volume_ml"]),
                epinephrine_factor=float(block["epinephrine_clearance_factor"]), duration_cv=float(block["duration_cv"]),
                dexamethasone=MappingProxyType(dex))

    def cal_with(log_margin, kappa, k_d, k_in):
        return BlockCalibration(log_margin, kappa, MappingProxyType(dict(k_d)), MappingProxyType(dict(k_in)), **base)

    m15, m10, mepi_epi = anchors["mepivacaine-axillary-1.5pct-30ml"], anchors["mepivacaine-axillary-1pct-30ml"], anchors["mepivacaine-infraclavicular-epinephrine"]

    def mepi_residual(x):
        log_margin, k_d, k_in = math.exp(x[0]), math.exp(x[1]), math.exp(x[2])
        cal = cal_with(log_margin, 1.0, {"mepivacaine": k_d}, {"mepivacaine": k_in})
        t15, _ = _duration_s(cal, "mepivacaine", m15["concentration_pct"], m15["volume_ml"])
        t10, _ = _duration_s(cal, "mepivacaine", m10["concentration_pct"], m10["volume_ml"])
        _, onset = _duration_s(cal, "mepivacaine", mepi_epi["concentration_pct"], mepi_epi["volume_ml"], True)
        return [math.log(t15 / (m15["sensory_min"] * MINUTE_S)), math.log(t10 / (m10["sensory_min"] * MINUTE_S)),
                math.log(onset / (mepi_epi["onset_min"] * MINUTE_S))]

    x, info, ok, msg = fsolve(mepi_residual, [math.log(2.5), math.log(1.5e-4), math.log(4e-4)], full_output=True, xtol=1e-12)
    if ok != 1 or max(abs(r) for r in info["fvec"]) > 1e-6:
        raise RuntimeError(f"block calibration (mepivacaine) did not converge: {msg}")
    log_margin, k_d, k_in = (math.exp(v) for v in x)
    k_d_all, k_in_all = {"mepivacaine": k_d}, {"mepivacaine": k_in}

    b = anchors["bupivacaine-infraclavicular-0.5pct"]

    def bupi_residual(y):
        cal = cal_with(log_margin, 1.0, {"bupivacaine": math.exp(y[0])}, {"bupivacaine": math.exp(y[1])})
        t, onset = _duration_s(cal, "bupivacaine", b["concentration_pct"], b["volume_ml"])
        return [math.log(t / (b["sensory_min"] * MINUTE_S)), math.log(onset / (b["onset_min"] * MINUTE_S))]

    y, info, ok, msg = fsolve(bupi_residual, [math.log(5e-5), math.log(2e-4)], full_output=True, xtol=1e-12)
    if ok != 1 or max(abs(r) for r in info["fvec"]) > 1e-6:
        raise RuntimeError(f"block calibration (bupivacaine) did not converge: {msg}")
    k_d_all["bupivacaine"], k_in_all["bupivacaine"] = math.exp(y[0]), math.exp(y[1])

    def motor_residual(kappa):
        cal = cal_with(log_margin, kappa, k_d_all, k_in_all)
        t, _ = _duration_s(cal, "bupivacaine", b["concentration_pct"], b["volume_ml"], motor=True)
        return math.log(t / (b["motor_min"] * MINUTE_S))

    kappa = brentq(motor_residual, 0.05, 0.999, xtol=1e-14)

    for anchor_id in ("ropivacaine-sciatic-0.5pct-20ml", "lidocaine-typical", "chloroprocaine-3pct"):
        a = anchors[anchor_id]
        agent = a["agent"]
        k_in_all[agent] = k_in_all[anaesthetic(agent).onset_like]

        def residual(log_kd, a=a, agent=agent):
            cal = cal_with(log_margin, kappa, {**k_d_all, agent: math.exp(log_kd)}, k_in_all)
            t, _ = _duration_s(cal, agent, a["concentration_pct"], a["volume_ml"], bool(a["epinephrine"]))
            return math.log(t / (a["sensory_min"] * MINUTE_S))

        k_d_all[agent] = math.exp(brentq(residual, math.log(1e-7), math.log(1e-2), xtol=1e-14))
    return cal_with(log_margin, kappa, k_d_all, k_in_all)


@dataclass(frozen=True)
class Spread:
    """Median and 10th/90th percentiles (hours)."""

    median: float
    p10: float
    p90: float


@dataclass(frozen=True)
class BlockOutcome:
    """Nerve-block prediction: onset, sensory and motor durations, dose against the limit."""

    agent: str
    onset_min: float
    sensory_h: Spread
    motor_h: Spread
    dose_mg: float
    limit_mg: float
    over_limit: bool


def _spread(values_s: np.ndarray) -> Spread:
    p10, p50, p90 = np.nanpercentile(values_s / HOUR_S, [10, 50, 90])
    return Spread(float(p50), float(p10), float(p90))


def simulate_block(agent: str, concentration_pct: float, volume_ml: float, weight_kg: float, epinephrine: bool = False,
                   dexamethasone: bool = False, samples: int = 400, seed: int = 0, override_max_dose: bool = False) -> BlockOutcome:
    """Onset (median, min) and sensory/motor block hours {median, p10, p90} for one injection.

    Inputs are validated first; a dose over the maximum raises ValidationError unless
    ``override_max_dose``. Between-patient spread: k_d x exp(sigma z), z ~ N(0, 1), seeded.
    """
    dose, limit, over = max_dose_check(agent, concentration_pct, volume_ml, weight_kg, epinephrine)
    if over and not override_max_dose:
        raise ValidationError(f"volume_ml = {volume_ml:g} mL of {concentration_pct:g} % {agent} = {dose:g} mg: exceeds the maximum dose "
                              f"{limit:g} mg for {weight_kg:g} kg ({'with' if epinephrine else 'without'} epinephrine); reduce it or override")
    n = int(check_range("samples", samples, 1, 100000))
    cal = block_calibration()
    scale = np.exp(cal.duration_cv * np.random.default_rng(seed).standard_normal(n))
    comp = [cal.component(agent, concentration_pct, volume_ml, epinephrine, dexamethasone)]
    onset, end = block_window_s(comp, 1.0, scale)
    m_onset, m_end = block_window_s(comp, cal.motor_ratio, scale)
    sensory, motor = end - onset, m_end - m_onset
    if np.all(np.isnan(sensory)):
        raise ValidationError(f"concentration_pct = {concentration_pct:g}: below the blocking concentration of {agent} "
                              f"({cal.blocking_pct(agent):.3g} %), no block")
    return BlockOutcome(agent, float(np.nanmedian(onset)) / MINUTE_S, _spread(sensory), _spread(motor), dose, limit, over)


def block_duration_min(components: Sequence[tuple[str, float]], volume_ml: float, epinephrine: bool = False,
                       dexamethasone: bool = False, motor: bool = False) -> float:
    """Median-patient block duration (end - onset, minutes) of a depot of one or more agents.

    ``components``: (agent, concentration_pct) pairs, e.g. a 1:1 mixture at half strengths.
    """
    cal = block_calibration()
    comps = [cal.component(a, c, volume_ml, epinephrine, dexamethasone) for a, c in components]
    onset, end = block_window_s(comps, cal.motor_ratio if motor else 1.0)
    return float(end[0] - onset[0]) / MINUTE_S
