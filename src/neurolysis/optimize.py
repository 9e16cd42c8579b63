"""Search placement and settings for the best block under a risk limit (``neurolysis optimize``).

Variables (``data/optimize.toml``): the tip moved by (dx, dy, dz) from the plan's pose, the
needle tilted about two axes perpendicular to it, and the method's main settings (RF: set
temperature, time, tip; cooled RF: temperature, time; chemical: volume, concentration,
injections; cryo: freeze time). Each evaluation reads a seeded placement cohort (the same seed
every time: common random numbers) and scores

    score = P(block) + w min(relief median / horizon, 1) - penalty max(0, worst P(injury) - limit)

Search (seeded, reproducible), one needle: the plan solved in full, the other approach read
from it moved (and solved in full only if it reads better); the settings tried in full solves
at the better approach's pose (the largest lesion the bounds
allow, then a Latin hypercube, ``scipy.stats.qmc``); the placement searched with the best
settings (a Latin hypercube, then Nelder-Mead, ``scipy.optimize.minimize``), each candidate
read from that full solve moved rigidly to it (``simulate.moved_cohort``: a move changes
where the lesion lies, not its shape, which is exact in homogeneous tissue); then the best
moved candidate is solved in full (the next best if it disappoints, while full solves
remain). The search stops early once a full solve reaches the highest score there is
(P(block) 1, relief to the horizon, within the risk limit). The answer (``best``) and the trade-off front (the evaluations not dominated in
P(block) up, worst P(injury) down) are full solves only; ``moved_checks`` sets each check's
moved reading beside its full solve. Several needles: every evaluation is a full solve
(a Latin hypercube over all variables, then Nelder-Mead), within the budget.
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
from neurolysis.fields import NeedlePose
from neurolysis.methods import METHODS
from neurolysis.outcome.field_tables import SolvedFields
from neurolysis.planning.lesions import is_bipolar
from neurolysis.planning.plan import Plan, plan_from_dict
from neurolysis.planning.simulate import Outcome, moved_cohort, prepare, solve
from neurolysis.validation import ValidationError, check_range

BUDGET_RANGE = (4, 200)
FULL_SOLVES_RANGE = (2, 200)


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
    solve: str = "full"  # "full": solved at its own pose; "moved": read from a solve of the same settings elsewhere

    def to_dict(self) -> dict:
        return {"values": {k: round(v, 3) for k, v in self.values.items()}, "p_block": self.p_block, "relief_median_months": self.relief_median_months,
                "worst_p_injury": self.worst_p_injury, "worst_structure": self.worst_structure, "score": round(self.score, 4), "solve": self.solve} | ({"refused": self.refused} if self.refused else {})  # fmt: skip


def pareto_front(evals: list[Evaluation]) -> list[Evaluation]:
    """Evaluations no other beats in both P(block) (higher) and worst P(injury) (lower)."""
    front = [e for e in evals if not any((o.p_block >= e.p_block and o.worst_p_injury <= e.worst_p_injury) and (o.p_block > e.p_block or o.worst_p_injury < e.worst_p_injury) for o in evals)]
    return sorted({(e.p_block, e.worst_p_injury): e for e in front}.values(), key=lambda e: e.worst_p_injury)


class _Search:
    """The evaluations of one optimisation: each candidate solved in full, or (``moved``) read
    from the full solve of the same settings nearest its pose (``simulate.moved_cohort``)."""

    def __init__(self, variables, placed: int, samples: int, max_risk: float, budget: int, full_cap: int, progress, moves: bool):
        cat = load_catalog("optimize")["objective"]
        self.weight, self.horizon, self.penalty = float(cat["relief_weight"]), float(cat["horizon_months"]), float(cat["infeasible_penalty"])
        self.variables, self.placed, self.samples, self.max_risk = variables, placed, samples, max_risk
        self.budget, self.full_cap, self.progress, self.moves = budget, full_cap, progress, moves
        self.evals: list[Evaluation] = []
        self.cache: dict[tuple, Evaluation] = {}
        self.solved: list[tuple[tuple, Outcome, SolvedFields]] = []  # (settings key, full solve, its tabulated fields) of every candidate solved in full

    @property
    def done(self) -> bool:
        """A full solve scored the highest score there is (P(block) 1, relief to the horizon, within the risk limit): nothing can beat it."""
        return any(e.solve == "full" and e.score >= 1.0 + self.weight - 1e-12 for e in self.evals)

    @property
    def full_count(self) -> int:
        return sum(e.solve == "full" for e in self.evals)

    def _settings_key(self, values: dict[str, float]) -> tuple:
        return tuple(round(values[v.name], 4) for v in self.variables[self.placed:])

    def source(self, values: dict[str, float], pose: NeedlePose) -> tuple[Outcome, SolvedFields] | None:
        """The full solve of these settings nearest ``pose`` (tip and far end of a 10 mm shaft); None if there is none."""
        key = self._settings_key(values)
        far = lambda p: np.concatenate([p.tip_m, p.tip_m - 10e-3 * np.asarray(p.direction)])
        return min(((out, tables) for k, out, tables in self.solved if k == key), key=lambda s: float(np.linalg.norm(far(s[0].pose) - far(pose))), default=None)

    def evaluate(self, base: Plan, pose, values: dict[str, float], full: bool) -> Evaluation:
        key = (base.placement.approach, full, *(round(values[v.name], 4) for v in self.variables))  # one needle's approach, or the needles' own
        if key in self.cache:
            return self.cache[key]
        cand = candidate(base, pose, values, self.samples)
        try:
            ctx = prepare(cand)
            source = None if full else self.source(values, ctx.pose)
            full = full or source is None  # no solve of these settings to move: this one is solved
            if full and self.moves:  # the cohort read from the tables the moved candidates will read too
                outcome = solve(ctx, with_cohort=False)
                self.solved.append((self._settings_key(values), outcome, SolvedFields.of(outcome.physics, outcome.pose)))
                u = moved_cohort(ctx, *self.solved[-1][1:]).to_dict()
            elif full:
                u = solve(ctx).uncertainty.to_dict()
            else:
                u = moved_cohort(ctx, *source).to_dict()
        except ValidationError as refused:  # e.g. the moved tip lies in bone: a placement the planner refuses
            e = Evaluation(dict(values), 0.0, 0.0, 1.0, None, -self.penalty, cand, str(refused), "full" if full else "moved")
        else:
            worst = max(u["critical"], key=lambda c: c["p_injury"], default=None)
            p_inj = 0.0 if worst is None else float(worst["p_injury"])
            relief = float((u["relief_months"] or {}).get("median") or 0.0)
            score = u["p_block"] + self.weight * min(relief / self.horizon, 1.0) - self.penalty * max(0.0, p_inj - self.max_risk)
            e = Evaluation(dict(values), float(u["p_block"]), relief, p_inj, worst["name"] if worst and p_inj > 0 else None, score, cand, solve="full" if full else "moved")
        self.cache[key] = e
        self.evals.append(e)
        if self.progress is not None and not e.refused:
            self.progress(len(self.evals), self.budget, e)
        return e


def optimize_plan(plan: Plan, *, max_risk: float = 0.01, budget: int | None = None, samples: int | None = None, seed: int | None = None,
                  progress: Callable[[int, int, Evaluation], None] | None = None, full_solves: int | None = None) -> dict:  # fmt: skip
    """Search ``plan``'s placement and settings (module docstring); returns the JSON-ready result
    with ``best_plan`` (a plan dict the user can run), ``baseline``, ``best``, ``front``, ``evaluations``.
    ``budget``: evaluations in all; ``full_solves``: how many of them may be solved in full (the
    rest move a solved field); a plan with several needles solves every evaluation in full."""
    cat = load_catalog("optimize")["objective"]
    check_range("max_risk", max_risk, 0.0, 1.0, )
    budget = int(cat["budget"] if budget is None else budget)
    if not BUDGET_RANGE[0] <= budget <= BUDGET_RANGE[1]:
        raise ValidationError(f"budget = {budget}: must be a whole number in [{BUDGET_RANGE[0]}, {BUDGET_RANGE[1]}]")
    full_solves = int(cat["full_solves"] if full_solves is None else full_solves)
    if not FULL_SOLVES_RANGE[0] <= full_solves <= FULL_SOLVES_RANGE[1]:
        raise ValidationError(f"full_solves = {full_solves}: must be a whole number in [{FULL_SOLVES_RANGE[0]}, {FULL_SOLVES_RANGE[1]}]")
    samples = int(cat["samples"] if samples is None else samples)
    seed = plan.simulation.seed if seed is None else int(seed)
    variables = search_space(plan)
    started = time.perf_counter()
    placed = _placement_count(plan)
    moves = not plan.needles  # one needle: placement moves read a solved field; several: every evaluation in full
    search = _Search(variables, placed, samples, max_risk, budget, min(full_solves, budget) if moves else budget, progress, moves)

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
        if starts and moves:  # another approach: read from the plan's solve first, solved in full only if it reads better (one full solve kept for the check)
            screened = search.evaluate(base, pose, settings_of(base), full=False)
            if screened.score <= starts[0][0].score or search.full_count >= search.full_cap - 1:
                continue
        starts.append((search.evaluate(base, pose, settings_of(base), full=True), base, pose))
    baseline = starts[0][0]
    best0, base, pose = max(starts, key=lambda s: s[0].score)
    rng = np.random.default_rng([seed, 11])
    search_in = _settings_then_placement if moves else _all_in_full
    checks = search_in(search, base, pose, best0, rng, int(cat["initial_design"]))
    evals = search.evals
    full = [e for e in evals if e.solve == "full" and not e.refused]
    feasible = [e for e in full if e.worst_p_injury <= max_risk]
    best = max(feasible or full or evals, key=lambda e: e.score)
    front = pareto_front(full)
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
        "n_full_solves": search.full_count,
        "moved_checks": checks,
        "wall_time_s": round(time.perf_counter() - started, 1),
        "note": "settings are tried in full solves; placement moves read the full solve of the same settings moved rigidly (solve = moved) and the best of them is solved in full; "
                "best and front are full solves only; P(block) and P(injury) are a seeded placement cohort's (the same poses relative to the needle in every evaluation)" if moves else
                "every evaluation is a full solve plus a seeded placement cohort (several needles); P(block) and P(injury) are the cohort's (the same poses relative to the needle in every evaluation)",
        "disclaimer": DISCLAIMER,
    }


def _values(variables, u) -> dict[str, float]:
    return {v.name: v.value(x) for v, x in zip(variables, u)}


def _unit(variables, values: dict[str, float]) -> np.ndarray:
    return np.array([0.5 if v.high == v.low else (values[v.name] - v.low) / (v.high - v.low) for v in variables])


def _nelder_mead(objective, x0: np.ndarray, maxfev: int) -> None:
    simplex = np.vstack([x0] + [np.clip(x0 + 0.15 * np.eye(len(x0))[i], 0, 1) for i in range(len(x0))])
    minimize(lambda u: -objective(np.clip(u, 0, 1)), x0, method="Nelder-Mead", options={"maxfev": maxfev, "initial_simplex": simplex, "xatol": 1e-3, "fatol": 1e-4})


def _all_in_full(search: _Search, base: Plan, pose, start: Evaluation, rng, n_init: int) -> list:
    """Every evaluation a full solve: a Latin hypercube over all variables, then Nelder-Mead from the best point."""
    variables = search.variables
    remaining = search.budget - len(search.evals)
    n_init = max(0, min(n_init, remaining // 2))
    design = [search.evaluate(base, pose, _values(variables, u), full=True) for u in qmc.LatinHypercube(d=len(variables), seed=rng).random(n_init)] if n_init else []
    start = max([start, *design], key=lambda e: e.score)
    if search.budget > len(search.evals):
        _nelder_mead(lambda u: search.evaluate(base, pose, _values(variables, u), full=True).score, _unit(variables, start.values), search.budget - len(search.evals))
    return []


def _settings_then_placement(search: _Search, base: Plan, pose: NeedlePose, start: Evaluation, rng, n_init: int) -> list[dict]:
    """Settings in full solves at the planned placement (the largest lesion the bounds allow, then
    a Latin hypercube), keeping one full solve; placement (a Latin hypercube, then Nelder-Mead)
    with the best settings, each candidate read from that solve moved; then the best moved
    candidates solved in full, best first, until one beats the best full solve or the full solves
    run out. Returns each check: the moved reading against the full solve of the same candidate."""
    variables, placed = search.variables, search.placed
    where, setting = variables[:placed], variables[placed:]
    centre = {v.name: 0.0 for v in where}
    tried = [start]
    if setting:
        designs = [np.ones(len(setting)), *qmc.LatinHypercube(d=len(setting), seed=rng).random(search.full_cap)]
        for u in designs:
            if search.done or search.full_count >= search.full_cap - 1 or len(search.evals) >= search.budget - 1:
                break
            tried.append(search.evaluate(base, pose, centre | _values(setting, u), full=True))
    best = max(tried, key=lambda e: e.score)
    if search.done:
        return []
    fixed = {v.name: best.values[v.name] for v in setting}
    keep = search.full_cap - search.full_count
    room = search.budget - len(search.evals) - keep
    n_init = max(0, min(n_init, room // 2))
    for u in qmc.LatinHypercube(d=len(where), seed=rng).random(n_init) if n_init else []:
        search.evaluate(base, pose, _values(where, u) | fixed, full=False)
    room = search.budget - len(search.evals) - keep
    if room > 0:
        _nelder_mead(lambda u: search.evaluate(base, pose, _values(where, u) | fixed, full=False).score, _unit(where, best.values), room)
    checks = []
    for moved in sorted((e for e in search.evals if e.solve == "moved" and not e.refused and e.score > best.score), key=lambda e: -e.score):
        if search.full_count >= search.full_cap or len(search.evals) >= search.budget:
            break
        full = search.evaluate(base, pose, moved.values, full=True)
        checks.append({"values": {k: round(v, 3) for k, v in moved.values.items()}, "moved": {"p_block": moved.p_block, "worst_p_injury": moved.worst_p_injury, "score": round(moved.score, 4)},
                       "full": {"p_block": full.p_block, "worst_p_injury": full.worst_p_injury, "score": round(full.score, 4)}})  # fmt: skip
        if full.score > best.score:
            break
    return checks
