"""Every method at one target, side by side (``neurolysis compare``).

Each plan method is simulated at the same target with its default settings (the template's
where it has them) and its recommended placement, or with the placement, patient and
uncertainty of a given plan. With a Monte Carlo cohort (``samples``) the block probability,
relief and injury probabilities are the cohort's; without one they are the planned pose's
(P(block) 1 or 0). Methods that do not apply are listed with the reason, not dropped
(``data/compare.toml``). The nerve block's neurolytic options are the simulated entries.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed

from neurolysis._catalog import load_catalog
from neurolysis.about import DISCLAIMER
from neurolysis.anatomy.templates import load_template
from neurolysis.indications import burden
from neurolysis.methods import METHODS, method_names
from neurolysis.outcome.relief import procedures_needed
from neurolysis.planning.anatomy_spec import AnatomySpec
from neurolysis.planning.needles import PLACEMENT_KEYS
from neurolysis.planning.plan import Plan, plan_from_dict, plan_on
from neurolysis.planning.simulate import Outcome, load_scene, simulate
from neurolysis.validation import ValidationError, check_choice, check_range

HORIZON_RANGE_MONTHS = (1.0, 120.0)
MAX_SAMPLES = 5000
WORKERS_RANGE = (1, 64)


def not_applicable(template: str, method: str) -> str | None:
    """Why ``method`` does not apply at ``template`` (``data/compare.toml``), or None."""
    cat = load_catalog("compare")
    if method in cat["not_neurolytic"]:
        return str(cat["not_neurolytic"][method])
    reason = cat.get("no_access", {}).get(template, {}).get(method)
    return None if reason is None else str(reason)


def _check(template: str | None, target: str | None, horizon_months: float, samples: int | None, base: Plan | None) -> None:
    if template is None and (base is None or base.anatomy.segmentation is None):
        raise ValidationError("compare: give a template, or a plan on a template or a segmentation (label-map plans are not compared)")
    scene = load_template(template) if base is None or base.anatomy.segmentation is None else load_scene(base)  # one line for an unknown template
    if target is not None:
        check_choice("target", target, [n.name for n in scene.nerves])
    check_range("horizon_months", horizon_months, *HORIZON_RANGE_MONTHS, unit="months")
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= MAX_SAMPLES):
        raise ValidationError(f"monte_carlo = {samples!r}: must be a whole number in [1, {MAX_SAMPLES}]")


def _plans(template: str | None, target: str | None, base: Plan | None, samples: int | None, methods: tuple[str, ...]) -> dict[str, Plan]:
    out = {}
    anatomy = base.anatomy if base is not None and base.anatomy.segmentation is not None else AnatomySpec(template=template)
    base_dir = base.base_dir if base is not None else "."
    for method in methods:
        approach = base.placement.approach if base is not None and base.placement.approach != "explicit" else "parallel"
        data = plan_on(anatomy, target if base is None or not base.needles else [n.target for n in base.needles], approach, method, base_dir).as_dict()
        if base is not None:
            b = base.as_dict()
            if base.needles:  # each needle where the plan puts it; a lesion's own settings only where the method has them
                own = set(METHODS[method].field_names) - set(PLACEMENT_KEYS)
                data["needles"] = [{k: v for k, v in n.items() if k in ("target", *PLACEMENT_KEYS) or k in own} for n in b["needles"]]
                if "electrodes" in own and getattr(base.procedure, "electrodes", None) is not None:  # bipolar pairs stay pairs
                    data["procedure"]["electrodes"] = base.procedure.electrodes
            else:
                data["placement"] = b["placement"]
            data["simulation"] = b["simulation"]
            data["patient"] = data.get("patient", {}) | b.get("patient", {})
            if "uncertainty" in b:
                data["uncertainty"] = b["uncertainty"]
        if samples is not None:
            data.setdefault("uncertainty", {})["samples"] = samples
        out[method] = plan_from_dict(data, base_dir=base_dir)
    return out


def _entry(method: str, out: Outcome, horizon_months: float, reason: str | None) -> dict:
    d = out.to_dict()
    t = d["target"]
    if d.get("needles"):  # several needles: the plan relieves its territory only as far as every target is blocked
        t = t | {"pain_block": d["territory"]["pain_block"], "relief_months": d["territory"]["relief_months"], "territory": d["territory"]["name"]}
    entry = {"method": method, "applicable": reason is None, "reason": reason} | {k: v for k, v in t.items() if k != "axons"}
    cohort = d.get("uncertainty")
    if cohort is not None:
        entry |= {"p_block": cohort["p_block"], "p_block_95ci": cohort["p_block_95ci"], "relief_months": cohort["relief_months"] or t["relief_months"],
                  "p_motor_deficit": cohort["p_motor_deficit"], "uncertainty": cohort}  # fmt: skip
    else:
        entry |= {"p_block": 1.0 if t["pain_block"] else 0.0, "p_block_95ci": None, "uncertainty": None}
    p_injury = {c["name"]: c["p_injury"] for c in cohort["critical"]} if cohort else {}
    entry["critical"] = [{"name": c["name"], "kind": c["kind"], "injured": c["injured"], "p_injury": p_injury.get(c["name"], 1.0 if c["injured"] else 0.0)} for c in d["critical"]]
    entry["worst_p_injury"] = max((c["p_injury"] for c in entry["critical"]), default=0.0)
    if method == "block":
        b = d["block"]
        entry["procedures_needed"] = b["blocks_needed"]
        entry["anaesthetic_mg"] = {"per_block": b["dose_mg"], "limit": b["limit_mg"], "over_horizon": b["total_anaesthetic_mg"]}
    else:
        entry["procedures_needed"] = procedures_needed((entry["relief_months"] or {}).get("median"), t.get("relief_censored_at_months"), horizon_months)
    if "chemical" in d:
        entry["systemic"] = d["chemical"].get("systemic")
    entry["warnings"] = d["warnings"]
    entry["wall_time_s"] = round(out.wall_time_s, 2)
    entry["burden"] = _burden(method)
    return entry


def _simulated_entry(method: str, plan_data: dict, base_dir: str, horizon_months: float, reason: str | None) -> dict:
    """One method's entry, solved in a worker process (the plan travels as its sections)."""
    out = simulate(plan_from_dict(plan_data, base_dir=base_dir))
    return _entry(method, out, horizon_months, reason) | {"simulated": True}


def _in_parallel(plans: dict[str, Plan], reasons: dict, horizon_months: float, workers: int, progress) -> dict[str, dict]:
    """Each method's entry, solved in ``workers`` spawned processes, the slowest methods first."""
    cost = {m: i for i, m in enumerate(("cooled-rf", "chemical", "rf", "cryo", "pulsed-rf", "surgical", "block"))}
    order = sorted(plans, key=lambda m: cost.get(m, -1))
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # inherited by the spawned workers before numpy loads (the engines also limit BLAS to one thread)
    found = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_simulated_entry, m, plans[m].as_dict(), str(plans[m].base_dir), horizon_months, reasons[m]): m for m in order}
        for done, future in enumerate(as_completed(futures), start=1):
            found[futures[future]] = future.result()
            if progress is not None:
                progress(futures[future], done / len(futures))
    return found


def _burden(method: str) -> dict:
    """The procedure's burden from ``data/burden.toml`` (its short form)."""
    return burden(method).as_dict()


def _skipped(method: str, reason: str) -> dict:
    return {"method": method, "applicable": False, "reason": reason, "simulated": False, "p_block": None, "p_block_95ci": None, "relief_months": None,
            "procedures_needed": None, "motor_deficit": None, "critical": [], "worst_p_injury": None, "wall_time_s": 0.0, "burden": _burden(method)}  # fmt: skip


def compare_methods(template: str | None, target: str | None = None, *, horizon_months: float = 12.0, samples: int | None = None, base: Plan | None = None,
                    simulate_all: bool = False, methods: tuple[str, ...] | None = None, progress: Callable[[str, float], None] | None = None,
                    outcomes: dict | None = None, workers: int = 1) -> dict:  # fmt: skip
    """Simulate every method at ``template``'s target (or ``target``), or at the target of ``base``
    (a plan on a template or a patient's segmentation: ``template`` may then be None), and return
    the comparison (JSON-ready): {"target", "template", "horizon_months", "samples", "methods": [...]}.
    Methods that do not apply are listed with their reason and, unless ``simulate_all``, not
    simulated. ``methods`` restricts the comparison (default: every method). ``outcomes``, when given, receives each simulated method's Outcome. ``workers`` > 1
    solves the methods in that many processes at once (not with ``outcomes``: an Outcome holds
    its fields and stays in the process that solved it); the answer is the same. Input is
    checked before any solve."""
    _check(template, target, horizon_months, samples, base)
    if base is not None and base.anatomy.segmentation is not None:
        target = target or base.target.nerve
        template = load_scene(base).procedure_template  # what applies there is what applies at the template of the same procedure
    chosen = method_names() if methods is None else tuple(methods)
    for m in chosen:
        check_choice("methods", m, method_names())
    if isinstance(workers, bool) or not isinstance(workers, int) or not WORKERS_RANGE[0] <= workers <= WORKERS_RANGE[1]:
        raise ValidationError(f"workers = {workers!r}: allowed: a whole number in [{WORKERS_RANGE[0]}, {WORKERS_RANGE[1]}]")
    plans = _plans(template, target, base, samples, chosen)
    started = time.perf_counter()
    reasons = {method: not_applicable(template, method) if template else None for method in plans}
    solved = [m for m in plans if simulate_all or not reasons[m]]
    found: dict[str, dict] = {}
    if workers > 1 and outcomes is None and len(solved) > 1:
        found = _in_parallel({m: plans[m] for m in solved}, reasons, horizon_months, min(workers, len(solved)), progress)
    else:
        for k, method in enumerate(solved):
            if progress is not None:
                progress(method, k / len(solved))
            out = simulate(plans[method])
            if outcomes is not None:
                outcomes[method] = out
            found[method] = _entry(method, out, horizon_months, reasons[method]) | {"simulated": True}
    entries = [found[m] if m in found else _skipped(m, reasons[m]) for m in plans]
    block = next((e for e in entries if e["method"] == "block"), None)
    if block is not None:
        block["neurolytic_options"] = [{k: e[k] for k in ("method", "p_block", "relief_months", "procedures_needed", "worst_p_injury")} for e in entries
                                       if e["applicable"] and e["method"] != "block"]  # fmt: skip
    nerve = next(iter(plans.values())).target.nerve
    return {
        "template": template,
        "target": nerve,
        "horizon_months": horizon_months,
        "samples": samples,
        "methods": entries,
        "wall_time_s": round(time.perf_counter() - started, 1),
        "note": "each method at its recommended placement with its default settings; with samples, P(block), relief and P(injury) are over the placement cohort (failed blocks count zero relief)",
        "disclaimer": DISCLAIMER,
    }
