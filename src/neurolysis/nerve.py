"""Which axons of a nerve a method kills, whether pain is blocked and for how long.

A nerve is a bundle of axons with fixed positions (x, y) on its round cross-section. Axon
i runs along the centerline c(s) offset in a frame (u, w) transported along it
(rotation-minimising, double-reflection method):

    p_i(s) = c(s) + x_i u(s) + y_i w(s),   0 <= s <= L (arc length, proximal -> distal)

It dies where its path crosses the method's lethal region anywhere (Wallerian degeneration
then takes the distal part). Paths are sampled at cell centres s_k = (k + 1/2) ds,
ds = L / ceil(L / step) <= step, all in one call to the field sampler; lengths are exact
to one step.

Relief (``docs/models/nerve.md``). A killed axon regrows from the proximal edge of its
lethal stretch after a delay, through the coagulated stretch (length l_i) at a slow rate
and through the intact endoneurial tubes beyond it (length d_i, up to the end organ) at
the ordinary rate:

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
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from scipy.special import ndtri

from neurolysis._catalog import load_catalog
from neurolysis.anatomy.scene import FIBRE_ROLES, Nerve
from neurolysis.fields import FieldSampler
from neurolysis.validation import ValidationError, check_choice, check_range

_Z10 = 1.2815515655446004  # standard normal 90th percentile
TUBELESS_INJURIES = ("sunderland-3", "sunderland-5")
"""Injuries that destroy the endoneurial tubes over the lethal stretch (coagulation, an
excision gap): regrowth crosses it at the slow scar rate. Sunderland 2 keeps them."""


def _cat() -> Mapping:
    return load_catalog("nerve_model")


def methods() -> tuple[str, ...]:
    """Methods the nerve model knows (``data/nerve_model.toml [method]``)."""
    return tuple(_cat()["method"])


# ----------------------------------------------------------------------------- geometry


@dataclass(frozen=True, eq=False)
class NerveFrame:
    """The centerline resampled at cell centres with a transported orthonormal frame.

    ``s_m`` (k,) arc length of each sample from the proximal end; ``points_m``, ``tangent``,
    ``u``, ``w`` (k, 3); ``ds_m`` the cell length; ``length_m`` the centerline length.
    """

    s_m: np.ndarray
    points_m: np.ndarray
    tangent: np.ndarray
    u: np.ndarray
    w: np.ndarray
    ds_m: float
    length_m: float

    def offset_points(self, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
        """Points (k, n, 3) of paths offset by (x_i, y_i) in the (u, w) frame."""
        x = np.asarray(x_m, float)[None, :, None]
        y = np.asarray(y_m, float)[None, :, None]
        return self.points_m[:, None, :] + x * self.u[:, None, :] + y * self.w[:, None, :]


def nerve_frame(centerline_m: np.ndarray, step_m: float) -> NerveFrame:
    """Resample a polyline at cell centres (spacing <= step_m) with a rotation-minimising frame.

    Tangents are interpolated between vertex tangents (mean of adjacent segment
    directions). The normal u is carried by double reflection (Wang W et al., ACM Trans
    Graph 2008;27(1):2), so the frame does not twist about the tangent.
    """
    line = np.asarray(centerline_m, float)
    if not np.all(np.isfinite(line)):
        raise ValidationError("nerve.centerline_m: must be finite numbers")
    seg = np.diff(line, axis=0)
    seg_len = np.linalg.norm(seg, axis=1)
    keep = np.concatenate([[True], seg_len > 1e-12])
    line = line[keep]
    if line.shape[0] < 2:
        raise ValidationError("nerve.centerline_m: must have non-zero length")
    seg = np.diff(line, axis=0)
    seg_len = np.linalg.norm(seg, axis=1)
    seg_dir = seg / seg_len[:, None]
    vert_t = np.empty_like(line)
    vert_t[0], vert_t[-1] = seg_dir[0], seg_dir[-1]
    mid = seg_dir[:-1] + seg_dir[1:]
    mid_norm = np.linalg.norm(mid, axis=1)
    vert_t[1:-1] = np.where(mid_norm[:, None] > 1e-9, mid / np.maximum(mid_norm, 1e-300)[:, None], seg_dir[1:])

    cum = np.concatenate([[0.0], np.cumsum(seg_len)])
    length = float(cum[-1])
    n = max(1, math.ceil(length / step_m - 1e-9))
    ds = length / n
    s = (np.arange(n) + 0.5) * ds
    pts = np.column_stack([np.interp(s, cum, line[:, j]) for j in range(3)])
    tan = np.column_stack([np.interp(s, cum, vert_t[:, j]) for j in range(3)])
    tan /= np.linalg.norm(tan, axis=1)[:, None]

    u = np.empty_like(pts)
    t0 = tan[0]
    helper = np.eye(3)[int(np.argmin(np.abs(t0)))]
    u0 = np.cross(t0, helper)
    u[0] = u0 / np.linalg.norm(u0)
    for k in range(n - 1):
        v1 = pts[k + 1] - pts[k]
        c1 = float(v1 @ v1)
        if c1 < 1e-30:
            u[k + 1] = u[k]
            continue
        r_l = u[k] - (2.0 / c1) * float(v1 @ u[k]) * v1
        t_l = tan[k] - (2.0 / c1) * float(v1 @ tan[k]) * v1
        v2 = tan[k + 1] - t_l
        c2 = float(v2 @ v2)
        r = r_l if c2 < 1e-30 else r_l - (2.0 / c2) * float(v2 @ r_l) * v2
        r = r - float(r @ tan[k + 1]) * tan[k + 1]  # keep exactly orthogonal
        u[k + 1] = r / np.linalg.norm(r)
    w = np.cross(tan, u)
    return NerveFrame(s, pts, tan, u, w, ds, length)


# ---------------------------------------------------------------------------- axons


@dataclass(frozen=True, eq=False)
class AxonPopulation:
    """Axon positions on the cross-section (m) and class of each (index into ``classes``)."""

    x_m: np.ndarray
    y_m: np.ndarray
    class_index: np.ndarray
    classes: tuple[str, ...]
    roles: tuple[str, ...]

    @property
    def role(self) -> np.ndarray:
        return np.asarray(self.roles, dtype=object)[self.class_index]


def _class_counts(fractions: np.ndarray, n: int) -> np.ndarray:
    """Largest-remainder split of n axons by class fraction (sum of counts is n)."""
    raw = fractions * n
    counts = np.floor(raw).astype(int)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def _check_fibres(nerve: Nerve) -> np.ndarray:
    if not nerve.fibres:
        raise ValidationError(f"nerve {nerve.name!r}: fibres = (): at least one fibre class is needed")
    fr = []
    for f in nerve.fibres:
        check_choice(f"nerve {nerve.name!r} fibre {f.name!r} role", f.role, FIBRE_ROLES)
        fr.append(check_range(f"nerve {nerve.name!r} fibre {f.name!r} fraction", f.fraction, 0.0, 1.0))
    fractions = np.asarray(fr)
    total = float(fractions.sum())
    if abs(total - 1.0) > 0.02:
        raise ValidationError(f"nerve {nerve.name!r} fibre fractions sum = {total:g}: must be 1 (within 0.02)")
    return fractions / total


def axon_population(nerve: Nerve, n_axons: int, seed: int) -> AxonPopulation:
    """``n_axons`` axons, counts stratified by class fraction, positions uniform on the disc.

    Uniform on a disc of radius R: r = R sqrt(U1), theta = 2 pi U2. Classes are assigned
    to positions by a seeded permutation (no fascicles: none of the nerves has fascicle data).
    """
    radius = check_range(f"nerve {nerve.name!r} radius_m", nerve.radius_m, 0.0, 0.05, low_inclusive=False, unit="m")
    fractions = _check_fibres(nerve)
    rng = np.random.default_rng([int(seed), 0])
    counts = _class_counts(fractions, n_axons)
    class_index = rng.permutation(np.repeat(np.arange(len(counts)), counts))
    r = radius * np.sqrt(rng.random(n_axons))
    theta = 2.0 * np.pi * rng.random(n_axons)
    return AxonPopulation(
        r * np.cos(theta),
        r * np.sin(theta),
        class_index,
        tuple(f.name for f in nerve.fibres),
        tuple(f.role for f in nerve.fibres),
    )


@dataclass(frozen=True, eq=False)
class AxonMap:
    """Per-axon data for the cross-section figure.

    ``x_mm``, ``y_mm`` position on the cross-section (frame at the proximal end), ``fibre``
    class name, ``killed``, ``died_at_mm`` arc length from the proximal end of the
    centerline where the axon's path first enters the lethal region (NaN if it survived),
    ``lethal_length_mm`` length of its path inside the lethal region.
    """

    x_mm: np.ndarray
    y_mm: np.ndarray
    fibre: tuple[str, ...]
    killed: np.ndarray
    died_at_mm: np.ndarray
    lethal_length_mm: np.ndarray

    def to_dict(self) -> dict:
        return {
            "x_mm": [round(float(v), 4) for v in self.x_mm],
            "y_mm": [round(float(v), 4) for v in self.y_mm],
            "fibre": list(self.fibre),
            "killed": [bool(v) for v in self.killed],
            "died_at_mm": [None if not np.isfinite(v) else round(float(v), 3) for v in self.died_at_mm],
        }


# ---------------------------------------------------------------------------- relief


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
    p = _cat()["regrowth"]
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
    sigma = float(_cat()["regrowth"]["axon_rate_sigma_ln"])
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


def _summarise(days: np.ndarray, mechanism: str, note: str) -> Relief:
    months = days / float(_cat()["regrowth"]["days_per_month"])
    p10, med, p90 = np.percentile(months, [10, 50, 90])
    return Relief(float(med), float(p10), float(p90), mechanism, note)


def relief_for_lesion(lesion_length_m: float, distal_m: float, method: str, *, seed: int = 0, scar_rate_median_mm_per_day: float | None = None) -> Relief:
    """Relief of a complete lesion: every pain axon coagulated over ``lesion_length_m``,
    then ``distal_m`` of intact nerve to the end organ (the calibration/validation case)."""
    check_choice("method", method, methods())
    lesion = check_range("lesion_length_m", lesion_length_m, 0.0, 1.0, low_inclusive=False, unit="m")
    distal = check_range("distal_m", distal_m, 0.0, 2.0, unit="m")
    injury = _cat()["method"][method]["injury"]
    if injury == "none":
        return _not_modelled(method)
    draws = regrowth_draws(seed, scar_rate_median_mm_per_day=scar_rate_median_mm_per_day)
    n = 1000
    days = relief_days(np.full(n, lesion), np.full(n, distal), n, draws, injury, float(_cat()["block"]["pain_block_fraction"]), axon_growth_factors(n))
    return _summarise(days, "regrowth", f"complete {injury} lesion of {lesion * 1e3:g} mm, {distal * 1e3:g} mm to the end organ")


def calibrate_scar_rate(anchor: str = "macvicar-2013", seed: int = 0) -> float:
    """The scar-rate median (mm/day) for which the anchor's model median relief equals the
    published median (bisection on a log scale; the median falls monotonically with the rate)."""
    a = _cat()["calibration"][anchor]
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


def _not_modelled(method: str) -> Relief:
    entry = _cat()["method"][method]
    band = entry.get("neuromodulation_band_months")
    extra = f"; clinical benefit {band[0]:g}-{band[1]:g} months is reported and attributed to neuromodulation (literature.md F, READ-2nd), not modelled" if band else ""
    return Relief(None, None, None, "not-modelled", f"{method}: no thermal kill, so no regrowth-based relief{extra}")


# ---------------------------------------------------------------------------- outcome


@dataclass(frozen=True, eq=False)
class NerveOutcome:
    """What a method did to one nerve.

    ``lesioned_length_mm``: centerline length over which the lethal region covers >= 50 %
    of the axons' cross-section positions; ``any_kill_length_mm``: length over which it
    covers at least one; ``lesion_start_mm``/``lesion_end_mm``: extent of the latter from
    the proximal end (None without a lesion). Fractions are of the axon count (0..1).
    """

    nerve: str
    method: str
    n_axons: int
    step_mm: float
    killed_fraction_by_class: Mapping[str, float | None]
    pain_fibres_killed_fraction: float
    motor_fibres_killed_fraction: float | None
    lesioned_length_mm: float
    any_kill_length_mm: float
    lesion_start_mm: float | None
    lesion_end_mm: float | None
    pain_block: bool
    pain_block_fraction: float
    relief: Relief
    motor_deficit: bool
    motor_deficit_note: str
    axons: AxonMap = field(repr=False)

    @property
    def relief_months(self) -> dict:
        return self.relief.to_dict()

    def to_dict(self, include_axons: bool = False) -> dict:
        r = lambda v: None if v is None else round(float(v), 4)  # noqa: E731
        out = {
            "nerve": self.nerve,
            "method": self.method,
            "n_axons": self.n_axons,
            "killed_fraction_by_class": {k: r(v) for k, v in self.killed_fraction_by_class.items()},
            "pain_fibres_killed_fraction": r(self.pain_fibres_killed_fraction),
            "motor_fibres_killed_fraction": r(self.motor_fibres_killed_fraction),
            "lesioned_length_mm": r(self.lesioned_length_mm),
            "any_kill_length_mm": r(self.any_kill_length_mm),
            "lesion_start_mm": r(self.lesion_start_mm),
            "lesion_end_mm": r(self.lesion_end_mm),
            "pain_block": self.pain_block,
            "pain_block_fraction": self.pain_block_fraction,
            "relief_months": self.relief.to_dict(),
            "relief_mechanism": self.relief.mechanism,
            "relief_note": self.relief.note,
            "motor_deficit": self.motor_deficit,
            "motor_deficit_note": self.motor_deficit_note,
            "step_mm": r(self.step_mm),
        }
        if include_axons:
            out["axons"] = self.axons.to_dict()
        return out


def _check_int(field_name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValidationError(f"{field_name} = {value!r}: must be a whole number in [{low}, {high}]")
    check_range(field_name, int(value), low, high)
    return int(value)


def _lethal(sampler: FieldSampler, points: np.ndarray) -> np.ndarray:
    sample = sampler(points)
    lethal = np.asarray(sample.lethal)
    if lethal.shape != (points.shape[0],):
        raise ValueError(f"field sampler returned lethal of shape {lethal.shape} for {points.shape[0]} points")
    return lethal.astype(bool)


def nerve_outcome(
    nerve: Nerve,
    sampler: FieldSampler,
    method: str,
    *,
    seed: int = 0,
    n_axons: int | None = None,
    step_m: float | None = None,
) -> NerveOutcome:
    """Kill axons of ``nerve`` with the sampler's lethal region and estimate relief.

    One sampler call on all (samples x axons) path points. ``step_m`` (default 0.1 mm)
    is the spacing along the centerline; ``n_axons`` (default 2000) the sample of axons.
    """
    cat = _cat()
    check_choice("method", method, methods())
    seed = _check_int("seed", seed, 0, 2**32 - 1)
    n = _check_int("n_axons", cat["population"]["default_n_axons"] if n_axons is None else n_axons, 1, 100_000)
    step = check_range("step_m", cat["population"]["default_step_mm"] * 1e-3 if step_m is None else step_m, 1e-6, 5e-3, unit="m")
    end_organ = check_range(f"nerve {nerve.name!r} end_organ_m", nerve.end_organ_m, 0.0, 2.0, unit="m")

    pop = axon_population(nerve, n, seed)
    frame = nerve_frame(nerve.centerline_m, step)
    k = frame.s_m.size
    if k * n > int(cat["population"]["max_path_points"]):
        raise ValidationError(
            f"n_axons x path samples = {n} x {k}: more than {cat['population']['max_path_points']} points; use fewer axons or a larger step_m"
        )
    pts = frame.offset_points(pop.x_m, pop.y_m)
    lethal = _lethal(sampler, pts.reshape(-1, 3)).reshape(k, n)

    killed = lethal.any(axis=0)
    first = np.argmax(lethal, axis=0)
    ds = frame.ds_m
    lethal_len = lethal.sum(axis=0) * ds
    died_at = np.where(killed, frame.s_m[first], np.nan)
    # from the proximal edge of the first lethal cell to the end organ, minus the lethal part
    intact_len = np.where(killed, frame.length_m - (frame.s_m[first] - 0.5 * ds) - lethal_len + end_organ, 0.0)

    covered = lethal.mean(axis=1)
    majority = float(cat["block"]["lesioned_majority_fraction"])
    lesioned_len = float((covered >= majority).sum() * ds)
    any_rows = np.flatnonzero(covered > 0)
    any_len = float(any_rows.size * ds)
    start = float((frame.s_m[any_rows[0]] - 0.5 * ds) * 1e3) if any_rows.size else None
    end = float((frame.s_m[any_rows[-1]] + 0.5 * ds) * 1e3) if any_rows.size else None

    roles = pop.role
    by_class: dict[str, float | None] = {}
    for ci, name in enumerate(pop.classes):
        sel = pop.class_index == ci
        by_class[name] = float(killed[sel].mean()) if sel.any() else None
    pain = roles == "pain"
    motor = roles == "motor"
    pain_frac = float(killed[pain].mean()) if pain.any() else 0.0
    has_motor = any(f.role == "motor" and f.fraction > 0 for f in nerve.fibres)
    motor_frac = float(killed[motor].mean()) if has_motor and motor.any() else (0.0 if has_motor else None)

    f_block = float(cat["block"]["pain_block_fraction"])
    pain_block = bool(pain.any() and pain_frac >= f_block - 1e-12)
    injury = cat["method"][method]["injury"]
    vigour = axon_growth_factors(n, seed)
    draws = None
    if injury == "none":
        relief = _not_modelled(method)
        pain_block = False
    elif not pain.any():
        relief = Relief(0.0, 0.0, 0.0, "none", "the nerve has no pain fibres")
    else:
        draws = regrowth_draws(seed)
        sel = killed & pain
        days = relief_days(lethal_len[sel], intact_len[sel], int(pain.sum()), draws, injury, f_block, vigour[sel])
        if pain_block:
            note = f"{pain_frac:.0%} of pain fibres killed (block needs >= {f_block:.0%}); relief lasts until enough regrow through the {injury} lesion"
            relief = _summarise(days, "regrowth", note)
        else:
            note = f"no block: {pain_frac:.0%} of pain fibres killed, below the {f_block:.0%} needed; little or no relief expected"
            relief = Relief(0.0, 0.0, 0.0, "none", note)

    motor_deficit, motor_note = _motor_deficit(nerve, motor_frac, killed, motor, lethal_len, intact_len, injury, draws, seed, vigour)

    x_mm, y_mm = pop.x_m * 1e3, pop.y_m * 1e3
    axon_map = AxonMap(x_mm, y_mm, tuple(pop.classes[i] for i in pop.class_index), killed, died_at * 1e3, lethal_len * 1e3)
    return NerveOutcome(
        nerve=nerve.name,
        method=method,
        n_axons=n,
        step_mm=ds * 1e3,
        killed_fraction_by_class=MappingProxyType(by_class),
        pain_fibres_killed_fraction=pain_frac,
        motor_fibres_killed_fraction=motor_frac,
        lesioned_length_mm=lesioned_len * 1e3,
        any_kill_length_mm=any_len * 1e3,
        lesion_start_mm=start,
        lesion_end_mm=end,
        pain_block=pain_block,
        pain_block_fraction=f_block,
        relief=relief,
        motor_deficit=motor_deficit,
        motor_deficit_note=motor_note,
        axons=axon_map,
    )


def _motor_deficit(nerve, motor_frac, killed, motor, lethal_len, intact_len, injury, draws, seed, vigour) -> tuple[bool, str]:
    """Flag and text when motor axons die (>= the catalogued fraction)."""
    if motor_frac is None:
        return False, "no motor fibres in this nerve"
    threshold = float(_cat()["block"]["motor_deficit_fraction"])
    if motor_frac < threshold:
        return False, f"{motor_frac:.0%} of motor fibres killed (flag at >= {threshold:.0%})"
    recovery = ""
    if injury != "none":
        d = draws if draws is not None else regrowth_draws(seed)
        sel = killed & motor
        # time for half of the killed motor axons to regrow (block_fraction 0.5 over the killed set)
        days = relief_days(lethal_len[sel], intact_len[sel], int(sel.sum()), d, injury, 0.5, vigour[sel])
        months = days / float(_cat()["regrowth"]["days_per_month"])
        recovery = f"; half of them regrown after ~{np.median(months):.0f} months (p10-p90 {np.percentile(months, 10):.0f}-{np.percentile(months, 90):.0f})"
    if nerve.kind in ("mixed", "motor", "plexus"):
        what = f"MOTOR DEFICIT: {motor_frac:.0%} of motor fibres of the {nerve.kind} nerve {nerve.name!r} killed: expect weakness of the muscles it supplies"
    else:
        what = (
            f"{motor_frac:.0%} of motor fibres of {nerve.name!r} killed: denervation of the muscles it supplies "
            "(for a medial branch, multifidus: seen on MRI after successful RFN without segment-specific atrophy, Dreyfuss 2009)"
        )
    return True, what + recovery


__all__ = [
    "AxonMap",
    "AxonPopulation",
    "NerveFrame",
    "NerveOutcome",
    "RegrowthDraws",
    "Relief",
    "axon_growth_factors",
    "axon_population",
    "calibrate_scar_rate",
    "methods",
    "nerve_frame",
    "nerve_outcome",
    "regrowth_draws",
    "relief_days",
    "relief_for_lesion",
]
