"""The temporary alternative in a plan (``block``): a local-anaesthetic nerve block.

Solved by the lumped block model (:mod:`neurolysis.engines.block`): onset, sensory and
motor duration, the dose against the maximum, and how many blocks a horizon would take,
beside the relief each neurolytic method gives at the same nerve. Nothing is destroyed:
relief is the conduction block itself (``PhysicsResult.reversible_relief``).
"""

from __future__ import annotations

import math

from neurolysis.chemistry import MAX_VOLUME_ML, anaesthetics, check_block_inputs, max_dose_check
from neurolysis.engines.block import Spread, block_duration_min, simulate_block
from neurolysis.fields import unharmed
from neurolysis.methods.base import Context, Method, PhysicsResult, PlanField, injection_needle, prefixed
from neurolysis.outcome.recovery_cases import neurolytic_comparison
from neurolysis.outcome.relief import Relief
from neurolysis.physics.lesion import LesionShape
from neurolysis.validation import ValidationError, check_choice, check_range

POSITION = 4

ADJUVANTS = ("epinephrine", "dexamethasone")
HORIZON_RANGE_MONTHS = (1.0, 120.0)
HOURS_PER_MONTH = 24.0 * 365.25 / 12.0

FIELDS = (
    PlanField("agent", str, "lidocaine | mepivacaine | bupivacaine | ropivacaine | chloroprocaine"),
    PlanField("concentration_pct", float, "% (w/v)", number=True, unit="% w/v", limits=lambda v: (0.0, anaesthetics()[v["agent"]].concentration_max_pct), low_inclusive=False),
    PlanField("volume_ml", float, "mL", number=True, unit="mL", limits=lambda v: (0.0, MAX_VOLUME_ML), low_inclusive=False),
    PlanField("adjuvants", tuple[str, ...], "epinephrine, dexamethasone", normalise=tuple),
    PlanField("override_max_dose", bool),
    PlanField("horizon_months", float, "compare repeated blocks with neurolysis over this horizon", number=True, unit="months", limits=lambda v: HORIZON_RANGE_MONTHS),
)


def _check(procedure) -> None:
    v = METHODS[0].resolved(procedure)
    prefixed(lambda: check_block_inputs(v["agent"], v["concentration_pct"], v["volume_ml"], None))  # weight: _check_plan
    adjuvants = v["adjuvants"]
    if isinstance(adjuvants, str) or not isinstance(adjuvants, list | tuple):
        raise ValidationError(f"procedure.adjuvants = {adjuvants!r}: must be a list, e.g. [\"epinephrine\"]; allowed values are {', '.join(ADJUVANTS)}")
    for i, a in enumerate(adjuvants):
        check_choice(f"procedure.adjuvants[{i}]", a, ADJUVANTS)
    if not isinstance(v.get("override_max_dose", False), bool):
        raise ValidationError(f"procedure.override_max_dose = {v['override_max_dose']!r}: must be true or false")
    check_range("procedure.horizon_months", v["horizon_months"], *HORIZON_RANGE_MONTHS, unit="months")
    if math.isnan(block_duration_min([(v["agent"], v["concentration_pct"])], v["volume_ml"], "epinephrine" in adjuvants, "dexamethasone" in adjuvants)):
        raise ValidationError(
            f"procedure: {v['volume_ml']:g} mL of {v['concentration_pct']:g} % {v['agent']} never reaches the blocking concentration "
            "in the nerve (the depot is too small or too dilute): raise volume_ml or concentration_pct"
        )


def _check_plan(plan) -> None:
    """A block needs the patient's weight, and its dose must be within the maximum unless overridden."""
    if plan.patient.weight_kg is None:
        raise ValidationError("patient.weight_kg: required for method 'block' (the maximum dose is per kg); add [patient] weight_kg = ...")
    v = METHODS[0].resolved(plan.procedure)
    epi = "epinephrine" in v["adjuvants"]
    dose, limit, over = prefixed(lambda: max_dose_check(v["agent"], v["concentration_pct"], v["volume_ml"], plan.patient.weight_kg, epi))
    if over and not v.get("override_max_dose", False):
        raise ValidationError(
            f"procedure: dose {dose:g} mg of {v['agent']} ({v['volume_ml']:g} mL of {v['concentration_pct']:g} %) exceeds the maximum "
            f"{limit:g} mg for {plan.patient.weight_kg:g} kg ({'with' if epi else 'without'} epinephrine); reduce volume_ml or "
            "concentration_pct, or set procedure.override_max_dose = true (or --override-max-dose) to simulate it anyway"
        )


def over_limit_warning(block: dict) -> str:
    return (f"MAXIMUM DOSE EXCEEDED (override given): {block['dose_mg']:g} mg of {block['agent']} > limit {block['limit_mg']:g} mg "
            f"for {block['weight_kg']:g} kg: risk of local-anaesthetic systemic toxicity")  # fmt: skip


def _block_relief(sensory_h: Spread) -> Relief:
    note = f"temporary conduction block: sensory {sensory_h.median:.1f} h (10-90 %: {sensory_h.p10:.1f}-{sensory_h.p90:.1f} h); no axon is destroyed"
    return Relief(sensory_h.median / HOURS_PER_MONTH, sensory_h.p10 / HOURS_PER_MONTH, sensory_h.p90 / HOURS_PER_MONTH, "conduction-block", note)


def _solve(ctx: Context) -> PhysicsResult:
    v = ctx.settings
    weight = ctx.plan.patient.weight_kg
    epi, dex = "epinephrine" in v["adjuvants"], "dexamethasone" in v["adjuvants"]
    b = simulate_block(v["agent"], v["concentration_pct"], v["volume_ml"], weight, epi, dex, seed=ctx.plan.simulation.seed, override_max_dose=v.get("override_max_dose", False))
    horizon_h = v["horizon_months"] * HOURS_PER_MONTH
    blocks = math.ceil(horizon_h / b.sensory_h.median)
    section = {
        "agent": b.agent,
        "concentration_pct": v["concentration_pct"],
        "volume_ml": v["volume_ml"],
        "adjuvants": list(v["adjuvants"]),
        "weight_kg": weight,
        "onset_min": b.onset_min,
        "sensory_block_h": {"median": b.sensory_h.median, "p10": b.sensory_h.p10, "p90": b.sensory_h.p90},
        "motor_block_h": {"median": b.motor_h.median, "p10": b.motor_h.p10, "p90": b.motor_h.p90},
        "dose_mg": b.dose_mg,
        "limit_mg": b.limit_mg,
        "over_limit": b.over_limit,
        "override_max_dose": bool(v.get("override_max_dose", False)),
        "horizon_months": v["horizon_months"],
        "blocks_needed": blocks,
        "total_anaesthetic_mg": blocks * b.dose_mg,
        "horizon_note": f"continuous relief over {v['horizon_months']:g} months by repeated single blocks of the median duration (an upper count: a catheter infusion or a neurolytic procedure is what is used)",
        "neurolytic_options": neurolytic_comparison(ctx.nerve, v["horizon_months"], ctx.plan.simulation.seed),
        "model": "two-compartment depot/nerve uptake calibrated to published block durations (docs/models/block.md)",
    }
    warnings = (over_limit_warning(section),) if b.over_limit else ()
    no_lesion = LesionShape("no lesion: a nerve block destroys nothing", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0).as_dict()
    return PhysicsResult(unharmed, no_lesion, section, warnings, injection_needle(v), "no lesion (reversible block)",
                         reversible_relief=_block_relief(b.sensory_h), moves_with_needle=False)


METHODS = (
    Method(
        "block", "block", FIELDS, "local-anaesthetic nerve block (temporary)", _check, _solve, check_plan=_check_plan,
        needle_length_m=injection_needle, choices={"agent": lambda: sorted(anaesthetics()), "adjuvants": lambda: list(ADJUVANTS)},
    ),
)  # fmt: skip
