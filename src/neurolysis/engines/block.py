"""Local-anaesthetic nerve block: onset and duration of a temporary conduction block (no axon dies).

The perineural depot is absorbed at k_d and the nerve takes up the drug at k_in:

    C_n(t) = C_inj k_in / (k_in - k_d) (exp(-k_d t) - exp(-k_in t)),
    k_d = k_d,20 (20 mL / V)^p  x eps (with epinephrine)  / (1 + delta) (with dexamethasone),

sensory conduction is blocked while sum_i C_n,i / C_m,i > 1 (additive for mixtures),
C_m = C_ref exp(-L); motor while the same sum exceeds kappa. Between patients k_d is
log-normal (sigma = CV of the ulnar-block duration), giving median/p10/p90 hours.

Catalog and maximum dose: :mod:`neurolysis.chemistry`; calibration and misses: docs/models/block.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

import numpy as np
from scipy.optimize import brentq, fsolve

from neurolysis._catalog import load_catalog
from neurolysis.chemistry import HOUR_S, MINUTE_S, anaesthetic, anaesthetics, max_dose_check
from neurolysis.validation import ValidationError, check_range


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
