"""Which axons of a nerve a method kills, whether pain is blocked, and the motor deficit.

A nerve is a bundle of axons with fixed positions (x, y) on its round cross-section; axon i
runs along the centreline offset in its transported frame (:mod:`neurolysis.anatomy.centreline`).
It dies where its path crosses the method's lethal region anywhere (Wallerian degeneration
then takes the distal part). Paths are sampled at cell centres s_k = (k + 1/2) ds,
ds = L / ceil(L / step) <= step, all in one call to the field sampler; lengths are exact
to one step. How long relief lasts: :mod:`neurolysis.outcome.relief`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from neurolysis.anatomy.centreline import nerve_frame
from neurolysis.anatomy.scene import FIBRE_ROLES, Nerve
from neurolysis.fields import FieldSampler
from neurolysis.outcome.relief import (
    KilledPaths,
    Relief,
    Territory,
    age_factor,
    axon_growth_factors,
    crossing_mask,
    days_per_month,
    disease_course,
    method_grade,
    methods,
    model_parameters,
    not_modelled,
    reconnection_days,
    recovery_draws,
    relief_by_endpoint,
    relief_days_by_endpoint,
    summarise,
)
from neurolysis.validation import ValidationError, check_choice, check_range


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
    ``lethal_length_mm`` length of its path inside the lethal region, ``grade`` its
    Sunderland injury grade (0 survived, 2 tubes intact, 3 through scar, 5 cut).
    """

    x_mm: np.ndarray
    y_mm: np.ndarray
    fibre: tuple[str, ...]
    killed: np.ndarray
    died_at_mm: np.ndarray
    lethal_length_mm: np.ndarray
    grade: np.ndarray

    def to_dict(self) -> dict:
        return {
            "grade": [int(g) for g in self.grade],
            "x_mm": [round(float(v), 4) for v in self.x_mm],
            "y_mm": [round(float(v), 4) for v in self.y_mm],
            "fibre": list(self.fibre),
            "killed": [bool(v) for v in self.killed],
            "died_at_mm": [None if not np.isfinite(v) else round(float(v), 3) for v in self.died_at_mm],
        }


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
    injury_grades: Mapping[str, float]
    motor_deficit: bool
    motor_deficit_note: str
    axons: AxonMap = field(repr=False)
    pain_paths: KilledPaths | None = field(default=None, repr=False)  # the killed pain axons' paths (a territory's relief)
    n_pain: int = 0
    relief_days: np.ndarray | None = field(default=None, repr=False)  # per recovery draw (None without regrowth relief)
    relief_by_endpoint: Mapping | None = None  # endpoint -> relief months {median, p10, p90} (regrowth relief only)

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
            "relief_mean_months": r(self.relief.mean),
            "relief_censored_at_months": self.relief.censored_at,
            "relief_by_endpoint": None if self.relief_by_endpoint is None else dict(self.relief_by_endpoint),
            "relief_end": self.relief.detail.get("disease_course", {}).get("relief_end"),
            "injury_grades": {k: r(v) for k, v in self.injury_grades.items()},
            **({"recovery": dict(self.relief.detail)} if self.relief.detail else {}),
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


def _check_path_points(n_axons: int, n_samples: int, field_name: str) -> None:
    """Axons x path samples within the memory guard (``data/nerve_model.toml [population]``)."""
    limit = int(model_parameters()["population"]["max_path_points"])
    if n_axons * n_samples > limit:
        raise ValidationError(
            f"{field_name} = {n_axons}: {n_axons} axons x {n_samples} path samples exceed {limit} points; "
            f"allowed range for this nerve is [1, {limit // n_samples}]"
        )


def check_axon_count(nerve: Nerve, n_axons: int, field_name: str = "simulation.n_axons") -> None:
    """Refuse, before any solve, more axons than the path-point guard allows along ``nerve``
    at the default step (the guard :func:`nerve_outcome` applies)."""
    step = model_parameters()["population"]["default_step_mm"] * 1e-3
    _check_path_points(n_axons, nerve_frame(nerve.centerline_m, step).s_m.size, field_name)


def _hits(sampler: FieldSampler, points: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(lethal, tubes destroyed or None) at ``points``, as bool arrays."""
    sample = sampler(points)
    lethal = np.asarray(sample.lethal)
    if lethal.shape != (points.shape[0],):
        raise ValueError(f"field sampler returned lethal of shape {lethal.shape} for {points.shape[0]} points")
    scar = None if sample.tubes_destroyed is None else np.asarray(sample.tubes_destroyed, bool)
    return lethal.astype(bool), scar


@dataclass(frozen=True, eq=False)
class AxonPaths:
    """Per axon: killed, arc index where it first dies, lethal length, scar length (grade 3
    part of the path), tube length (the rest of its path to the end organ, m) and grade."""

    killed: np.ndarray
    first: np.ndarray
    lethal_m: np.ndarray
    scar_m: np.ndarray
    tube_m: np.ndarray
    grade: np.ndarray


def axon_paths(lethal: np.ndarray, scar: np.ndarray | None, s_m: np.ndarray, ds_m: float, length_m: float, end_organ_m: float, default_grade: int,
               rows: np.ndarray | None = None) -> AxonPaths:  # fmt: skip
    """Paths of the axons from (samples along the nerve x axons) hit tables (``rows``: the
    centreline samples the tables cover, default all). A killed axon regrows from the proximal
    edge of its first lethal cell to the end organ; the lethal cells where the tubes are
    destroyed (``scar``; None: all of them if ``default_grade`` is 3) are its scar path.
    Grade: 5 if the method cuts, else 3 with any scar on the path, else 2."""
    rows = np.arange(lethal.shape[0]) if rows is None else rows
    killed = lethal.any(axis=0)
    first = rows[np.argmax(lethal, axis=0)]
    lethal_m = lethal.sum(axis=0) * ds_m
    if scar is None:
        scar_m = lethal_m if default_grade == 3 else np.zeros_like(lethal_m)
    else:
        scar_m = (lethal & scar).sum(axis=0) * ds_m
    path = np.where(killed, length_m - (s_m[first] - 0.5 * ds_m) + end_organ_m, 0.0)
    grade = np.where(killed, 5 if default_grade == 5 else np.where(scar_m > 0, 3, 2), 0)
    return AxonPaths(killed, first, lethal_m, scar_m, np.maximum(path - scar_m, 0.0), grade)


def grade_fractions(paths: AxonPaths, pain: np.ndarray) -> dict[str, float]:
    """Share of the killed pain axons at each grade."""
    k = paths.killed & pain
    n = max(int(k.sum()), 1)
    return {f"sunderland-{g}": float(((paths.grade == g) & k).sum() / n) for g in (2, 3, 5) if ((paths.grade == g) & k).any()}


def killed_paths(paths: AxonPaths, selected: np.ndarray, vigour: np.ndarray) -> KilledPaths:
    """The recovery model's input for the killed axons among ``selected`` (pain or motor)."""
    sel = paths.killed & selected
    return KilledPaths(paths.scar_m[sel], paths.tube_m[sel], paths.grade[sel], vigour[sel])


def nerve_outcome(
    nerve: Nerve,
    sampler: FieldSampler,
    method: str,
    *,
    seed: int = 0,
    n_axons: int | None = None,
    step_m: float | None = None,
    territory: Territory | None = None,
) -> NerveOutcome:
    """Kill axons of ``nerve`` with the sampler's lethal region and estimate relief.

    One sampler call on all (samples x axons) path points. ``step_m`` (default 0.1 mm)
    is the spacing along the centerline; ``n_axons`` (default 2000) the sample of axons;
    ``territory`` the untreated input, sprouting, age and disease course (default: none, adult).
    """
    cat = model_parameters()
    check_choice("method", method, methods())
    seed = _check_int("seed", seed, 0, 2**32 - 1)
    n = _check_int("n_axons", cat["population"]["default_n_axons"] if n_axons is None else n_axons, 1, 100_000)
    step = check_range("step_m", cat["population"]["default_step_mm"] * 1e-3 if step_m is None else step_m, 1e-6, 5e-3, unit="m")
    end_organ = check_range(f"nerve {nerve.name!r} end_organ_m", nerve.end_organ_m, 0.0, 2.0, unit="m")
    territory = territory or Territory()

    pop = axon_population(nerve, n, seed)
    frame = nerve_frame(nerve.centerline_m, step)
    k = frame.s_m.size
    _check_path_points(n, k, "n_axons")
    pts = frame.offset_points(pop.x_m, pop.y_m)
    lethal, scar = _hits(sampler, pts.reshape(-1, 3))
    lethal = lethal.reshape(k, n)
    scar = None if scar is None else scar.reshape(k, n)
    grade = method_grade(method)
    paths = axon_paths(lethal, scar, frame.s_m, frame.ds_m, frame.length_m, end_organ, grade)
    killed = paths.killed
    ds = frame.ds_m
    died_at = np.where(killed, frame.s_m[paths.first], np.nan)

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
    vigour = axon_growth_factors(n, seed)
    draws = None
    pain_paths, days, by_endpoint = None, None, None
    if grade == 0:
        relief = not_modelled(method)
        pain_block = False
    elif not pain.any():
        relief = Relief(0.0, 0.0, 0.0, "none", "the nerve has no pain fibres")
    elif not pain_block:
        relief = Relief(0.0, 0.0, 0.0, "none", f"no block: {pain_frac:.0%} of pain fibres killed, below the {f_block:.0%} needed; little or no relief expected", 0.0)
    else:
        draws = recovery_draws(seed)
        pain_paths = killed_paths(paths, pain, vigour)
        days_by_endpoint = relief_days_by_endpoint(pain_paths, int(pain.sum()), draws, territory, seed=seed)
        days = days_by_endpoint[territory.endpoint]
        relief = _relief(days, grade, pain_frac, f_block, territory, seed)
        by_endpoint = relief_by_endpoint(days_by_endpoint)

    motor_deficit, motor_note = _motor_deficit(nerve, motor_frac, paths, motor, draws, seed, vigour, territory)

    x_mm, y_mm = pop.x_m * 1e3, pop.y_m * 1e3
    axon_map = AxonMap(x_mm, y_mm, tuple(pop.classes[i] for i in pop.class_index), killed, died_at * 1e3, paths.lethal_m * 1e3, paths.grade)
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
        injury_grades=MappingProxyType(grade_fractions(paths, pain)),
        motor_deficit=motor_deficit,
        motor_deficit_note=motor_note,
        axons=axon_map,
        pain_paths=pain_paths,
        n_pain=int(pain.sum()),
        relief_days=days,
        relief_by_endpoint=by_endpoint,
    )


def _relief(days: np.ndarray, grade: int, pain_frac: float, f_block: float, territory: Territory, seed: int) -> Relief:
    """The relief summary of a block, with its recurrence (neurectomy) or disease course (cancer)."""
    detail: dict = {}
    if grade == 5:
        r = model_parameters()["recovery"]["recurrence"]
        detail["recurrence_probability"] = float(r["probability"])
        detail["recurrence_median_months"] = float(r["median_months"])
        note = (f"{pain_frac:.0%} of pain fibres cut; the stump is managed, so they do not reconnect: pain returns only through a neuroma or "
                f"sprouting, in {float(r['probability']):.0%} of patients (median onset {float(r['median_months']):g} months)")  # fmt: skip
        mechanism = "recurrence"
    else:
        note = f"{pain_frac:.0%} of pain fibres killed (block needs >= {f_block:.0%}); relief lasts until regrown, maturing axons restore enough input"
        mechanism = "regrowth"
    if territory.untreated_share:
        note += f"; {territory.untreated_share:.0%} of the input comes from untreated nerves"
    if territory.age_years is not None:
        note += f"; age {territory.age_years:g} years"
    course = disease_course(days, territory, seed)
    if course is not None:
        detail["disease_course"] = course
    return summarise(days, mechanism, note, detail)


def _motor_deficit(nerve, motor_frac, paths: AxonPaths, motor, draws, seed, vigour, territory: Territory) -> tuple[bool, str]:
    """Flag and text when motor axons die (>= the catalogued fraction)."""
    if motor_frac is None:
        return False, "no motor fibres in this nerve"
    threshold = float(model_parameters()["block"]["motor_deficit_fraction"])
    if motor_frac < threshold:
        return False, f"{motor_frac:.0%} of motor fibres killed (flag at >= {threshold:.0%})"
    recovery = ""
    sel = paths.killed & motor
    if sel.any() and (paths.grade[sel] < 5).any():
        d = draws if draws is not None else recovery_draws(seed)
        t = reconnection_days(killed_paths(paths, motor, vigour), d, crossing_mask(int(sel.sum()), seed), age_factor(territory.age_years))
        months = np.median(t, axis=1) / days_per_month()  # half of the killed motor axons reconnected (no maturation)
        if np.isfinite(months).any():
            recovery = f"; half of them reconnected after ~{np.median(months):.0f} months (p10-p90 {np.percentile(months, 10):.0f}-{np.percentile(months, 90):.0f}), strength recovers later as they mature"
    if nerve.kind in ("mixed", "motor", "plexus"):
        what = f"MOTOR DEFICIT: {motor_frac:.0%} of motor fibres of the {nerve.kind} nerve {nerve.name!r} killed: expect weakness of the muscles it supplies"
    else:
        what = (
            f"{motor_frac:.0%} of motor fibres of {nerve.name!r} killed: denervation of the muscles it supplies "
            "(for a medial branch, multifidus: seen on MRI after successful RFN without segment-specific atrophy, Dreyfuss 2009)"
        )
    return True, what + recovery
