"""Several lesions in one plan (``[[needles]]``): each prepared and solved in turn, their fields
combined (:func:`neurolysis.fields.lesions_in_turn`), every target nerve and the critical structures
judged on the combined fields.

The lesions are made one after another, as a physician moves the needle (or places the next
one): each is solved from body temperature, and the damage adds up (Arrhenius Omega and CEM43
sum; the peak temperature is the highest). Tissue still warm from the last lesion is not carried
over: a lesion's hot core (radius a ~ 3-5 mm) cools by conduction in a^2 / alpha ~ 1-3 min in
muscle (perfusion alone: rho c / (w_b rho_b c_b) ~ 20 min), and moving the needle to the next
target takes minutes (docs/planning.md), so the model's start at 37 C slightly understates a lesion
made at once a few millimetres from the last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from neurolysis import devices as catalog
from neurolysis.engines.poses import validate_poses
from neurolysis.fields import lesions_in_turn
from neurolysis.methods.base import Context, PhysicsResult
from neurolysis.validation import ValidationError


def solve_lesions(ctx: Context, solve: Callable[[Context], PhysicsResult]) -> PhysicsResult:
    """Every lesion of ``ctx`` solved by ``solve`` and combined: the combined sampler, the first
    lesion's JSON section and lesion with a ``lesions`` list added (target, needle, lesion each)."""
    n = len(ctx.lesions)
    results = []
    for k, part in enumerate(ctx.lesions):
        progress = None if ctx.progress is None else (lambda f, k=k: ctx.progress((k + f) / n))
        results.append(solve(replace(part, progress=progress)))
    first = results[0]
    lesions = [
        {"target": part.nerve.name, "tip_mm": [float(v) for v in part.pose.tip_m * 1e3], "direction": [float(v) for v in part.pose.direction]}
        | ({} if part.partner is None else {"partner_tip_mm": [float(v) for v in part.partner.tip_m * 1e3]})
        | {"lesion": r.lesion} | ({"bipolar": r.section["bipolar"]} if r.section.get("bipolar") else {}) | {"warnings": list(r.warnings)}
        for part, r in zip(ctx.lesions, results, strict=True)
    ]  # fmt: skip
    warnings = tuple(dict.fromkeys(w for r in results for w in r.warnings))
    return replace(
        first,
        sample=lesions_in_turn(tuple(r.sample for r in results)),
        section=first.section | {"lesions": lesions},
        warnings=warnings,
        stage_samplers=(),
        risk_margin_m=max(r.risk_margin_m for r in results),
        view_half_width_m=max(r.view_half_width_m for r in results),
        engine=first.engine,
        parts=tuple(results),
    )


def is_bipolar(plan) -> bool:
    """Whether the plan's needles work as bipolar pairs (RF with ``procedure.electrodes = "bipolar"``;
    the other methods have no such field)."""
    return getattr(plan.procedure, "electrodes", None) == "bipolar"


def bipolar_pairs(plan, parts: list[Context]) -> list[Context]:
    """Consecutive needles as bipolar pairs, one context per pair: the first needle's target, pose
    and settings, the second's pose as ``partner``. Each pair treats one nerve with parallel needles
    (:func:`~neurolysis.engines.poses.validate_poses`) and one generator setting."""
    if not plan.needles or len(parts) % 2:
        raise ValidationError(f"procedure.electrodes = 'bipolar': needs [[needles]] in pairs (2, 4, ... needles, each pair one lesion); the plan has {len(parts)} needle(s)")
    pairs = []
    for k in range(0, len(parts), 2):
        first, second = parts[k], parts[k + 1]
        if second.nerve.name != first.nerve.name:
            raise ValidationError(f"needles[{k + 1}].target = {second.nerve.name!r}: the two needles of a bipolar pair (needles[{k}] and needles[{k + 1}]) treat one nerve; allowed value is {first.nerve.name!r}")
        if dict(plan.needles[k + 1].settings) != dict(plan.needles[k].settings):
            raise ValidationError(f"needles[{k + 1}]: a bipolar pair shares one generator; give this pair's own settings on needles[{k}] only, or the same on both")
        try:
            validate_poses((first.pose, second.pose), first.scene, True, catalog.outer_radius_m(first.settings.gauge))
        except ValidationError as error:
            raise ValidationError(f"needles[{k}] and needles[{k + 1}] (a bipolar pair): {error}") from None
        pairs.append(replace(first, partner=second.pose))
    return pairs


__all__ = ["bipolar_pairs", "is_bipolar", "solve_lesions"]
