"""Simulated plans against published relief, each compared with what it measured.

Every ``[plan_validation]`` case of ``data/nerve_model.toml`` is a method's default plan at a
template (plus overrides), simulated end to end. Its ``compare`` says what the published
number measured (a median among responders, a cohort median with the misses, the share
still relieved at a follow-up, the relief a survival-limited trial sees, a volume
comparison, no failure in a small series, the share whose pain was blocked), and the model is read the same way: a placement
cohort (``[uncertainty]`` defaults of the template) where the number is a cohort's. Held out,
never tuned (docs/validation.md 6.2).
"""

from __future__ import annotations

import tomllib

import numpy as np

from neurolysis._catalog import load_catalog
from neurolysis.literature import Comparison
from neurolysis.planning.plan import apply_overrides, new_plan, plan_from_dict, plan_toml
from neurolysis.planning.simulate import Outcome, simulate

RELIEF_TOLERANCE = 1.3
"""Medians and ratios pass within [1/1.3, 1.3] of the published value (data/nerve_model.toml)."""
COHORT_SAMPLES = 200
"""Placement samples per cohort comparison (seeded; bench/method_validation.py uses more)."""


def plan_relief_cases() -> tuple[str, ...]:
    """Ids of the simulated-plan relief comparisons (``data/nerve_model.toml [plan_validation]``)."""
    return tuple(load_catalog("nerve_model")["plan_validation"])


def _simulate(case: dict, extra: list[str], samples: int | None, anchors: int = 0) -> Outcome:
    plan = new_plan(case["template"], target=case.get("targets"), method=case["method"])  # targets: the case's nerves, else every target of the template
    data = apply_overrides(tomllib.loads(plan_toml(plan)), list(case["overrides"]) + extra)
    if samples:
        data.setdefault("uncertainty", {})["samples"] = samples
        if anchors:
            data["uncertainty"]["anchors"] = anchors
    return simulate(plan_from_dict(data))


def _within(model: float, published: float) -> tuple[bool, str]:
    ratio = model / published
    return 1 / RELIEF_TOLERANCE <= ratio <= RELIEF_TOLERANCE, f"x{ratio:.2f} of {published:g}"


def _band_or_median(case: dict, value: float) -> tuple[bool, str]:
    if "median_months" in case:
        return _within(value, case["median_months"])
    lo, hi = case["band_months"]
    return lo <= value <= hi, f"band {lo:g}-{hi:g} months"


def plan_relief(case_id: str, samples: int = COHORT_SAMPLES, anchors: int | None = None) -> Comparison:
    """One case simulated and judged by its ``compare`` rule. Slow: one or two plans (2-40 s),
    a cohort of ``samples`` poses where the rule needs one, refined by ``anchors`` more solved
    poses (default: the case's own ``anchors``, else none)."""
    case = dict(load_catalog("nerve_model")["plan_validation"][case_id])
    compare = case["compare"]
    cohort = compare in ("cohort-median", "cohort-share", "cohort-block")
    endpoint = case.get("endpoint", "complete")  # what the published number measured: its relief endpoint
    out = _simulate(case, [f"simulation.relief_endpoint={endpoint}"], samples if cohort else None, case.get("anchors", 0) if anchors is None else anchors)
    t = out.target
    several = len(out.targets) > 1  # several needles: the territory's block and relief, not the first nerve's
    relief = out.territory.relief if several else t.relief
    r = relief.to_dict()
    detail = dict(relief.detail)
    killed = min(n.pain_fibres_killed_fraction for n in out.targets)
    values = {
        "procedure": out.plan.as_dict()["procedure"], "relief_months": r, "relief_mean_months": relief.mean,
        "lesioned_length_mm": t.lesioned_length_mm, "pain_fibres_killed_fraction": killed,
        "injury_grades": dict(t.injury_grades), "injured": [c.name for c in out.critical if c.injured], "wall_time_s": out.wall_time_s,
        "targets": [n.nerve for n in out.targets], "endpoint": endpoint,
    }  # fmt: skip
    if several:
        values["territory"] = out.territory.to_dict()
        plan_text = (
            f"{case['method']} at {case['template']}, {len(out.targets)} nerves: {killed:.0%} of pain fibres killed in each at least; territory relief {r['median']} months at the planned poses"
        )
    else:
        plan_text = f"{case['method']} at {case['template']}: {t.pain_fibres_killed_fraction:.0%} of pain fibres killed, {t.lesioned_length_mm:.1f} mm lesioned"
    if cohort:
        u = out.uncertainty.to_dict()
        values["cohort"] = {k: u[k] for k in ("samples", "p_block", "p_block_95ci", "relief_months", "relieved_share_at_months")}
        months = out.uncertainty.relief_months
        if compare == "cohort-median":
            value = float(np.median(months))
            passed, verdict = _band_or_median(case, value)
            model = f"{plan_text}; cohort of {len(months)}: P(block) {u['p_block']:.2f}, median relief {value:.2f} months (misses count 0) vs {verdict}"
        elif compare == "cohort-block":
            share = float(u["p_block"])
            lo, hi = case["share_ci"]
            passed, verdict = lo <= share <= hi, f"{lo:.0%}-{hi:.0%} published"
            model = f"{plan_text}; cohort of {len(months)}: P(block) {share:.2f} vs {verdict}"
        else:
            share = float(np.mean(months >= case["months"]))
            lo, hi = case["share_ci"]
            passed, verdict = lo <= share <= hi, f"{lo:.1%}-{hi:.1%} published"
            model = f"{plan_text}; cohort of {len(months)}: P(block) {u['p_block']:.2f}, still relieved at {case['months']:g} months {share:.1%} vs {verdict}"
        values["value"] = value if compare == "cohort-median" else share
    elif not (out.territory.pain_block if several else t.pain_block):
        passed, model = False, f"{plan_text}: no block, no relief predicted"
    elif compare == "responders-median":
        passed, verdict = _band_or_median(case, r["median"])
        model = f"{plan_text}; relief {r['median']} ({r['p10']}-{r['p90']}) months vs {verdict}"
    elif compare == "lived-median":
        course = detail["disease_course"]
        lived = course["relief_lived_months"]["median"]
        passed, verdict = _band_or_median(case, lived)
        values["disease_course"] = course
        model = (f"{plan_text}; relief {r['median']} months, median survival {course['median_survival_months']} months, "
                 f"relief lived {lived} months (P relief outlasts life {course['p_relief_outlasts_survival']:.2f}) vs {verdict}")  # fmt: skip
    elif compare == "death-share":
        course = detail["disease_course"]
        share = course["relief_end_shares"]["death"]
        lo, hi = case["share_ci"]
        passed = lo <= share <= hi
        values["disease_course"] = course
        values["value"] = share
        model = (f"{plan_text}; relief {r['median']} months, median survival {course['median_survival_months']} and progression "
                 f"{course['median_progression_months']} months: relief lasts until death in {share:.1%} vs {lo:.0%}-{hi:.0%} published")  # fmt: skip
    elif compare == "all-relieved":
        share = detail["relieved_share_at_months"][f"{case['months']:g}"]
        p_all = share ** case["patients"]
        passed = p_all >= 0.05
        model = f"{plan_text}; P(relieved at {case['months']:g} months) {share:.3f}, P(all {case['patients']} relieved) {p_all:.2f} (pass >= 0.05)"
    elif compare == "volume-ratio":
        small, large = case["volumes_ml"]
        a, b = (_simulate(case, [f"procedure.volume_ml={v:g}"], None).target for v in (small, large))
        ratio_ok, verdict = _within(b.relief.median, a.relief.median) if a.relief.median else (False, "no relief at the small volume")
        passed = ratio_ok and a.pain_block and b.pain_block
        values["by_volume"] = {f"{small:g}": {"relief_months": a.relief_months, "lesioned_length_mm": a.lesioned_length_mm},
                               f"{large:g}": {"relief_months": b.relief_months, "lesioned_length_mm": b.lesioned_length_mm}}  # fmt: skip
        model = (f"{case['method']} at {case['template']}: {small:g} mL -> {a.relief.median:.2f} months ({a.lesioned_length_mm:.0f} mm lesioned), "
                 f"{large:g} mL -> {b.relief.median:.2f} months ({b.lesioned_length_mm:.0f} mm): {verdict} (no difference published)")  # fmt: skip
    else:
        raise ValueError(f"plan_validation {case_id!r}: unknown compare {compare!r}")
    return Comparison(case_id, case["claim"], case["source"], "READ", model, bool(passed), values=values)
