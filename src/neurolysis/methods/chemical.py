"""Chemical neurolysis in a plan (``chemical``): ethanol or phenol boluses, repeated until the nerve is stripped.

Solved by the 3D bolus, transport and dose engine (:mod:`neurolysis.engines.chemical`).
The method reads the nerve outcome after every injection into its section
(``per_injection``, ``injections_to_full_strip``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from neurolysis.chemistry import MAX_VOLUME_ML, neurolytic_agent, neurolytic_agents
from neurolysis.engines.chemical import MAX_INJECTIONS, MAX_INTERVAL_H, MAX_RATE_ML_PER_MIN, check_injections, mesh_for_bolus, simulate_chemical
from neurolysis.fields import FieldSample
from neurolysis.methods.base import RISK_MARGIN_M, VIEW_HALF_WIDTH_M, Context, Method, PhysicsResult, PlanField, injection_needle, prefixed
from neurolysis.outcome.axons import NerveOutcome
from neurolysis.physics.fem3d import TetGeometry
from neurolysis.physics.lesion import measure_lesion3d, tissue_edges

POSITION = 1
DEFAULT_WEIGHT_KG = 70.0
"""Weight for the systemic exposure (blood alcohol) when the plan gives none (warned)."""
FULL_STRIP_FRACTION = 0.95
"""A nerve is fully stripped when >= 95 % of its pain fibres are dead (issue 5)."""


def first_full_strip(pain_fractions, fraction: float = FULL_STRIP_FRACTION) -> int | None:
    """The 1-based injection after which >= ``fraction`` of the pain fibres are dead, or None."""
    return next((i + 1 for i, f in enumerate(pain_fractions) if f >= fraction - 1e-12), None)

FIELDS = (
    PlanField("agent", str, "ethanol | phenol-water | phenol-glycerin"),
    PlanField("concentration_pct", float, "% (v/v for ethanol, w/v otherwise)", number=True, unit="%",
              limits=lambda v: (neurolytic_agent(v["agent"]).concentration_min_pct, neurolytic_agent(v["agent"]).concentration_max_pct), low_inclusive=False),
    PlanField("volume_ml", float, "per injection, mL", number=True, unit="mL", limits=lambda v: (0.0, MAX_VOLUME_ML), low_inclusive=False),
    PlanField("injections", int, "repeated at the same site until the nerve is stripped", limits=lambda v: (1, MAX_INJECTIONS)),
    PlanField("interval_h", float, "between injections, h", number=True, unit="h", limits=lambda v: (0.0, MAX_INTERVAL_H), low_inclusive=False),
    PlanField("rate_ml_per_min", float, "injection rate, mL/min", number=True, unit="mL/min", limits=lambda v: (0.0, MAX_RATE_ML_PER_MIN), low_inclusive=False),
)


def _check(procedure) -> None:
    v = METHODS[0].resolved(procedure)
    prefixed(lambda: check_injections(v["agent"], v["concentration_pct"], v["volume_ml"], v["injections"], v["interval_h"], v["rate_ml_per_min"]))


def _solve(ctx: Context) -> PhysicsResult:
    v = ctx.settings
    weight = ctx.plan.patient.weight_kg
    result = simulate_chemical(
        v["agent"], v["concentration_pct"], v["volume_ml"], v["injections"], v["interval_h"], v["rate_ml_per_min"], ctx.pose, ctx.scene,
        weight_kg=DEFAULT_WEIGHT_KG if weight is None else weight, progress=ctx.progress,
        mesh=ctx.refined(mesh_for_bolus(v["agent"], v["volume_ml"], ctx.pose, ctx.scene)),
    )  # fmt: skip
    f = result.fields

    def sample(points_m: np.ndarray) -> FieldSample:
        s = result.sample(points_m)
        peak = f.mesh.interpolate(f.peak_pct, f.frame.to_local(np.asarray(points_m, float).reshape(-1, 3)), 0.0)
        return replace(s, agent_fraction=np.clip(peak / result.concentration_pct, 0.0, 1.0))

    section = {k: val for k, val in result.to_dict().items() if k not in ("warnings", "disclaimer")}
    warnings = list(result.warnings)
    if weight is None:
        warnings.append(f"patient.weight_kg not given: systemic exposure (blood alcohol) computed for {DEFAULT_WEIGHT_KG:g} kg")
    exposure = result.systemic
    if exposure.get("over_threshold"):
        warnings.append(f"SYSTEMIC TOXICITY: total phenol {exposure['phenol_mg']:.0f} mg >= {exposure['phenol_toxic_mg']:.0f} mg ({exposure['source']})")
    # the agent can travel beyond the RF margin: sample structures out to 2.5 bolus radii (<= 40 mm)
    reach = min(max(RISK_MARGIN_M, 2.5e-3 * result.bolus_radius_mm), 40e-3)
    mesh = f.mesh
    lesion = measure_lesion3d(mesh, f.dose_after[-1], 1.0, "chemical lethal index >= 1", tissue_edges(mesh), TetGeometry(mesh.nodes, mesh.tets).volume)
    return PhysicsResult(
        sample=sample,
        lesion=lesion.as_dict(),
        section=section,
        warnings=tuple(warnings),
        active_length_m=injection_needle(v),
        lethal_label="lethal region (dose Λ ≥ 1)",
        contours=((lambda pts: sample(pts).agent_fraction, 0.1, "violet", "--", "agent ≥ 10 % of injected (peak)"),),
        engine=result,
        risk_margin_m=reach,
        risk_spacing_m=0.5e-3 if reach <= RISK_MARGIN_M else 1e-3,
        view_half_width_m=max(VIEW_HALF_WIDTH_M, 1.3e-3 * result.bolus_radius_mm),
        stage_samplers=tuple(result.sampler_after(i) for i in range(result.injections - 1)),
    )


def _read_outcome(ctx: Context, physics: PhysicsResult, stages: Sequence[NerveOutcome]) -> tuple[dict, tuple[str, ...]]:
    """The nerve after each injection, and how many it took to strip it."""
    result = physics.engine
    strip = first_full_strip([o.pain_fibres_killed_fraction for o in stages])
    per_injection = [
        {
            "injection": i + 1,
            "time_h": i * result.interval_h,
            "pain_fibres_killed_fraction": o.pain_fibres_killed_fraction,
            "motor_fibres_killed_fraction": o.motor_fibres_killed_fraction,
            "spread_volume_ml": result.spread_volume_ml[i],
            "lethal_volume_ml": result.lethal_volume_ml[i],
            "lesioned_length_mm": o.lesioned_length_mm,
        }
        for i, o in enumerate(stages)
    ]
    warnings = ()
    if strip is None:
        warnings = (f"the nerve is not fully stripped: {stages[-1].pain_fibres_killed_fraction:.0%} of pain fibres dead after {result.injections} injection(s) (full strip: >= {FULL_STRIP_FRACTION:.0%})",)
    return {"per_injection": per_injection, "injections_to_full_strip": strip, "full_strip_fraction": FULL_STRIP_FRACTION}, warnings


METHODS = (
    Method(
        "chemical", "chemical", FIELDS, "chemical neurolysis (ethanol, phenol)", _check, _solve,
        needle_length_m=injection_needle, read_outcome=_read_outcome, choices={"agent": lambda: sorted(neurolytic_agents())},
    ),
)  # fmt: skip
