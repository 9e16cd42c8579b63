"""Chemical neurolysis in a plan (``chemical``): ethanol or phenol boluses, repeated until the nerve is stripped.

Solved by the 3D bolus, transport and dose engine (:mod:`neurolysis.engines.chemical`).
The method reads the nerve outcome after every injection into its section
(``per_injection``, ``injections_to_full_strip``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from neurolysis.chemistry import MAX_VOLUME_ML, millimolar_per_pct, neurolytic_agent, neurolytic_agents
from neurolysis.engines.chemical import MAX_INJECTIONS, MAX_INTERVAL_H, MAX_RATE_ML_PER_MIN, check_injections, mesh_for_bolus, simulate_chemical
from neurolysis.fields import FieldSample
from neurolysis.methods.base import RISK_MARGIN_M, VIEW_HALF_WIDTH_M, Context, Method, PhysicsResult, PlanField, centreline_length_m, injection_needle, prefixed
from neurolysis.outcome.axons import NerveOutcome
from neurolysis.outcome.spread import draw_poses, placement_spread
from neurolysis.physics.fem3d import TetGeometry
from neurolysis.physics.lesion import measure_lesion3d, tissue_edges
from neurolysis.validation import check_choice

POSITION = 1
REPEAT_SITES = ("spread", "same")
REPEAT_STREAM = 101
"""draw_poses stream of the repeat injections (independent of the cohort's and other needles' draws)."""
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
    PlanField("injections", int, "repeated until the nerve is stripped", limits=lambda v: (1, MAX_INJECTIONS)),
    PlanField("repeat_site", str, "spread (each repeat where the re-aimed needle lands: the target's placement spread) | same (the planned point)"),
    PlanField("interval_h", float, "between injections, h", number=True, unit="h", limits=lambda v: (0.0, MAX_INTERVAL_H), low_inclusive=False),
    PlanField("rate_ml_per_min", float, "injection rate, mL/min", number=True, unit="mL/min", limits=lambda v: (0.0, MAX_RATE_ML_PER_MIN), low_inclusive=False),
)


def _check(procedure) -> None:
    v = METHODS[0].resolved(procedure)
    prefixed(lambda: check_injections(v["agent"], v["concentration_pct"], v["volume_ml"], v["injections"], v["interval_h"], v["rate_ml_per_min"]))
    check_choice("procedure.repeat_site", v["repeat_site"], REPEAT_SITES)


def injection_tips(ctx: Context, injections: int, fine_margin_m: float) -> list[np.ndarray] | None:
    """Where each injection goes (anatomy frame, m): the first at the planned tip; with
    ``repeat_site = "spread"`` each repeat at a tip drawn from the target's placement spread
    (seeded by the plan; no gross miss: the operator re-aims under imaging), kept within
    ``fine_margin_m`` of the planned tip. None: all at the planned tip."""
    if injections == 1 or ctx.settings["repeat_site"] == "same":
        return None
    u = ctx.plan.uncertainty
    spread = replace(placement_spread(ctx.nerve.name, u.operator, offset_sd_mm=u.offset_sd_mm, angle_sd_deg=u.angle_sd_deg), gross_miss_fraction=0.0)
    seed = ctx.plan.simulation.seed if u.seed is None else u.seed
    tips = [ctx.pose.tip_m] + [p.tip_m for p in draw_poses(ctx.pose, spread, injections - 1, seed, stream=REPEAT_STREAM)]
    offsets = np.array(tips) - ctx.pose.tip_m
    far = np.linalg.norm(offsets, axis=1, keepdims=True)
    return list(ctx.pose.tip_m + offsets * np.minimum(1.0, 0.9 * fine_margin_m / np.maximum(far, 1e-12)))


def _solve(ctx: Context) -> PhysicsResult:
    v = ctx.settings
    weight = ctx.plan.patient.weight_kg
    mesh = ctx.refined(mesh_for_bolus(v["agent"], v["volume_ml"], ctx.pose, ctx.scene))
    result = simulate_chemical(
        v["agent"], v["concentration_pct"], v["volume_ml"], v["injections"], v["interval_h"], v["rate_ml_per_min"], ctx.pose, ctx.scene,
        weight_kg=DEFAULT_WEIGHT_KG if weight is None else weight, progress=ctx.progress, mesh=mesh,
        injection_tips_m=injection_tips(ctx, v["injections"], mesh.fine_margin_m),
    )  # fmt: skip
    f = result.fields
    solute = neurolytic_agent(v["agent"]).solute
    molar = millimolar_per_pct(solute)

    def sample(points_m: np.ndarray) -> FieldSample:
        s = result.sample(points_m)
        peak = f.mesh.interpolate(f.peak_pct, f.frame.to_local(np.asarray(points_m, float).reshape(-1, 3)), 0.0)
        return replace(s, agent_fraction=np.clip(peak / result.concentration_pct, 0.0, 1.0), agent_mmol_l=peak * molar, agent_solute=solute)

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


SHEATH_RING_M = 0.25e-3
"""spread_along_nerve_mm is read on a ring this far outside the nerve's surface (the perineural
tissue the bolus bathes: the agent inside the sheath stays far lower)."""


def _read_outcome(ctx: Context, physics: PhysicsResult, stages: Sequence[NerveOutcome]) -> tuple[dict, tuple[str, ...]]:
    """The nerve after each injection, how many it took to strip it, and how far along the nerve
    the agent reached the spread level (its peak so far >= ``spread_level_pct``)."""
    result = physics.engine
    strip = first_full_strip([o.pain_fibres_killed_fraction for o in stages])
    f = result.fields
    along = [1e3 * centreline_length_m(ctx.nerve, lambda pts, peak=np.maximum.reduce(f.peak_per_injection_pct[: i + 1]): f.interpolate(peak, pts) >= result.spread_level_pct,
                                       ring_m=ctx.nerve.radius_m + SHEATH_RING_M) for i in range(result.injections)]  # fmt: skip
    per_injection = [
        {
            "injection": i + 1,
            "time_h": i * result.interval_h,
            "pain_fibres_killed_fraction": o.pain_fibres_killed_fraction,
            "motor_fibres_killed_fraction": o.motor_fibres_killed_fraction,
            "spread_volume_ml": result.spread_volume_ml[i],
            "lethal_volume_ml": result.lethal_volume_ml[i],
            "lesioned_length_mm": o.lesioned_length_mm,
            "spread_along_nerve_mm": along[i],
            "tip_mm": list(result.injection_tips_mm[i]) if result.injection_tips_mm else None,
        }
        for i, o in enumerate(stages)
    ]
    warnings = ()
    if strip is None:
        warnings = (f"the nerve is not fully stripped: {stages[-1].pain_fibres_killed_fraction:.0%} of pain fibres dead after {result.injections} injection(s) (full strip: >= {FULL_STRIP_FRACTION:.0%})",)
    return {"per_injection": per_injection, "injections_to_full_strip": strip, "full_strip_fraction": FULL_STRIP_FRACTION, "spread_along_nerve_mm": along[-1]}, warnings


METHODS = (
    Method(
        "chemical", "chemical", FIELDS, "chemical neurolysis (ethanol, phenol)", _check, _solve,
        needle_length_m=injection_needle, read_outcome=_read_outcome, choices={"agent": lambda: sorted(neurolytic_agents()), "repeat_site": lambda: list(REPEAT_SITES)},
    ),
)  # fmt: skip
