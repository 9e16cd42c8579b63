"""Relief of idealised complete lesions: the calibration and validation cases of the recovery
model (``data/nerve_model.toml [calibration]``, ``[validation]``), and the quick comparison a
nerve block lists. A simulated plan replaces them (:mod:`neurolysis.outcome.axons`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from neurolysis.anatomy.scene import Nerve
from neurolysis.outcome.relief import (
    KilledPaths,
    Relief,
    Territory,
    axon_growth_factors,
    days_per_month,
    method_grade,
    methods,
    model_parameters,
    not_modelled,
    procedures_needed,
    recovery_draws,
    relief_days,
    summarise,
)
from neurolysis.validation import check_choice, check_range

CASE_AXONS = 1000


def complete_lesion_paths(lesion_length_m: float, distal_m: float, grade: int, scar_length_m: float | None = None, n: int = CASE_AXONS) -> KilledPaths:
    """Every pain axon killed over ``lesion_length_m``; grade 3 crosses ``scar_length_m`` of
    scar (default: the whole lesion) then tubes; grade 2 all tubes; ``distal_m`` beyond."""
    scar = 0.0 if grade == 2 else (lesion_length_m if scar_length_m is None else scar_length_m)
    tube = lesion_length_m - scar + distal_m
    return KilledPaths(np.full(n, scar), np.full(n, tube), np.full(n, grade), axon_growth_factors(n))


def relief_for_lesion(lesion_length_m: float, distal_m: float, method: str, *, scar_length_m: float | None = None, territory: Territory | None = None,
                      rodent: bool = False, seed: int = 0, draws=None, calibration: Mapping | None = None) -> Relief:  # fmt: skip
    """Relief of a complete lesion of ``method`` (the calibration/validation case). ``rodent``:
    maturation is not modelled (a reconnected axon gives its full input)."""
    check_choice("method", method, methods())
    lesion = check_range("lesion_length_m", lesion_length_m, 0.0, 1.0, low_inclusive=False, unit="m")
    distal = check_range("distal_m", distal_m, 0.0, 2.0, unit="m")
    grade = method_grade(method)
    if grade == 0:
        return not_modelled(method)
    paths = complete_lesion_paths(lesion, distal, grade, scar_length_m)
    days = relief_days(paths, CASE_AXONS, draws if draws is not None else recovery_draws(seed), territory or Territory(), seed=seed, maturation=not rodent, calibration=calibration)
    return summarise(days, "regrowth" if grade < 5 else "recurrence", f"complete grade-{grade} lesion of {lesion * 1e3:g} mm, {distal * 1e3:g} mm to the end organ")


def case_relief(case: Mapping, *, seed: int = 0, draws=None, calibration: Mapping | None = None) -> Relief:
    """Relief of a catalogued calibration or validation case (its lesion, distal path, age, species)."""
    territory = Territory(untreated_share=float(case.get("untreated_share", 0.0)), age_years=case.get("age_years"), endpoint=case.get("endpoint", "complete"))
    scar = case.get("scar_length_mm")
    return relief_for_lesion(case["lesion_length_mm"] * 1e-3, case["distal_mm"] * 1e-3, case["method"], scar_length_m=None if scar is None else scar * 1e-3,
                             territory=territory, rodent=case.get("species") == "rodent", seed=seed, draws=draws, calibration=calibration)  # fmt: skip


CALIBRATION_HALVINGS = 24
"""Bisection steps of a calibration: 2^-24 = 6e-8 of its bracket, far below the four significant
digits the data file keeps (theta 0.3328, young_factor 3.368)."""


def _bisect(f, lo: float, hi: float, target: float, what: str, iterations: int = CALIBRATION_HALVINGS) -> float:
    """x in [lo, hi] with f(x) = target, f monotone (either direction)."""
    f_lo, f_hi = f(lo), f(hi)
    if not min(f_lo, f_hi) <= target <= max(f_lo, f_hi):
        raise ValueError(f"{what}: {target} not reachable in [{f_lo:.3g}, {f_hi:.3g}]")
    rising = f_hi > f_lo
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if (f(mid) < target) == rising else (lo, mid)
    return 0.5 * (lo + hi)


def calibrate_return_threshold(seed: int = 0) -> float:
    """theta for which the adult intercostal cryo case's median equals its published 10.8 months."""
    case = model_parameters()["calibration"]["intercostal-cryo-adult"]
    return _bisect(lambda th: case_relief(case, seed=seed, calibration={"return_threshold": th}).median, 0.18, 0.95, float(case["months"]), "return_threshold")


def calibrate_young_factor(seed: int = 0) -> float:
    """The age factor at the young reference age for which the young case's median is 3.4 months."""
    case = model_parameters()["calibration"]["intercostal-cryo-young"]
    return _bisect(lambda f: case_relief(case, seed=seed, calibration={"young_factor": f}).median, 1.0, 10.0, float(case["months"]), "young_factor")


def calibrate_progression_median_days() -> float:
    """Median time to pain progressing beyond the celiac plexus (exponential) for which the
    share of survivors still relieved at the calibration case's months equals its published
    share, all its failures taken as progression: months x days_per_month x ln 2 / -ln(share)."""
    case = model_parameters()["calibration"]["eisenberg-1995-survivors"]
    return float(case["months"]) * days_per_month() * math.log(2) / -math.log(float(case["relieved_share"]))


def recurrence_share(months: float, seed: int = 0) -> float:
    """P(pain back by ``months``) after a neurectomy (grade 5, stump managed)."""
    d = recovery_draws(seed, 200_000)
    return float(np.mean(d.recurrence_days <= months * float(model_parameters()["recovery"]["days_per_month"])))


def neurolytic_comparison(nerve: Nerve, horizon_months: float, seed: int = 0) -> list[dict]:
    """Relief of a complete lesion of each neurolytic method's typical length at ``nerve``
    (lengths in ``data/nerve_model.toml [comparison]``) and the procedures needed to cover
    ``horizon_months``."""
    cat = model_parameters()["comparison"]
    out = []
    for method, length_mm in cat["typical_lesion_mm"].items():
        relief = relief_for_lesion(length_mm * 1e-3, nerve.end_organ_m, method, seed=seed)
        needed = procedures_needed(relief.median, relief.censored_at, horizon_months)
        out.append({
            "method": method,
            "relief_months": relief.to_dict(),
            "procedures_needed": needed,
            "basis": f"a typical complete lesion of {length_mm:g} mm along the nerve, {1e3 * nerve.end_organ_m:g} mm to the end organ ({cat['sources'][method]}), not simulated: `neurolysis compare` simulates every method at this target",
        })  # fmt: skip
    return out


__all__ = ["calibrate_return_threshold", "calibrate_young_factor", "case_relief", "complete_lesion_paths", "neurolytic_comparison", "recurrence_share", "relief_for_lesion"]
