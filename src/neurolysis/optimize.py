"""Search placement and settings for the best block under a risk limit (``neurolysis optimize``).

Variables (``data/optimize.toml``): the tip moved by (dx, dy, dz) from the plan's pose, the
needle tilted about two axes perpendicular to it, and the method's main settings (RF: set
temperature, time, tip; cooled RF: temperature, time; chemical: volume, concentration,
injections; cryo: freeze time). Each evaluation solves the plan in full and reads a seeded
placement cohort (the same seed every time: common random numbers), and scores

    score = P(block) + w min(relief median / horizon, 1) - penalty max(0, worst P(injury) - limit)

Search (seeded, reproducible): the plan in both approaches, a Latin hypercube around the
better one (``scipy.stats.qmc``), then Nelder-Mead (``scipy.optimize.minimize``) from the best
point, within an evaluation budget. The trade-off front is the set of evaluations not
dominated in (P(block) up, worst P(injury) down).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.spatial.transform import Rotation
from scipy.stats import qmc

from neurolysis._catalog import load_catalog
from neurolysis.about import DISCLAIMER
from neurolysis.methods import METHODS
from neurolysis.planning.lesions import is_bipolar
from neurolysis.planning.plan import Plan, plan_from_dict
from neurolysis.planning.simulate import prepare, simulate
from neurolysis.validation import ValidationError, check_range

BUDGET_RANGE = (4, 200)


@dataclass(frozen=True)
class Variable:
    """One searched quantity: its name, bounds (or catalogued ``choices``), and whether it is a whole number."""

    name: str
    low: float
    high: float
    choices: tuple[float, ...] = ()
    integer: bool = False

    def value(self, u: float) -> float:
        """The value at the unit coordinate u in [0, 1]."""
        u = min(1.0, max(0.0, float(u)))
        if self.choices:
            return self.choices[min(len(self.choices) - 1, int(u * len(self.choices)))]
        v = self.low + u * (self.high - self.low)
        return float(round(v)) if self.integer else v


def search_space(plan: Plan) -> tuple[Variable, ...]:
    """The variables searched for ``plan``'s method (placement first, then settings)."""
    cat = load_catalog("optimize")
    method = plan.procedure.method
    if method not in cat["method"]:
        raise ValidationError(f"procedure.method = {method!r}: optimize searches {sorted(cat['method'])} (the others have no lesion to place or size)")
    off, tilt = float(cat["placement"]["offset_mm"]), float(cat["placement"]["tilt_deg"])
    prefixes = tuple(dict.fromkeys(_needle_prefixes(plan)))
    out = [Variable(f"{prefix}d{a}_mm", -off, off) for prefix in prefixes for a in "xyz"]
    out += [Variable(f"{prefix}tilt_{a}_deg", -tilt, tilt) for prefix in prefixes for a in "ab"]
    for name, spec in cat["method"][method].items():
        if isinstance(spec, dict) and "choices" in spec:
            out.append(Variable(name, min(spec["choices"]), max(spec["choices"]), tuple(float(c) for c in spec["choices"])))
        elif isinstance(spec, dict) and "integer" in spec:
            out.append(Variable(name, float(spec["integer"][0]), float(spec["integer"][1]), integer=True))
        elif isinstance(spec, dict):  # by agent
            agent = plan.procedure.agent or "ethanol"
            low, high = spec.get(agent, spec.get("ethanol"))
            out.append(Variable(name, float(low), float(high)))
        else:
            out.append(Variable(name, float(spec[0]), float(spec[1])))
    return tuple(out)


def _needle_prefixes(plan: Plan) -> tuple[str, ...]:
    """Each needle's placement variables' prefix: "" for one needle, ``needles[k].`` for each of
    several; the second needle of a bipolar pair moves with the first (its prefix), so the pair
    stays parallel at its spacing."""
    if not plan.needles:
        return ("",)
    bipolar = is_bipolar(plan)
    return tuple(f"needles[{k - k % 2 if bipolar else k}]." for k in range(len(plan.needles)))


def _placement_count(plan: Plan) -> int:
    return 5 * len(set(_needle_prefixes(plan)))


def _tilted(direction: np.ndarray, a_deg: float, b_deg: float) -> np.ndarray:
    d = direction / np.linalg.norm(direction)
    helper = np.array([1.0, 0.0, 0.0]) if abs(d[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(d, helper)
    u /= np.linalg.norm(u)
    w = np.cross(d, u)
    return Rotation.from_rotvec(math.radians(a_deg) * u + math.radians(b_deg) * w).apply(d)


def candidate(plan: Plan, poses, values: dict[str, float], samples: int) -> Plan:
    """``plan`` with each needle at its pose (``poses``: one, or one per [[needles]] table) moved by
    the placement values and the settings set."""
    data = plan.as_dict()
    for k, (prefix, pose) in enumerate(zip(_needle_prefixes(plan), poses if isinstance(poses, list | tuple) else [poses], strict=True)):
        tip = pose.tip_m * 1e3 + np.array([values[f"{prefix}d{a}_mm"] for a in "xyz"])
        direction = _tilted(np.asarray(pose.direction, float), values[f"{prefix}tilt_a_deg"], values[f"{prefix}tilt_b_deg"])
        placed = {"approach": "explicit", "tip_mm": [round(float(v), 4) for v in tip], "direction": [round(float(v), 6) for v in direction]}
        if plan.needles:
            data["needles"][k] = {key: v for key, v in data["needles"][k].items() if key not in ("approach", "offset_mm", "tip_mm", "direction")} | placed
        else:
            data["placement"] = placed
    proc = data["procedure"]
    for name, v in values.items():
        if name in ("set_temp_c", "time_s", "tip_mm", "concentration_pct"):
            proc[name] = round(v, 3)
        elif name == "injections":
            proc[name] = int(v)
        elif name == "volume_scale":
            proc["volume_ml"] = round(float(proc.get("volume_ml") or _default(plan, "volume_ml")) * v, 3)
        elif name == "freeze_s":
            cycles = proc.get("cycles") or _default(plan, "cycles")
            proc["cycles"] = [[kind, round(v, 1) if kind == "freeze" else secs] for kind, secs in cycles]
    data["uncertainty"] = dict(data.get("uncertainty", {})) | {"samples": samples}
    return plan_from_dict(data, base_dir=plan.base_dir)


def _default(plan: Plan, field_name: str):
    m = METHODS[plan.procedure.method]
    resolved = m.resolved(plan.procedure)
    return resolved[field_name] if field_name in resolved else m.plan_new_values()[field_name]  # RF: the device defaults plan new writes


@dataclass(frozen=True)
class Evaluation:
    values: dict
    p_block: float
    relief_median_months: float
    worst_p_injury: float
    worst_structure: str | None
    score: float
    plan: Plan
    refused: str = ""  # why the planner refused this candidate (counted infeasible)

    def to_dict(self) -> dict:
        return {"values": {k: round(v, 3) for k, v in self.values.items()}, "p_block": self.p_block, "relief_median_months": self.relief_median_months,
                "worst_p_injury": self.worst_p_injury, "worst_structure": self.worst_structure, "score": round(self.score, 4)} | ({"refused": self.refused} if self.refused else {})  # fmt: skip


def pareto_front(evals: list[Evaluation]) -> list[Evaluation]:
    """Evaluations no other beats in both P(block) (higher) and worst P(injury) (lower)."""
    front = [e for e in evals if not any((o.p_block >= e.p_block and o.worst_p_injury <= e.worst_p_injury) and (o.p_block > e.p_block or o.worst_p_injury < e.worst_p_injury) for o in evals)]
    return sorted({(e.p_block, e.worst_p_injury): e for e in front}.values(), key=lambda e: e.worst_p_injury)


def optimize_plan(plan: Plan, *, max_risk: float = 0.01, budget: int | None = None, samples: int | None = None, seed: int | None = None,
                  progress: Callable[[int, int, Evaluation], None] | None = None) -> dict:  # fmt: skip
    """Search ``plan``'s placement and settings (module docstring); returns the JSON-ready result
    with ``best_plan`` (a plan dict the user can run), ``baseline``, ``best``, ``front``, ``evaluations``."""
    cat = load_catalog("optimize")["objective"]
    check_range("max_risk", max_risk, 0.0, 1.0, )
    budget = int(cat["budget"] if budget is None else budget)
    if not BUDGET_RANGE[0] <= budget <= BUDGET_RANGE[1]:
        raise ValidationError(f"budget = {budget}: must be a whole number in [{BUDGET_RANGE[0]}, {BUDGET_RANGE[1]}]")
    samples = int(cat["samples"] if samples is None else samples)
    seed = plan.simulation.seed if seed is None else int(seed)
    variables = search_space(plan)
    started = time.perf_counter()
    weight, horizon, penalty = float(cat["relief_weight"]), float(cat["horizon_months"]), float(cat["infeasible_penalty"])
    evals: list[Evaluation] = []
    cache: dict[tuple, Evaluation] = {}

    def evaluate(base: Plan, pose, values: dict[str, float]) -> Evaluation:
        key = (base.placement.approach, *(round(values[v.name], 4) for v in variables))  # one needle's approach, or the needles' own
        if key in cache:
            return cache[key]
        cand = candidate(base, pose, values, samples)
        try:
            u = simulate(cand).uncertainty.to_dict()
        except ValidationError as refused:  # e.g. the moved tip lies in bone: a placement the planner refuses
            e = Evaluation(dict(values), 0.0, 0.0, 1.0, None, -penalty, cand, str(refused))
            cache[key] = e
            evals.append(e)
            return e
        worst = max(u["critical"], key=lambda c: c["p_injury"], default=None)
        p_inj = 0.0 if worst is None else float(worst["p_injury"])
        relief = float((u["relief_months"] or {}).get("median") or 0.0)
        score = u["p_block"] + weight * min(relief / horizon, 1.0) - penalty * max(0.0, p_inj - max_risk)
        e = Evaluation(dict(values), float(u["p_block"]), relief, p_inj, worst["name"] if worst and p_inj > 0 else None, score, cand)
        cache[key] = e
        evals.append(e)
        if progress is not None:
            progress(len(evals), budget, e)
        return e

    placed = _placement_count(plan)

    def settings_of(p: Plan) -> dict[str, float]:
        v = {var.name: 0.0 for var in variables[:placed]}
        for var in variables[placed:]:
            if var.name == "volume_scale":
                v[var.name] = 1.0
            elif var.name == "freeze_s":
                v[var.name] = float(max(s for k, s in _default(p, "cycles") if k == "freeze"))
            else:
                v[var.name] = float(_default(p, var.name))
        return v

    approaches = [plan.placement.approach] + ([a for a in ("parallel", "perpendicular") if a != plan.placement.approach] if plan.placement.approach != "explicit" and not plan.needles else [])
    starts = []
    for approach in approaches:
        base = plan if approach == plan.placement.approach else plan_from_dict(plan.as_dict() | {"placement": {"approach": approach, "offset_mm": list(plan.placement.offset_mm)}}, base_dir=plan.base_dir)
        ctx = prepare(base)
        pose = [p for part in ctx.lesions for p in (part.pose, part.partner) if p is not None] if ctx.lesions else ctx.pose
        starts.append((evaluate(base, pose, settings_of(base)), base, pose))
    baseline = starts[0][0]
    best0, base, pose = max(starts, key=lambda s: s[0].score)

    def to_values(u: np.ndarray) -> dict[str, float]:
        return {v.name: v.value(x) for v, x in zip(variables, u)}

    def unit_of(values: dict[str, float]) -> np.ndarray:
        return np.array([0.5 if v.high == v.low else (values[v.name] - v.low) / (v.high - v.low) for v in variables])

    remaining = budget - len(evals)
    n_init = max(0, min(int(cat["initial_design"]), remaining // 2))
    design = [evaluate(base, pose, to_values(u)) for u in qmc.LatinHypercube(d=len(variables), seed=np.random.default_rng([seed, 11])).random(n_init)] if n_init else []
    start = max([best0, *design], key=lambda e: e.score)  # points around the chosen approach's pose
    remaining = budget - len(evals)
    if remaining > 0:
        x0 = unit_of(start.values)
        simplex = np.vstack([x0] + [np.clip(x0 + 0.15 * np.eye(len(x0))[i], 0, 1) for i in range(len(x0))])
        minimize(lambda u: -evaluate(base, pose, to_values(np.clip(u, 0, 1))).score, x0, method="Nelder-Mead",
                 options={"maxfev": remaining, "initial_simplex": simplex, "xatol": 1e-3, "fatol": 1e-4})  # fmt: skip
    feasible = [e for e in evals if e.worst_p_injury <= max_risk and not e.refused]
    best = max(feasible or evals, key=lambda e: e.score)
    front = pareto_front([e for e in evals if not e.refused])
    return {
        "max_risk": max_risk,
        "samples_per_evaluation": samples,
        "seed": seed,
        "variables": [{"name": v.name, "low": v.low, "high": v.high, "choices": list(v.choices) or None, "integer": v.integer} for v in variables],
        "baseline": baseline.to_dict(),
        "best": best.to_dict() | {"feasible": best.worst_p_injury <= max_risk},
        "improvement": {"p_block": round(best.p_block - baseline.p_block, 4), "relief_median_months": round(best.relief_median_months - baseline.relief_median_months, 3),
                        "score": round(best.score - baseline.score, 4)},
        "best_plan": best.plan.as_dict(),
        "front": [e.to_dict() for e in front],
        "evaluations": [e.to_dict() for e in evals],
        "n_evaluations": len(evals),
        "wall_time_s": round(time.perf_counter() - started, 1),
        "note": "every evaluation is a full solve plus a seeded placement cohort; P(block) and P(injury) are the cohort's (the same poses relative to the needle in every evaluation)",
        "disclaimer": DISCLAIMER,
    }
