"""The front door: a plan in, an outcome out (anatomy -> method's physics -> nerve outcome and risk).

:func:`prepare` validates everything a solve needs (plan, anatomy, target nerve, needle
pose inside the anatomy and not in bone, the method's settings) into a
:class:`~neurolysis.methods.base.Context`, once; :func:`solve` runs the method's physics
and the outcome layer on it; :func:`simulate` is both. The methods are registered in
:mod:`neurolysis.methods`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from neurolysis._catalog import load_catalog
from neurolysis.about import DISCLAIMER
from neurolysis.anatomy.imaging import segmentation_scene
from neurolysis.anatomy.labelmap import load_label_map
from neurolysis.anatomy.scene import Nerve, Scene
from neurolysis.anatomy.templates import load_template
from neurolysis.engines.poses import MAX_ACTIVE_TIP_IN_BONE, tip_in_bone
from neurolysis.engines.stimulation import StimulationTest
from neurolysis.fields import NeedlePose
from neurolysis.indications import indication_warnings, outcome_indication
from neurolysis.methods import METHODS
from neurolysis.methods.base import Context, PhysicsResult
from neurolysis.outcome.assess import assess, territory_of
from neurolysis.outcome.axons import NerveOutcome, check_axon_count
from neurolysis.outcome.field_tables import SolvedFields
from neurolysis.outcome.lesion_cohort import lesions_cohort
from neurolysis.outcome.risk import StructureRisk
from neurolysis.outcome.spread import PropertySpread, placement_spread
from neurolysis.outcome.territory import TerritoryOutcome, territory_outcome
from neurolysis.outcome.uncertainty import Cohort, placement_cohort
from neurolysis.planning.lesions import bipolar_pairs, is_bipolar, solve_lesions
from neurolysis.planning.plan import Plan
from neurolysis.planning.stimulate import cohort_stimulation, needle_test
from neurolysis.validation import ValidationError, check_choice


def load_scene(plan: Plan) -> Scene:
    """The plan's anatomy: a template, a patient's segmentation (target placed by landmarks) or an imported label map."""
    a = plan.anatomy
    if a.template is not None:
        return load_template(a.template)
    if a.segmentation is not None:
        targets = tuple(dict.fromkeys(n.target for n in plan.needles)) if plan.needles else plan.target.nerve
        return segmentation_scene(a.segmentation, a.names, a.image, a.side, targets, a.tissues, plan.base_dir)
    return load_label_map(plan.path(a.labels), plan.path(a.labels_map), plan.path(a.nerves))


def target_nerve(plan: Plan, scene: Scene) -> Nerve:
    name = plan.target.nerve or scene.target
    check_choice("target.nerve", name, [n.name for n in scene.nerves])
    return scene.nerve(name)


def resolve_pose(plan: Plan, scene: Scene, nerve: Nerve) -> NeedlePose:
    """The needle pose in the anatomy frame (m); errors if the tip leaves the anatomy."""
    p = plan.placement
    if p.approach == "explicit":
        pose = NeedlePose(np.asarray(p.tip_mm) * 1e-3, np.asarray(p.direction))
    else:
        key = (nerve.name, p.approach)
        if key not in scene.placements:
            approaches = sorted(a for (n, a) in scene.placements if n == nerve.name)
            raise ValidationError(f"placement.approach = {p.approach!r}: no recommended placement for {nerve.name!r}; allowed values are {', '.join(approaches) or 'explicit'}")
        pose = scene.placements[key].shifted(np.asarray(p.offset_mm) * 1e-3)
    lo, hi = (np.asarray(b) for b in scene.bounds_m)
    if np.any(pose.tip_m < lo) or np.any(pose.tip_m > hi):
        tip = ", ".join(f"{v:.1f}" for v in pose.tip_m * 1e3)
        box = " to ".join("[" + ", ".join(f"{v:.0f}" for v in b * 1e3) + "]" for b in (lo, hi))
        raise ValidationError(f"placement: needle tip = [{tip}] mm is outside the anatomy {scene.name!r} (bounds {box} mm)")
    return pose


@dataclass(frozen=True, eq=False)
class Outcome:
    """Everything a plan produced; ``to_dict()`` is the ``simulate --json`` contract.

    Every method gives the same keys (target, critical, lesion, warnings, settings,
    disclaimer, method, anatomy, placement, indication, targets, territory, needles, wall_time_s)
    plus its own section: ``rf`` (rf, cooled-rf, pulsed-rf), ``chemical``, ``cryo``, ``surgical`` or
    ``block``. ``indication`` is None unless the plan names one (then its evidence, outcomes and
    coverage, with sources). ``targets`` holds every target nerve (one per distinct target of the
    ``[[needles]]``; ``target`` is the first), ``territory`` what the plan relieves
    (:mod:`neurolysis.outcome.territory`), ``needles`` each lesion's target and pose (None for one
    needle; ``placement`` and ``lesion`` are the first lesion's).
    """

    plan: Plan
    scene: Scene
    nerve: Nerve
    pose: NeedlePose
    physics: PhysicsResult
    target: NerveOutcome
    critical: tuple[StructureRisk, ...]
    warnings: tuple[str, ...]
    wall_time_s: float
    uncertainty: Cohort | None = None
    targets: tuple[NerveOutcome, ...] = ()
    territory: TerritoryOutcome | None = None
    lesions: tuple[tuple[Nerve, NeedlePose], ...] = ()  # several needles: each lesion's target and pose
    stimulation: StimulationTest | None = None  # the RF needle's (the first needle's) stimulation test

    @property
    def section(self) -> str:
        return METHODS[self.plan.procedure.method].section

    def _anatomy(self) -> dict:
        """The ``anatomy`` key: name and target; for a segmentation also its frame (RAS or LPS: the
        convention of every coordinate in the plan and the output), landmark rule, landmarks (mm) and the files' sha256."""
        s = self.scene
        out = {"name": s.name, "target_nerve": self.nerve.name, "frame": s.convention}
        if s.convention is not None:
            out |= {"landmark_rule": s.landmark_rule,
                    "landmarks_mm": {k: list(v) for k, v in s.landmarks.items()}, "procedure_template": s.procedure_template, "region_simulated": s.sources.get("region simulated"), "files_sha256": dict(s.files_sha256)}  # fmt: skip
        return out

    def to_dict(self) -> dict:
        return {
            "target": self.target.to_dict(),
            "critical": [r.to_dict() for r in self.critical],
            "lesion": self.physics.lesion,
            "warnings": list(self.warnings),
            "settings": self.plan.as_dict(),
            "disclaimer": DISCLAIMER,
            "method": self.plan.procedure.method,
            "anatomy": self._anatomy(),
            "placement": {
                "approach": self.plan.placement.approach,
                "tip_mm": [float(v) for v in self.pose.tip_m * 1e3],
                "direction": [float(v) for v in self.pose.direction],
            },
            self.section: self.physics.section,
            "indication": outcome_indication(self.plan.indication.name),
            "targets": [t.to_dict() for t in self.targets or (self.target,)],
            "territory": None if self.territory is None else self.territory.to_dict(),
            "needles": [{"target": nerve.name, "tip_mm": [float(v) for v in pose.tip_m * 1e3], "direction": [float(v) for v in pose.direction]} for nerve, pose in self.lesions]
            if self.lesions
            else None,
            "stimulation": None if self.stimulation is None else self.stimulation.to_dict(),
            "wall_time_s": self.wall_time_s,
        } | ({"uncertainty": self.uncertainty.to_dict()} if self.uncertainty is not None else {})


def _check_tip_not_in_bone(scene: Scene, pose: NeedlePose, tip_len_m: float) -> None:
    fraction, regions = tip_in_bone(scene, pose, tip_len_m)
    if fraction > MAX_ACTIVE_TIP_IN_BONE:
        tip = ", ".join(f"{v:.1f}" for v in pose.tip_m * 1e3)
        raise ValidationError(
            f"placement: {100 * fraction:.0f} % of the active tip (tip at [{tip}] mm) lies inside bone ({', '.join(regions)}); "
            f"allowed is at most {100 * MAX_ACTIVE_TIP_IN_BONE:.0f} %: move it with placement.offset_mm"
        )


def prepare(plan: Plan, progress: Callable[[float], None] | None = None) -> Context:
    """Scene, nerve, pose and the method's resolved settings, all validated (cheap; no solve).

    The settings are an ``RFSettings`` for the RF methods, else the method's ``[procedure]``
    fields with defaults (``Method.settings_for``). ``progress(fraction)`` is handed to the solver.
    """
    scene = load_scene(plan)
    method = METHODS[plan.procedure.method]
    parts = []
    for k, needle in enumerate(plan.needle_specs()):
        part = plan.for_needle(needle) if plan.needles else plan
        try:
            nerve = target_nerve(part, scene)
            check_axon_count(nerve, plan.simulation.n_axons)
            pose = resolve_pose(part, scene, nerve)
            settings = method.settings_for(part, scene, pose)
            if method.needle_length_m is not None:
                _check_tip_not_in_bone(scene, pose, method.needle_length_m(settings))
        except ValidationError as error:
            if not plan.needles:
                raise
            raise ValidationError(f"needles[{k}] ({needle.target}): {error}") from None
        parts.append(Context(part, scene, nerve, pose, settings, progress))
    if is_bipolar(plan):
        parts = bipolar_pairs(plan, parts)
    if len(parts) == 1 and not plan.needles:
        return parts[0]
    return replace(parts[0], plan=plan, lesions=tuple(parts))


def solve(ctx: Context, with_cohort: bool = True) -> Outcome:
    """Solve a prepared plan: the method's physics in the anatomy, then the target nerve and
    every critical structure (:func:`neurolysis.outcome.assess.assess`), and the ``[uncertainty]``
    cohort unless ``with_cohort`` is False (a caller reading it with :func:`moved_cohort` itself)."""
    started = time.perf_counter()
    method = METHODS[ctx.plan.procedure.method]
    physics = solve_lesions(ctx, method.solve) if ctx.lesions else method.solve(ctx)
    found = assess(ctx, physics)
    warnings = physics.warnings
    if method.read_outcome is not None:
        physics, more = _read_method_outcome(ctx, method, physics, found)
        warnings = (*warnings, *more)
    warnings = (*ctx.scene.warnings, *warnings, *indication_warnings(ctx.plan.indication.name, ctx.plan.procedure.method, ctx.nerve.name, ctx.nerve.kind))  # FOOT DROP and the named indication's fit
    territory = territory_outcome(found.targets or (found.target,), territory_of(ctx), ctx.plan.simulation.seed)
    field = getattr(physics.engine, "stimulation", None)  # an RF needle's stimulation field (None: bipolar, other methods)
    stimulation = None if field is None else needle_test(ctx.scene, ctx.nerve, field, ctx.pose)
    if stimulation is not None:
        warnings = (*warnings, *stimulation.warnings())
    cohort = None
    if ctx.plan.uncertainty.samples is not None and with_cohort:
        cohort = _placement_cohort(ctx, method, physics, found)
        if field is not None and not ctx.lesions:
            cohort = replace(cohort, stimulation=cohort_stimulation(ctx.scene, ctx.nerve, field, ctx.pose, cohort.poses))
        # the samples whose verdict could change (the verdict band); without a band (no relief modelled, no lethal region): a majority of inexact samples
        unsure, limit = (cohort.inexact, 0.5) if cohort.could_change is None else (cohort.could_change, float(load_catalog("uncertainty")["limits"]["could_change_warn_fraction"]))
        if unsure.mean() > limit:
            warnings = (*warnings, f"placement Monte Carlo: for {100 * unsure.mean():.0f} % of the samples the tissue under the moved lesion differs from the plan's "
                                   "(needle against bone or a tissue boundary) and the block verdict could change with it, so P(block) may be off by up to that share; "
                                   "set [uncertainty] anchors = K to solve K more poses and move each sample from the nearest, "
                                   "and full_solves = N to see the agreement with N full solves")  # fmt: skip
    return Outcome(ctx.plan, ctx.scene, ctx.nerve, ctx.pose, physics, found.target, found.critical, (*found.warnings, *warnings), time.perf_counter() - started, cohort,
                   found.targets or (found.target,), territory, _needle_poses(ctx), stimulation)  # fmt: skip


def _needle_poses(ctx: Context) -> tuple[tuple[Nerve, NeedlePose], ...]:
    """Every needle of a plan with several (a bipolar pair's two), with its target."""
    return tuple((part.nerve, pose) for part in ctx.lesions for pose in (part.pose, part.partner) if pose is not None)


def _read_method_outcome(ctx: Context, method, physics: PhysicsResult, found) -> tuple[PhysicsResult, tuple[str, ...]]:
    """The method's own reading of the nerve outcome into its section. With several needles each
    lesion is read alone (its own solve, its target's final outcome under the combined fields) into
    its ``lesions`` entry, and the first lesion's reading also sits at the top of the section."""
    if not ctx.lesions:
        extra, warnings = method.read_outcome(ctx, physics, found.stages)
        return replace(physics, section=physics.section | extra), warnings
    by_name = {t.nerve: t for t in found.targets}
    readings = [method.read_outcome(part, result, (by_name[part.nerve.name],)) for part, result in zip(ctx.lesions, physics.parts, strict=True)]
    lesions = [entry | extra for entry, (extra, _) in zip(physics.section["lesions"], readings, strict=True)]
    warnings = tuple(dict.fromkeys(f"needles[{k}] ({part.nerve.name}): {w}" for k, (part, (_, more)) in enumerate(zip(ctx.lesions, readings, strict=True)) for w in more))
    return replace(physics, section=physics.section | readings[0][0] | {"lesions": lesions}), warnings


def moved_cohort(ctx: Context, solved: Outcome, tables: SolvedFields | None = None) -> Cohort:
    """The ``[uncertainty]`` cohort of ``ctx`` (a plan differing from ``solved``'s only in its
    needle's placement) without a solve: every sample reads the fields solved at ``solved.pose``
    moved rigidly to its own pose (the cohort's shortcut, from one pose farther away; exact in
    homogeneous tissue, ``inexact_fraction`` counts the samples where it is not). ``tables``:
    ``solved``'s fields already tabulated (a search reading one solve many times). One needle only."""
    method = METHODS[ctx.plan.procedure.method]
    if ctx.lesions or solved.lesions or ctx.plan.uncertainty.samples is None:
        raise ValueError("moved_cohort: one needle with [uncertainty] samples only")
    return _placement_cohort(ctx, method, solved.physics, solved, tables or SolvedFields.of(solved.physics, solved.pose))


def _placement_cohort(ctx: Context, method, physics: PhysicsResult, found, solved: SolvedFields | None = None) -> Cohort:
    """The ``[uncertainty]`` cohort of a solved plan, with the re-solves it may ask for
    (samples solved in full, property strata, anchor poses) done by the plan's own method."""
    u = ctx.plan.uncertainty
    spread = placement_spread(ctx.nerve.name, u.operator, offset_sd_mm=u.offset_sd_mm, angle_sd_deg=u.angle_sd_deg, gross_miss_fraction=u.gross_miss_fraction)
    seed = ctx.plan.simulation.seed if u.seed is None else u.seed
    length = method.needle_length_m(ctx.settings) if method.needle_length_m is not None else None
    if ctx.lesions and physics.moves_with_needle:
        spreads = [placement_spread(part.nerve.name, u.operator, offset_sd_mm=u.offset_sd_mm, angle_sd_deg=u.angle_sd_deg, gross_miss_fraction=u.gross_miss_fraction) for part in ctx.lesions]
        return lesions_cohort(ctx, physics.parts, u.samples, seed, spreads, length)

    def at(pose: NeedlePose) -> Context:
        return replace(ctx, pose=pose, settings=method.settings_for(ctx.plan, ctx.scene, pose), progress=None)

    def full_solve(pose: NeedlePose):
        placed = at(pose)
        done = assess(placed, method.solve(placed))
        return done.target, done.critical

    properties, property_solve = None, None
    if (u.conductivity_sd_ln > 0 or u.perfusion_sd_ln > 0) and method.section == "rf":
        properties = PropertySpread(u.conductivity_sd_ln, u.perfusion_sd_ln, u.property_solves, seed)
        property_solve = lambda factors: method.solve(replace(ctx, tissue_factors=factors, progress=None))
    return placement_cohort(ctx, physics, found.target, found.critical, u.samples, seed, spread, length, full_solve, u.full_solves,
                            property_solve, properties, lambda pose: method.solve(at(pose)), u.anchors, solved)  # fmt: skip


def simulate(plan: Plan, progress: Callable[[float], None] | None = None) -> Outcome:
    """Validate and solve a plan (:func:`prepare`, then :func:`solve`)."""
    return solve(prepare(plan, progress))
