"""How long relief lasts: nerve injury grade, regrowth and maturation (``docs/models/nerve.md``).

Each killed pain axon i has an injury grade (Sunderland): 2 where its endoneurial tubes
survive (cryo; the rim of a thermal or chemical lesion), 3 where they are destroyed too (the
coagulated or chemically fibrosed core), 5 where the trunk is cut out (neurectomy). It
reconnects with its end organ at

    T_i = t_W + s_i / (a v_scar) + p_i / (a v g_i)                      [days]

t_W the Wallerian delay before regrowth starts, s_i its path through scar (grade 3; crossed at
the slow gap rate v_scar, and only by a share q_3 of the axons: the rest are blocked or
misdirected for good), p_i the rest of its path to the end organ along tubes (at the ordinary
rate v, axon factor g_i), a the age factor. Grade 5 axons do not reconnect (the stump is
buried or capped); a neurectomy instead carries a recurrence probability (neuroma, sprouting)
with its own time course.

A reconnected axon matures: its share of input grows from m_0 at reconnection to 1 after
tau_f / a (Buchthal's conduction and amplitude recovery). The target's nociceptive input is

    I(t) = u + (1 - u) [n_alive + sum_i h(t - T_i)] / N_pain + S(t),
    h(tau) = m_0 + (1 - m_0) min(tau a / tau_f, 1)  for tau >= 0,

u the share carried by nerves the procedure does not treat, S(t) collateral sprouting from
neighbours where the literature supports it. Relief ends when I(t) >= theta, the input at
which sensation is felt again (calibrated on adult intercostal cryo sensory recovery); it is
right-censored at the model horizon. Relief length depends on lesion length only through
the paths (s_i, p_i): length changes whether the nerve is captured, not the rates.

Uncertain rates (t_W, v, v_scar) are drawn per Monte Carlo draw. Calibration and held-out
validation are named in ``data/nerve_model.toml``; a number is never both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.special import ndtri

from neurolysis._catalog import load_catalog
from neurolysis.anatomy.scene import without_level
from neurolysis.validation import ValidationError, check_range

_Z10 = 1.2815515655446004  # standard normal 90th percentile
AGE_RANGE_YEARS = (1.0, 110.0)


def model_parameters() -> Mapping:
    return load_catalog("nerve_model")


def methods() -> tuple[str, ...]:
    """Methods the nerve model knows (``data/nerve_model.toml [method]``)."""
    return tuple(model_parameters()["method"])


def method_grade(method: str) -> int:
    """The Sunderland grade of a killed axon for ``method`` where its sampler does not say (0: no injury)."""
    return int(model_parameters()["method"][method]["grade"])


def days_per_month() -> float:
    return float(model_parameters()["recovery"]["days_per_month"])


def age_factor(age_years: float | None, young_factor: float | None = None) -> float:
    """Speed factor a of regrowth and maturation at ``age_years`` (1 for adults or unknown age).

    Piecewise linear between (young_age, young_factor) and (adult_age, 1), constant outside
    (no data beyond the calibration groups, ``[recovery.age]``); ``young_factor`` overrides
    the catalogued value (calibration only)."""
    if age_years is None:
        return 1.0
    p = model_parameters()["recovery"]["age"]
    young, adult = float(p["young_age_years"]), float(p["adult_age_years"])
    fy = float(p["young_factor"] if young_factor is None else young_factor)
    w = min(1.0, max(0.0, (float(age_years) - young) / (adult - young)))
    return fy + (1.0 - fy) * w


@dataclass(frozen=True)
class Territory:
    """What surrounds the treated nerve's target: ``untreated_share`` u of its nociceptive
    input carried by nerves the procedure leaves alone, ``sprouting_share`` the input that
    collateral sprouts from intact neighbours restore (0: not supported), the patient's
    ``age_years`` (None: adult), and for a cancer indication the ``survival_median_days`` and
    ``progression_median_days`` (:func:`relief_ends`)."""

    untreated_share: float = 0.0
    sprouting_share: float = 0.0
    age_years: float | None = None
    survival_median_days: float | None = None
    disease: str = ""
    sources: str = ""
    endpoint: str = "complete"  # the relief endpoint whose threshold ends relief (:func:`endpoint_threshold`)
    progression_median_days: float | None = None  # cancer: median time to pain beyond the treated pathway


def endpoints() -> tuple[str, ...]:
    """The relief endpoints the model tells apart (``data/nerve_model.toml [recovery.endpoints]``)."""
    return tuple(model_parameters()["recovery"]["endpoints"])


def endpoint_threshold(theta: float, endpoint: str) -> float:
    """The input share at which relief by ``endpoint`` ends: theta + q (1 - theta), with theta the
    input at which pain is felt again (calibrated) and q the share of the baseline pain back that
    ends this endpoint's relief (0 for complete relief, 0.5 for >= 50 % relief). Pain intensity
    is taken to rise linearly from 0 at theta to the baseline at the full input [UNVERIFIED]."""
    table = model_parameters()["recovery"]["endpoints"]
    if endpoint not in table:
        raise ValidationError(f"simulation.relief_endpoint = {endpoint!r}: must be one of {', '.join(table)}")
    return theta + float(table[endpoint]["pain_back"]) * (1.0 - theta)


def territory_for(scene_name: str, nerve_name: str, age_years: float | None = None, endpoint: str = "complete") -> Territory:
    """The catalogued territory of ``nerve_name`` (at any spinal level) and the disease course of
    ``scene_name`` (a template, or the template of the same procedure for a scan)."""
    cat = model_parameters()
    territories = cat.get("territory", {})
    t = territories.get(nerve_name) or territories.get(without_level(nerve_name), {})
    d = cat.get("disease_course", {}).get(scene_name, {})
    sprout = float(cat["recovery"]["sprouting"]["share"]) if t.get("collateral_sprouting", False) else 0.0
    if age_years is not None:
        check_range("patient.age_years", age_years, *AGE_RANGE_YEARS, unit="years")
    endpoint_threshold(0.0, endpoint)  # a known endpoint, else a one-line error
    return Territory(float(t.get("untreated_share", 0.0)), sprout, age_years, d.get("survival_median_days"), d.get("disease", ""),
                     "; ".join(x for x in (t.get("source", ""), d.get("source", ""), d.get("progression_source", "")) if x), endpoint,
                     d.get("progression_median_days"))  # fmt: skip


@dataclass(frozen=True, eq=False)
class KilledPaths:
    """Killed pain axons: ``scar_m`` path through scar (grade 3, 0 for grade 2), ``tube_m`` the
    rest of the path to the end organ, ``grade`` (2, 3 or 5), ``vigour`` axon growth factor g_i."""

    scar_m: np.ndarray
    tube_m: np.ndarray
    grade: np.ndarray
    vigour: np.ndarray


@dataclass(frozen=True)
class RecoveryDraws:
    """Per draw: Wallerian delay (days), tube and scar rates (m/day), recurrence time (days; inf: none)."""

    delay_days: np.ndarray
    tube_rate_m_per_day: np.ndarray
    scar_rate_m_per_day: np.ndarray
    recurrence_days: np.ndarray

    def one(self, i: int) -> RecoveryDraws:
        return RecoveryDraws(*(a[i : i + 1] for a in (self.delay_days, self.tube_rate_m_per_day, self.scar_rate_m_per_day, self.recurrence_days)))


def _lognormal(rng, n: int, median: float, sigma: float) -> np.ndarray:
    return median * np.exp(sigma * rng.standard_normal(n))


def recovery_draws(seed: int, n_draws: int | None = None) -> RecoveryDraws:
    """Seeded draws: t_W ~ U[min, max]; v, v_scar lognormal; recurrence (neurectomy) with
    probability p_rec at a lognormal time, else never."""
    p = model_parameters()["recovery"]
    n = int(p["n_draws"]) if n_draws is None else int(n_draws)
    rng = np.random.default_rng([int(seed), 1])
    delay = p["delay_min_days"] + (p["delay_max_days"] - p["delay_min_days"]) * rng.random(n)
    tube_med = float(p["tube_rate_median_mm_per_day"])
    tube = _lognormal(rng, n, tube_med, math.log(float(p["tube_rate_p90_mm_per_day"]) / tube_med) / _Z10)
    scar = _lognormal(rng, n, float(p["scar_rate_median_mm_per_day"]), float(p["scar_rate_sigma_ln"]))
    r = p["recurrence"]
    happens = rng.random(n) < float(r["probability"])
    when = _lognormal(rng, n, float(r["median_months"]) * float(p["days_per_month"]), float(r["sigma_ln"]))
    return RecoveryDraws(delay, 1e-3 * tube, 1e-3 * scar, np.where(happens, when, np.inf))


def axon_growth_factors(n: int, seed: int | None = None) -> np.ndarray:
    """Per-axon growth factors g_i = exp(sigma z_i), z_i the n normal quantiles (i + 1/2)/n,
    in a seeded random order (stratified: the spread is exact for any n)."""
    sigma = float(model_parameters()["recovery"]["axon_rate_sigma_ln"])
    z = ndtri((np.arange(n) + 0.5) / n)
    if seed is not None:
        z = np.random.default_rng([int(seed), 2]).permutation(z)
    return np.exp(sigma * z)


def crossing_mask(n: int, seed: int) -> np.ndarray:
    """Which of n grade-3 axons cross the scar: exactly round(q_3 n), in a seeded order."""
    q = float(model_parameters()["recovery"]["scar_crossing_share"])
    mask = np.arange(n) < round(q * n)
    return np.random.default_rng([int(seed), 3]).permutation(mask)


def reconnection_days(paths: KilledPaths, draws: RecoveryDraws, crosses: np.ndarray, age: float = 1.0) -> np.ndarray:
    """T_i per (draw, axon) (days); inf for axons that never reconnect (grade 5, blocked grade 3)."""
    reach = (paths.grade == 2) | ((paths.grade == 3) & crosses)
    t = (draws.delay_days[:, None] + paths.scar_m[None, :] / (age * draws.scar_rate_m_per_day[:, None])
         + paths.tube_m[None, :] / (age * draws.tube_rate_m_per_day[:, None] * paths.vigour[None, :]))  # fmt: skip
    return np.where(reach[None, :], t, np.inf)


@dataclass(frozen=True)
class InputModel:
    """I(t) = base + weight sum_i h(t - T_i) + S(t) and the threshold theta (see the module)."""

    base: float
    weight: float
    start: float  # m_0
    full_days: float  # tau_f / a
    theta: float
    sprout_share: float = 0.0
    sprout_onset_days: float = 0.0
    sprout_ramp_days: float = 1.0

    def at(self, t_days: np.ndarray, reconnect_days: np.ndarray) -> np.ndarray:
        """I at times ``t_days`` for one draw's reconnection times (direct sum: for tests and plots)."""
        t = np.asarray(t_days, float)[:, None]
        tau = t - np.asarray(reconnect_days)[None, :]
        h = np.where(tau >= 0, self.start + (1 - self.start) * np.clip(tau / self.full_days, 0, 1), 0.0)
        sprout = self.sprout_share * np.clip((t[:, 0] - self.sprout_onset_days) / self.sprout_ramp_days, 0, 1)
        return self.base + self.weight * h.sum(axis=1) + sprout

    def crossing_day(self, reconnect_days: np.ndarray, horizon_days: float, weights: np.ndarray | None = None) -> float:
        """First t with I(t) >= theta (``horizon_days`` if none before it). I is piecewise linear
        and non-decreasing, with jumps at the T_i: evaluate it at every breakpoint, then solve
        on the segment before the first one that reaches theta. ``weights`` (one per axon; default
        ``weight`` each) let axons of several nerves with different shares of the input add up."""
        return float(self.crossing_days(reconnect_days, horizon_days, (self.theta,), weights)[0])

    def crossing_days(self, reconnect_days: np.ndarray, horizon_days: float, thetas: Sequence[float], weights: np.ndarray | None = None) -> np.ndarray:
        """:meth:`crossing_day` for each threshold of ``thetas`` (the input is evaluated once)."""
        if all(self.base >= theta for theta in thetas):
            return np.zeros(len(thetas))
        reconnect_days = np.asarray(reconnect_days, float)
        keep = np.isfinite(reconnect_days) & (reconnect_days < horizon_days)
        if weights is None:  # equal weights: tied times need no stable order
            t_i = np.sort(reconnect_days[keep])
            w_i = np.full(t_i.shape, self.weight)
        else:
            order = np.argsort(reconnect_days[keep], kind="stable")
            t_i, w_i = reconnect_days[keep][order], np.asarray(weights, float)[keep][order]
        ends = t_i + self.full_days
        # The knots are t_i, the ends and the sprouting corners, sorted (a stable sort merges the
        # two sorted runs in linear time and keeps each run's entries before equal later ones).
        # Counting the t_i and ends up to each knot's last repeat gives n_on and n_full.
        n = t_i.size
        merged = np.concatenate([t_i, ends, [self.sprout_onset_days, self.sprout_onset_days + self.sprout_ramp_days, horizon_days]])
        order = np.argsort(merged, kind="stable")
        values_sorted = merged[order]
        last = np.concatenate([values_sorted[1:] != values_sorted[:-1], [True]])
        last &= (values_sorted >= 0) & (values_sorted <= horizon_days)
        knots = values_sorted[last]
        n_on = np.cumsum(order < n)[last]  # reconnected at or before the knot
        n_full = np.cumsum((order >= n) & (order < 2 * n))[last]
        cw = np.concatenate([[0.0], np.cumsum(w_i)])  # weight reconnected (ends are in the same order)
        c_on, c_full = np.concatenate([[0.0], np.cumsum(w_i * t_i)]), np.concatenate([[0.0], np.cumsum(w_i * ends)])
        ramp = (knots * cw[n_on] - c_on[n_on]) - (knots * cw[n_full] - c_full[n_full])  # sum of w_i min(tau, tau_f) over reconnected
        h_sum = self.start * cw[n_on] + (1 - self.start) * ramp / self.full_days
        sprout = self.sprout_share * np.clip((knots - self.sprout_onset_days) / self.sprout_ramp_days, 0, 1)
        values = self.base + h_sum + sprout
        return np.array([0.0 if self.base >= theta else _first_crossing(knots, values, cw[n_on], self.start, theta, horizon_days) for theta in thetas])


def _first_crossing(knots: np.ndarray, values: np.ndarray, reconnected: np.ndarray, start: float, theta: float, horizon_days: float) -> float:
    """First t where the piecewise-linear input reaches ``theta``: ``values`` at ``knots`` include
    the jump ``start`` x the weight reconnected there (``reconnected``: that weight, cumulative)."""
    hit = np.flatnonzero(values >= theta - 1e-12)
    if not hit.size:
        return float(horizon_days)
    j = int(hit[0])
    if j == 0:
        return float(knots[0])
    # after knot j-1 (its jump included) the input is below theta and rises linearly to knot j
    before = values[j - 1]
    left = values[j] - start * (reconnected[j] - reconnected[j - 1])  # just before knot j's jump
    if left < theta - 1e-12:
        return float(knots[j])  # reached by the jump at knot j
    return float(knots[j - 1] + (theta - before) / (left - before) * (knots[j] - knots[j - 1]))


CALIBRATED = ("return_threshold", "young_factor")
"""The recovery parameters set by calibration (``calibration=`` overrides them, for calibrating only)."""


def input_model(n_pain: int, n_alive_pain: int, territory: Territory, *, maturation: bool = True, calibration: Mapping | None = None) -> InputModel:
    """The input model of a nerve with ``n_pain`` pain axons of which ``n_alive_pain`` survived."""
    p = model_parameters()["recovery"]
    cal = dict(calibration or {})
    a = age_factor(territory.age_years, cal.get("young_factor"))
    u = float(territory.untreated_share)
    m0 = float(p["maturation"]["start_fraction"]) if maturation else 1.0
    full = float(p["maturation"]["full_months"]) * float(p["days_per_month"]) / a if maturation else 1e-9
    s = p["sprouting"]
    theta = endpoint_threshold(float(cal.get("return_threshold", p["return_threshold"])), territory.endpoint)
    return InputModel(u + (1 - u) * n_alive_pain / n_pain, (1 - u) / n_pain, m0, full, theta,
                      territory.sprouting_share, float(s["onset_days"]), float(s["ramp_days"]))  # fmt: skip


def relief_days(paths: KilledPaths, n_pain: int, draws: RecoveryDraws, territory: Territory, *, seed: int = 0, maturation: bool = True,
                calibration: Mapping | None = None) -> np.ndarray:  # fmt: skip
    """Relief (days) in each draw: the first time the input reaches theta, at most the horizon;
    for grade-5 axons (a neurectomy) the draw's recurrence time if sooner."""
    return _relief_days(paths, n_pain, draws, territory, (territory.endpoint,), seed, maturation, calibration)[territory.endpoint]


def relief_days_by_endpoint(paths: KilledPaths, n_pain: int, draws: RecoveryDraws, territory: Territory, *, seed: int = 0) -> dict[str, np.ndarray]:
    """:func:`relief_days` at every endpoint (the territory's own and the others): one input per draw, crossed at each endpoint's threshold."""
    return _relief_days(paths, n_pain, draws, territory, endpoints(), seed, True, None)


def _relief_days(paths: KilledPaths, n_pain: int, draws: RecoveryDraws, territory: Territory, at: Sequence[str], seed: int, maturation: bool,
                 calibration: Mapping | None) -> dict[str, np.ndarray]:  # fmt: skip
    horizon = float(model_parameters()["recovery"]["horizon_months"]) * days_per_month()
    model, *_ = models = [input_model(n_pain, n_pain - paths.grade.size, replace(territory, endpoint=e), maturation=maturation, calibration=calibration) for e in at]
    thetas = [m.theta for m in models]  # the endpoints' models differ only in theta
    crosses = crossing_mask(paths.grade.size, seed)
    t = reconnection_days(paths, draws, crosses, age_factor(territory.age_years, (calibration or {}).get("young_factor")))
    out = np.array([model.crossing_days(row, horizon, thetas) for row in t]).reshape(len(t), len(at)).T
    if paths.grade.size and (paths.grade == 5).any():
        out = np.minimum(out, draws.recurrence_days)
    return dict(zip(at, np.minimum(out, horizon), strict=True))


@dataclass(frozen=True)
class Relief:
    """Relief duration over the Monte Carlo draws (months); None when not modelled.

    ``censored_at``: the model horizon (months) when some draws never saw pain return
    (their relief counts as the horizon); ``detail``: extra JSON (injury grades, recurrence,
    disease course)."""

    median: float | None
    p10: float | None
    p90: float | None
    mechanism: str  # "regrowth" | "recurrence" | "none" (no block) | "not-modelled" | "reversible"
    note: str = ""
    mean: float | None = None
    censored_at: float | None = None
    detail: Mapping = field(default_factory=dict)

    def to_dict(self) -> dict:
        r = lambda v: None if v is None else round(float(v), 3)  # noqa: E731
        return {"median": r(self.median), "p10": r(self.p10), "p90": r(self.p90)}


RELIEVED_AT_MONTHS = (3.0, 6.0, 12.0, 24.0)
"""Times at which the share of draws (or cohort samples) still relieved is reported."""


def summarise(days: np.ndarray, mechanism: str, note: str, detail: Mapping | None = None) -> Relief:
    months = np.asarray(days, float) / days_per_month()
    horizon = float(model_parameters()["recovery"]["horizon_months"])
    p10, med, p90 = np.percentile(months, [10, 50, 90])
    censored = horizon if (months >= horizon - 1e-9).any() else None
    shares = {"relieved_share_at_months": {f"{m:g}": round(float(np.mean(months >= m)), 3) for m in RELIEVED_AT_MONTHS}}
    return Relief(float(med), float(p10), float(p90), mechanism, note, float(months.mean()), censored, shares | dict(detail or {}))


def relief_by_endpoint(days_by_endpoint: Mapping[str, np.ndarray]) -> dict:
    """Relief months {median, p10, p90} at every endpoint from its relief days per draw."""
    return {e: summarise(days_by_endpoint[e], "regrowth", "").to_dict() for e in endpoints()}


def procedures_needed(median_months: float | None, censored_at_months: float | None, horizon_months: float) -> int | None:
    """Procedures to cover ``horizon_months``: ceil(horizon / median relief); 1 when relief is
    censored at the model horizon (pain did not return in most draws); None without relief."""
    if not median_months:
        return None
    if censored_at_months is not None and median_months >= censored_at_months - 1e-9:
        return 1
    return math.ceil(horizon_months / median_months)


RELIEF_ENDS = ("recovery", "progression", "death")


def relief_ends(days: np.ndarray, territory: Territory, seed: int = 0) -> np.ndarray | None:
    """For a cancer indication, the three ends of each draw's relief (days), rows in the order
    of :data:`RELIEF_ENDS`: the nerve's recovery R = ``days``, pain progressing beyond the
    treated pathway P ~ exponential (catalogued median; never when none is catalogued) and death
    S ~ exponential (catalogued median survival). Relief lasts min(R, P, S); the row of the
    minimum is what ends it. None without a disease course."""
    if territory.survival_median_days is None:
        return None
    rng = np.random.default_rng([int(seed), 7])
    days = np.asarray(days, float)
    survival = rng.exponential(float(territory.survival_median_days) / math.log(2), days.size)
    median_p = territory.progression_median_days
    progression = rng.exponential(float(median_p) / math.log(2), days.size) if median_p else np.full(days.size, np.inf)
    return np.stack([days, progression, survival])


def end_shares(end_index: np.ndarray) -> dict[str, float]:
    """Share of draws ended by each of :data:`RELIEF_ENDS`."""
    counts = np.bincount(np.asarray(end_index, int), minlength=len(RELIEF_ENDS))
    return {name: round(float(c) / max(len(end_index), 1), 3) for name, c in zip(RELIEF_ENDS, counts, strict=True)}


def disease_course(days: np.ndarray, territory: Territory, seed: int = 0) -> dict | None:
    """Relief against the disease course of a cancer indication (:func:`relief_ends`): the
    median survival and progression, P(relief outlasts life), the relief lived min(R, P, S),
    what ends relief most often (``relief_end``) and the share of each end."""
    ends = relief_ends(days, territory, seed)
    if ends is None:
        return None
    end = np.argmin(ends, axis=0)
    lived = ends.min(axis=0) / days_per_month()
    p10, med, p90 = np.percentile(lived, [10, 50, 90])
    shares = end_shares(end)
    median_p = territory.progression_median_days
    return {
        "disease": territory.disease,
        "median_survival_months": round(float(territory.survival_median_days) / days_per_month(), 2),
        "median_progression_months": None if not median_p else round(float(median_p) / days_per_month(), 2),
        "p_relief_outlasts_survival": round(float(np.mean(ends[0] >= ends[2])), 3),
        "relief_lived_months": {"median": round(float(med), 3), "p10": round(float(p10), 3), "p90": round(float(p90), 3)},
        "relief_end": max(shares, key=shares.get),
        "relief_end_shares": shares,
        "note": "relief ends at the earliest of the nerve's recovery, pain progressing beyond the treated pathway, and death; relief_lived_months is what a trial in this population can see",
    }


def not_modelled(method: str) -> Relief:
    entry = model_parameters()["method"][method]
    band = entry.get("neuromodulation_band_months")
    extra = f"; clinical benefit {band[0]:g}-{band[1]:g} months is reported and attributed to neuromodulation (literature.md F, READ-2nd), not modelled" if band else ""
    return Relief(None, None, None, "not-modelled", f"{method}: no axon killed, so no regrowth-based relief{extra}")
