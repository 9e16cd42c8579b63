"""The one place where a method's physics becomes a nerve outcome and a critical-structure risk.

For every method: the target nerve's outcome from the final fields (and, for methods with
stages such as repeated injections, after each stage), the dose and injury flag of every
critical structure in the box around the tip, and the risk warnings (spinal cord first).
A reversible block replaces regrowth relief by its own duration.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from neurolysis.methods.base import Context, PhysicsResult
from neurolysis.outcome.axons import NerveOutcome, nerve_outcome
from neurolysis.outcome.relief import Territory, territory_for
from neurolysis.outcome.risk import StructureRisk, assess_risk, risk_warnings


@dataclass(frozen=True, eq=False)
class Assessment:
    """``target``: the target nerve after the whole procedure; ``stages``: after each stage,
    the last being ``target``; ``critical``: every critical structure in scene order;
    ``warnings``: one capitalised line per injured structure, most severe first; ``targets``:
    every target nerve of the plan (several needles), the first being ``target``."""

    target: NerveOutcome
    stages: tuple[NerveOutcome, ...]
    critical: tuple[StructureRisk, ...]
    warnings: tuple[str, ...]
    targets: tuple[NerveOutcome, ...] = ()


def territory_of(ctx: Context, nerve_name: str | None = None) -> Territory:
    """A target's territory (untreated input, sprouting, disease course) and the patient's age."""
    sim = ctx.plan.simulation
    return territory_for(ctx.scene.procedure_template or ctx.scene.name, nerve_name or ctx.nerve.name, ctx.plan.patient.age_years, sim.relief_endpoint or "complete")


def assess(ctx: Context, physics: PhysicsResult) -> Assessment:
    """Nerve outcome (per stage) of every target and critical-structure risk of ``physics`` in
    ``ctx``'s anatomy; the risk box covers every needle's tip."""
    sim = ctx.plan.simulation
    method = ctx.plan.procedure.method

    def outcome(nerve, sampler) -> NerveOutcome:
        found = nerve_outcome(nerve, sampler, method, seed=sim.seed, n_axons=sim.n_axons, territory=territory_of(ctx, nerve.name))
        if physics.reversible_relief is not None and sampler is physics.sample:
            found = replace(found, pain_block=True, relief=physics.reversible_relief)
        return found

    stages = [outcome(ctx.nerve, s) for s in physics.stage_samplers]
    target = outcome(ctx.nerve, physics.sample)
    stages.append(target)
    nerves = list({part.nerve.name: part.nerve for part in ctx.lesions}.values())[1:] if ctx.lesions else []
    targets = (target, *(outcome(n, physics.sample) for n in nerves if n.name != ctx.nerve.name))
    lo, hi = (np.asarray(b) for b in ctx.scene.bounds_m)
    tips = np.array([pose.tip_m for part in (ctx.lesions or (ctx,)) for pose in (part.pose, part.partner) if pose is not None])
    margin = physics.risk_margin_m
    box = (np.maximum(tips.min(axis=0) - margin, lo), np.minimum(tips.max(axis=0) + margin, hi))
    critical = assess_risk(ctx.scene, physics.sample, box_m=box, spacing_m=physics.risk_spacing_m)
    return Assessment(target, tuple(stages), tuple(critical), tuple(risk_warnings(critical)), targets)
