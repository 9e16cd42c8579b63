"""How long relief lasts as the killed pain axons regrow (``docs/models/nerve.md``).

A killed axon regrows from the proximal edge of its lethal stretch after a delay, through
the coagulated stretch (length l_i) at a slow rate and through the intact endoneurial tubes
beyond it (length d_i, up to the end organ) at the ordinary rate:

    T_i = t_delay + l_i / v_scar + d_i / v_tube          [days]

Pain is blocked while the fraction of pain axons still dead is >= f_block (0.8); relief
ends when enough have regrown for that to fail. No block, no relief. (t_delay, v_scar,
v_tube) are drawn per Monte Carlo draw; v_scar's median is the one parameter calibrated
to a published duration (MacVicar 2013, 15 months), the rest come from regrowth data.
Parameters and sources: ``data/nerve_model.toml``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from neurolysis._catalog import load_catalog
from neurolysis.anatomy.scene import Nerve
from neurolysis.validation import check_choice, check_range

_Z10 = 1.2815515655446004  # standard normal 90th percentile
TUBELESS_INJURIES = ("sunderland-3", "sunderland-5")
"""Injuries that destroy the endoneurial tubes over the lethal stretch (coagulation, an
excision gap): regrowth crosses it at the slow scar rate. Sunderland 2 keeps them."""


def model_parameters() -> Mapping:
    return load_catalog("nerve_model")


def methods() -> tuple[str, ...]:
    """Methods the nerve model knows (``data/nerve_model.toml [method]``)."""
    return tuple(model_parameters()["method"])


@dataclass(frozen=True)
class RegrowthDraws:
    """Monte Carlo draws of the uncertain rates: delay (days), scar and tube rates (m/day)."""

    delay_days: np.ndarray
    scar_rate_m_per_day: np.ndarray
    tube_rate_m_per_day: np.ndarray


def regrowth_draws(seed: int, n_draws: int | None = None, *, scar_rate_median_mm_per_day: float | None = None) -> RegrowthDraws:
    """Seeded draws: t_delay ~ U[min, max]; v_tube, v_scar lognormal (median, sigma_ln).

    v_tube's sigma_ln = ln(p90 / median) / z_0.9. ``scar_rate_median_mm_per_day``
    overrides the catalogued (calibrated) median, for calibration only.
    """
    p = model_parameters()["regrowth"]
    n = int(p["n_draws"]) if n_draws is None else int(n_draws)
    rng = np.random.default_rng([int(seed), 1])
    z = rng.standard_normal((2, n))
    delay = p["delay_min_days"] + (p["delay_max_days"] - p["delay_min_days"]) * rng.random(n)
    tube_med = float(p["tube_rate_median_mm_per_day"])
    tube_sigma = math.log(float(p["tube_rate_p90_mm_per_day"]) / tube_med) / _Z10
    scar_med = float(p["scar_rate_median_mm_per_day"] if scar_rate_median_mm_per_day is None else scar_rate_median_mm_per_day)
    scar_sigma = float(p["scar_rate_sigma_ln"])
    return RegrowthDraws(delay, 1e-3 * scar_med * np.exp(scar_sigma * z[0]), 1e-3 * tube_med * np.exp(tube_sigma * z[1]))


def axon_growth_factors(n: int, seed: int | None = None) -> np.ndarray:
    """Per-axon growth factors g_i = exp(sigma z_i), z_i the n normal quantiles (i + 1/2)/n,
    in a seeded random order (stratified: the spread is exact for any n)."""
    sigma = float(model_parameters()["regrowth"]["axon_rate_sigma_ln"])
    z = ndtri((np.arange(n) + 0.5) / n)
    if seed is not None:
        z = np.random.default_rng([int(seed), 2]).permutation(z)
    return np.exp(sigma * z)


@dataclass(frozen=True)
class Relief:
    """Relief duration over the Monte Carlo draws (months); None when not modelled."""

    median: float | None
    p10: float | None
    p90: float | None
    mechanism: str  # "regrowth" | "none" (no block) | "not-modelled"
    note: str = ""

    def to_dict(self) -> dict:
        r = lambda v: None if v is None else round(float(v), 3)  # noqa: E731
        return {"median": r(self.median), "p10": r(self.p10), "p90": r(self.p90)}


def relief_days(
    lethal_length_m: np.ndarray,
    intact_length_m: np.ndarray,
    n_pain: int,
    draws: RegrowthDraws,
    injury: str,
    block_fraction: float,
    axon_factor: np.ndarray | None = None,
) -> np.ndarray:
    """Relief (days) in each draw from the killed pain axons' lethal and intact path lengths.

    T_i = t_delay + (l_i / v_scar + d_i / v_tube) / g_i (Sunderland 3 and 5: no tubes over
    l_i), or with v_scar replaced by v_tube (Sunderland 2); g_i is axon i's own growth factor (default 1). With k killed of n_pain, pain stays blocked while k - j >= f n_pain
    (j axons regrown): relief ends at the j*-th smallest T_i, j* = floor(k - f n_pain) + 1.
    Zero in every draw when k < f n_pain (no block).
    """
    lethal = np.asarray(lethal_length_m, float)
    intact = np.asarray(intact_length_m, float)
    vigour = np.ones_like(lethal) if axon_factor is None else np.asarray(axon_factor, float)
    k = lethal.size
    m = draws.delay_days.size
    need = block_fraction * n_pain
    if n_pain == 0 or k == 0 or k < need - 1e-9:
        return np.zeros(m)
    j = int(math.floor(k - need + 1e-9)) + 1
    scar = draws.scar_rate_m_per_day if injury in TUBELESS_INJURIES else draws.tube_rate_m_per_day
    out = np.empty(m)
    chunk = max(1, 4_000_000 // k)
    for a in range(0, m, chunk):
        b = min(m, a + chunk)
        t = draws.delay_days[a:b, None] + (lethal[None, :] / scar[a:b, None] + intact[None, :] / draws.tube_rate_m_per_day[a:b, None]) / vigour[None, :]
        out[a:b] = np.partition(t, j - 1, axis=1)[:, j - 1]
    return out


def summarise(days: np.ndarray, mechanism: str, note: str) -> Relief:
    months = days / float(model_parameters()["regrowth"]["days_per_month"])
    p10, med, p90 = np.percentile(months, [10, 50, 90])
    return Relief(float(med), float(p10), float(p90), mechanism, note)


def relief_for_lesion(lesion_length_m: float, distal_m: float, method: str, *, seed: int = 0, scar_rate_median_mm_per_day: float | None = None) -> Relief:
    """Relief of a complete lesion: every pain axon coagulated over ``lesion_length_m``,
    then ``distal_m`` of intact nerve to the end organ (the calibration/validation case)."""
    check_choice("method", method, methods())
    lesion = check_range("lesion_length_m", lesion_length_m, 0.0, 1.0, low_inclusive=False, unit="m")
    distal = check_range("distal_m", distal_m, 0.0, 2.0, unit="m")
    injury = model_parameters()["method"][method]["injury"]
    if injury == "none":
        return not_modelled(method)
    draws = regrowth_draws(seed, scar_rate_median_mm_per_day=scar_rate_median_mm_per_day)
    n = 1000
    days = relief_days(np.full(n, lesion), np.full(n, distal), n, draws, injury, float(model_parameters()["block"]["pain_block_fraction"]), axon_growth_factors(n))
    return summarise(days, "regrowth", f"complete {injury} lesion of {lesion * 1e3:g} mm, {distal * 1e3:g} mm to the end organ")


def calibrate_scar_rate(anchor: str = "macvicar-2013", seed: int = 0) -> float:
    """The scar-rate median (mm/day) for which the anchor's model median relief equals the
    published median (bisection on a log scale; the median falls monotonically with the rate)."""
    a = model_parameters()["calibration"][anchor]
    target = float(a["median_months"])

    def median(rate: float) -> float:
        return relief_for_lesion(a["lesion_length_mm"] * 1e-3, a["distal_mm"] * 1e-3, a["method"], seed=seed, scar_rate_median_mm_per_day=rate).median

    lo, hi = 1e-4, 10.0
    if not median(hi) < target < median(lo):
        raise ValueError(f"calibration anchor {anchor!r}: {target} months not reachable")
    for _ in range(80):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if median(mid) > target else (lo, mid)
    return math.sqrt(lo * hi)


def not_modelled(method: str) -> Relief:
    entry = model_parameters()["method"][method]
    band = entry.get("neuromodulation_band_months")
    extra = f"; clinical benefit {band[0]:g}-{band[1]:g} months is reported and attributed to neuromodulation (literature.md F, READ-2nd), not modelled" if band else ""
    return Relief(None, None, None, "not-modelled", f"{method}: no thermal kill, so no regrowth-based relief{extra}")


def neurolytic_comparison(nerve: Nerve, horizon_months: float, seed: int = 0) -> list[dict]:
    """Relief of a complete lesion of each neurolytic method's typical length at ``nerve``
    (:func:`relief_for_lesion`; lengths in ``data/nerve_model.toml [comparison]``) and the
    procedures needed to cover ``horizon_months``."""
    cat = model_parameters()["comparison"]
    out = []
    for method, length_mm in cat["typical_lesion_mm"].items():
        relief = relief_for_lesion(length_mm * 1e-3, nerve.end_organ_m, method, seed=seed)
        needed = math.ceil(horizon_months / relief.median) if relief.median else None
        out.append({
            "method": method,
            "relief_months": relief.to_dict(),
            "procedures_needed": needed,
            "basis": f"complete lesion of {length_mm:g} mm along the nerve, {1e3 * nerve.end_organ_m:g} mm to the end organ ({cat['sources'][method]}); simulate a plan with method = {method!r} for this placement",
        })  # fmt: skip
    return out
