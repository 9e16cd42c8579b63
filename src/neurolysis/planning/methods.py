"""The methods a plan can name: the ``[procedure]`` fields each reads, their defaults and checks, and how each is solved.

One :class:`Method` per ``procedure.method``. Validation (:func:`check_procedure`,
:func:`check_plan`) runs when a plan is read, before anything is solved. Solving
(:meth:`Method.solve`) turns a plan, its scene, target nerve and needle pose into a
:class:`Physics` (a field sampler for the nerve and risk models, the ``lesion`` and the
method's own JSON section) and the target's :class:`~neurolysis.nerve.NerveOutcome`.

=============  ==============  =======================================================
method         JSON section    engine
=============  ==============  =======================================================
rf, cooled-rf  ``rf``          3D RF (``modalities/rf3d.py``)
pulsed-rf      ``rf``          3D RF, pulsed mode (kills nothing)
chemical       ``chemical``    3D bolus + transport + dose (``modalities/chemical.py``)
cryo           ``cryo``        3D enthalpy freezing (``modalities/cryo.py``)
surgical       ``surgical``    excised segment (``modalities/surgical.py``)
block          ``block``       local-anaesthetic block model (``chemistry.simulate_block``)
=============  ==============  =======================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace

import numpy as np

from neurolysis._catalog import load_catalog
from neurolysis.validation import ValidationError, check_choice, check_number, check_range

RF_MODES = {"rf": "conventional", "cooled-rf": "cooled", "pulsed-rf": "pulsed"}
RF_FIELDS = (
    "gauge", "tip_mm", "set_temp_c", "time_s", "ramp_s", "max_power_w", "coolant_temp_c", "coolant_flow_ml_min",
    "pulse_voltage_v", "pulse_frequency_hz", "pulse_width_ms", "pulse_temp_limit_c", "damage_model",
)  # fmt: skip
CHEMICAL_FIELDS = ("agent", "concentration_pct", "volume_ml", "injections", "interval_h", "rate_ml_per_min")
CRYO_FIELDS = ("probe", "cycles")
SURGICAL_FIELDS = ("segment_mm",)
BLOCK_FIELDS = ("agent", "concentration_pct", "volume_ml", "adjuvants", "override_max_dose", "horizon_months")
ADJUVANTS = ("epinephrine", "dexamethasone")
HORIZON_RANGE_MONTHS = (1.0, 120.0)
HOURS_PER_MONTH = 24.0 * 365.25 / 12.0
RISK_MARGIN_M = 25e-3
"""Critical structures are sampled within this distance of the tip (m) by default
(``Physics.risk_margin_m``); farther than that the RF field is at body temperature (the
3D mesh verifies this). Chemical plans widen it with the bolus."""
VIEW_HALF_WIDTH_M = 15e-3
"""Half-width of the figure slices (m) unless a method needs more (a large bolus)."""
INJECTION_NEEDLE_M = 1e-3
"""Length of a bare injection needle's tip checked against bone (the bevel, ~1 mm)."""


def defaults(method: str) -> dict:
    """The ``[procedure]`` defaults of a non-RF method (``data/plan_defaults.toml``; cryo:
    the catalog's default probe and protocol, ``data/cryoprobes.toml``)."""
    if method == "cryo":
        from neurolysis.cryoprobes import cryoprobe, default_cycles

        return {"probe": cryoprobe(None).id, "cycles": [list(c) for c in default_cycles()]}
    return {k: v for k, v in load_catalog("plan_defaults").get(method, {}).items() if k != "sources"}


# ----------------------------------------------------------------------------- checks


def _prefixed(check: Callable[[], object]):
    """Run a library check and name the plan field in its error (``procedure.<field>``)."""
    try:
        return check()
    except ValidationError as error:
        text = str(error)
        raise ValidationError(text if text.startswith("procedure.") else f"procedure.{text}") from None


def _check_rf(p) -> None:
    p.rf_settings()


def _check_chemical(p) -> None:
    from neurolysis.modalities.chemical import check_injections

    v = resolved(p)
    _prefixed(lambda: check_injections(v["agent"], v["concentration_pct"], v["volume_ml"], v["injections"], v["interval_h"], v["rate_ml_per_min"]))


def _check_cryo(p) -> None:
    from neurolysis.cryoprobes import all_cryoprobes
    from neurolysis.modalities.cryo import check_cycles

    if p.probe is not None:
        check_choice("procedure.probe", p.probe, sorted(all_cryoprobes()))
    _prefixed(lambda: check_cycles(p.cycles))


def _check_surgical(p) -> None:
    check_range("procedure.segment_mm", resolved(p)["segment_mm"], 0.0, float(load_catalog("surgery")["segment_max_mm"]), low_inclusive=False, unit="mm")


def _check_block(p) -> None:
    from neurolysis.chemistry import check_block_inputs

    v = resolved(p)
    _prefixed(lambda: check_block_inputs(v["agent"], v["concentration_pct"], v["volume_ml"], None))  # weight: check_plan
    adjuvants = v["adjuvants"]
    if isinstance(adjuvants, str) or not isinstance(adjuvants, list | tuple):
        raise ValidationError(f"procedure.adjuvants = {adjuvants!r}: must be a list, e.g. [\"epinephrine\"]; allowed values are {', '.join(ADJUVANTS)}")
    for i, a in enumerate(adjuvants):
        check_choice(f"procedure.adjuvants[{i}]", a, ADJUVANTS)
    if not isinstance(v.get("override_max_dose", False), bool):
        raise ValidationError(f"procedure.override_max_dose = {v['override_max_dose']!r}: must be true or false")
    check_range("procedure.horizon_months", v["horizon_months"], *HORIZON_RANGE_MONTHS, unit="months")


def _check_block_plan(plan) -> None:
    """A block needs the patient's weight, and its dose must be within the maximum unless overridden."""
    from neurolysis.chemistry import max_dose_check

    if plan.patient.weight_kg is None:
        raise ValidationError("patient.weight_kg: required for method 'block' (the maximum dose is per kg); add [patient] weight_kg = ...")
    v = resolved(plan.procedure)
    epi = "epinephrine" in v["adjuvants"]
    dose, limit, over = _prefixed(lambda: max_dose_check(v["agent"], v["concentration_pct"], v["volume_ml"], plan.patient.weight_kg, epi))
    if over and not v.get("override_max_dose", False):
        raise ValidationError(
            f"procedure: dose {dose:g} mg of {v['agent']} ({v['volume_ml']:g} mL of {v['concentration_pct']:g} %) exceeds the maximum "
            f"{limit:g} mg for {plan.patient.weight_kg:g} kg ({'with' if epi else 'without'} epinephrine); reduce volume_ml or "
            "concentration_pct, or set procedure.override_max_dose = true (or --override-max-dose) to simulate it anyway"
        )


def resolved(procedure) -> dict:
    """The method's ``[procedure]`` fields with the defaults filled in (non-RF methods)."""
    m = METHODS[procedure.method]
    out = defaults(procedure.method)
    for name in m.fields:
        value = getattr(procedure, name)
        if value is not None:
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


def over_limit_warning(block: dict) -> str:
    return (f"MAXIMUM DOSE EXCEEDED (override given): {block['dose_mg']:g} mg of {block['agent']} > limit {block['limit_mg']:g} mg "
            f"for {block['weight_kg']:g} kg: risk of local-anaesthetic systemic toxicity")


# ---------------------------------------------------------------------------- physics


@dataclass(frozen=True, eq=False)
class Physics:
    """What a method's solve hands to the outcome layer.

    ``sample``: the FieldSampler (anatomy frame, m) for the nerve and risk models;
    ``lesion``: the JSON ``lesion`` (LesionShape keys); ``section``: the method's own JSON
    section; ``active_length_m``: the needle's active (or freezing) length for the bone
    check and figures (0 without a needle); ``contours``: extra figure isolines
    ``(values_at(points), level, colour, linestyle, label)``; ``engine``: the engine's own result;
    ``risk_margin_m``/``risk_spacing_m``: half-size of the box around the tip in which critical
    structures are sampled, and its grid spacing (beyond it the method's fields are undisturbed);
    ``view_half_width_m``: half-width of the figure slices.
    """

    sample: Callable
    lesion: dict
    section: dict
    warnings: tuple[str, ...]
    active_length_m: float
    lethal_label: str
    contours: tuple = ()
    engine: object = field(default=None, repr=False)
    risk_margin_m: float = RISK_MARGIN_M
    risk_spacing_m: float = 0.5e-3
    view_half_width_m: float = VIEW_HALF_WIDTH_M


@dataclass(frozen=True)
class Context:
    """What a solver gets: the plan, its scene, target nerve and pose, and the method's
    settings as ``prepare`` resolved them (``RFSettings`` for RF, else the ``resolved`` dict)."""

    plan: object
    scene: object
    nerve: object
    pose: object
    settings: object
    progress: Callable[[float], None] | None = None

    def outcome(self, sampler, method: str | None = None):
        from neurolysis.nerve import nerve_outcome

        sim = self.plan.simulation
        return nerve_outcome(self.nerve, sampler, method or self.plan.procedure.method, seed=sim.seed, n_axons=sim.n_axons)

    def refined(self, mesh):
        r = self.plan.simulation.mesh_refinement
        return mesh if r == 1.0 else mesh.refined(r)


def rf_settings_at(plan, scene, pose):
    """The plan's resolved RF settings for the tissue at the needle tip."""
    tissue = scene.region_tissue[int(scene.label_at(pose.tip_m[None, :])[0])]
    if tissue == "bone":
        tissue = "muscle"  # reported only; a tip in bone is refused by the bone check
    return plan.procedure.rf_settings(tissue=tissue).resolved()


def _solve_rf(ctx: Context):
    from neurolysis.modalities.rf3d import DEFAULT_MESH, simulate_rf3d

    settings = ctx.settings
    result = simulate_rf3d(settings, [ctx.pose], ctx.scene, progress=ctx.progress, mesh=ctx.refined(DEFAULT_MESH))
    rf = result.to_dict()
    physics = Physics(
        sample=result.sample,
        lesion=rf["lesion"],
        section={k: v for k, v in rf.items() if k not in ("lesion", "warnings", "disclaimer")},
        warnings=tuple(result.warnings),
        active_length_m=settings.tip_mm * 1e-3,
        lethal_label="lesion (Arrhenius Ω ≥ 1)",
        contours=((lambda pts: result.sample(pts).peak_temp_c, 50.0, "white", "--", "50 °C isotherm (peak)"),),
        engine=result,
    )
    return physics, ctx.outcome(result.sample)


def _centreline_length_m(nerve, inside: Callable[[np.ndarray], np.ndarray], step_m: float = 0.1e-3) -> float:
    from neurolysis.nerve import nerve_frame

    frame = nerve_frame(nerve.centerline_m, step_m)
    return float(np.count_nonzero(inside(frame.points_m)) * frame.ds_m)


def _solve_cryo(ctx: Context):
    from neurolysis.cryoprobes import cryoprobe, minimum_lesion_length_m
    from neurolysis.modalities.cryo import DEFAULT_MESH, simulate_cryo

    probe = cryoprobe(ctx.settings["probe"])
    result = simulate_cryo(probe.id, ctx.settings["cycles"], ctx.pose, ctx.scene, mesh=ctx.refined(DEFAULT_MESH), progress=ctx.progress)
    target = ctx.outcome(result.sample)
    d = result.to_dict()
    frozen_mm = 1e3 * _centreline_length_m(ctx.nerve, lambda pts: result.min_temp_c_at(pts) <= result.ice_edge_c)
    minimum_mm = 1e3 * minimum_lesion_length_m()
    section = {k: v for k, v in d.items() if k not in ("warnings", "disclaimer")}
    section["nerve"] = {
        "frozen_length_mm": frozen_mm,
        "lethal_length_mm": target.lesioned_length_mm,
        "minimum_length_mm": minimum_mm,
        "meets_minimum_length": target.lesioned_length_mm >= minimum_mm,
        "note": f"frozen = centerline at or below the ice edge ({result.ice_edge_c:g} C); lethal = lesioned length at or below {result.lethal_isotherm_c:g} C; "
                f"the published minimum frozen length along the nerve is {minimum_mm:g} mm (literature.md E)",
    }  # fmt: skip
    warnings = list(result.warnings)
    if target.lesioned_length_mm < minimum_mm:
        warnings.append(f"lethal nerve length {target.lesioned_length_mm:.1f} mm is below the published minimum {minimum_mm:g} mm for cryoneurolysis: relief may be short or absent")
    physics = Physics(
        sample=result.sample,
        lesion=result.lethal_zone.as_dict(),
        section=section,
        warnings=tuple(warnings),
        active_length_m=probe.active_length_m,
        lethal_label=f"lethal zone (min T ≤ {result.lethal_isotherm_c:g} °C)",
        contours=((lambda pts: -result.min_temp_c_at(pts), -result.ice_edge_c, "deepskyblue", "--", f"ice ball edge ({result.ice_edge_c:g} °C, deepest)"),),
        engine=result,
    )
    return physics, target


def _solve_chemical(ctx: Context):
    from neurolysis.fields import FieldSample
    from neurolysis.modalities.chemical import FULL_STRIP_FRACTION, first_full_strip, mesh_for_bolus, simulate_chemical
    from neurolysis.physics.fem3d import TetGeometry
    from neurolysis.physics.lesion3d import measure_lesion3d, tissue_edges

    v = ctx.settings
    weight = ctx.plan.patient.weight_kg
    result = simulate_chemical(
        v["agent"], v["concentration_pct"], v["volume_ml"], v["injections"], v["interval_h"], v["rate_ml_per_min"], ctx.pose, ctx.scene,
        weight_kg=70.0 if weight is None else weight, progress=ctx.progress,
        mesh=ctx.refined(mesh_for_bolus(v["agent"], v["volume_ml"], ctx.pose, ctx.scene)),
    )  # fmt: skip
    f = result.fields

    def sample(points_m: np.ndarray) -> FieldSample:
        s = result.sample(points_m)
        peak = f.mesh.interpolate(f.peak_pct, f.frame.to_local(np.asarray(points_m, float).reshape(-1, 3)), 0.0)
        return replace(s, agent_fraction=np.clip(peak / result.concentration_pct, 0.0, 1.0))

    outcomes = [ctx.outcome(result.sampler_after(i)) for i in range(result.injections - 1)]
    target = ctx.outcome(sample)
    outcomes.append(target)
    strip = first_full_strip([o.pain_fibres_killed_fraction for o in outcomes])
    d = result.to_dict()
    section = {k: v for k, v in d.items() if k not in ("warnings", "disclaimer")}
    section["per_injection"] = [
        {
            "injection": i + 1,
            "time_h": i * result.interval_h,
            "pain_fibres_killed_fraction": o.pain_fibres_killed_fraction,
            "motor_fibres_killed_fraction": o.motor_fibres_killed_fraction,
            "spread_volume_ml": result.spread_volume_ml[i],
            "lethal_volume_ml": result.lethal_volume_ml[i],
            "lesioned_length_mm": o.lesioned_length_mm,
        }
        for i, o in enumerate(outcomes)
    ]
    section["injections_to_full_strip"] = strip
    section["full_strip_fraction"] = FULL_STRIP_FRACTION
    warnings = list(result.warnings)
    if weight is None:
        warnings.append("patient.weight_kg not given: systemic exposure (blood alcohol) computed for 70 kg")
    sys_ = result.systemic
    if sys_.get("over_threshold"):
        warnings.append(f"SYSTEMIC TOXICITY: total phenol {sys_['phenol_mg']:.0f} mg >= {sys_['phenol_toxic_mg']:.0f} mg ({sys_['source']})")
    if strip is None:
        warnings.append(f"the nerve is not fully stripped: {outcomes[-1].pain_fibres_killed_fraction:.0%} of pain fibres dead after {result.injections} injection(s) (full strip: >= {FULL_STRIP_FRACTION:.0%})")
    mesh = f.mesh
    # the agent can travel beyond the RF margin: sample structures out to 2.5 bolus radii (<= 40 mm)
    reach = min(max(RISK_MARGIN_M, 2.5e-3 * result.bolus_radius_mm), 40e-3)
    volume = TetGeometry(mesh.nodes, mesh.tets).volume
    lesion = measure_lesion3d(mesh, f.dose_after[-1], 1.0, "chemical lethal index >= 1", tissue_edges(mesh), volume)
    physics = Physics(
        sample=sample,
        lesion=lesion.as_dict(),
        section=section,
        warnings=tuple(warnings),
        active_length_m=INJECTION_NEEDLE_M,
        lethal_label="lethal region (dose Λ ≥ 1)",
        contours=((lambda pts: sample(pts).agent_fraction, 0.1, "violet", "--", "agent ≥ 10 % of injected (peak)"),),
        engine=result,
        risk_margin_m=reach,
        risk_spacing_m=0.5e-3 if reach <= RISK_MARGIN_M else 1e-3,
        view_half_width_m=max(VIEW_HALF_WIDTH_M, 1.3e-3 * result.bolus_radius_mm),
    )
    return physics, target


def _solve_surgical(ctx: Context):
    from neurolysis.modalities.surgical import plan_excision

    v = ctx.settings
    cut = plan_excision(ctx.nerve, ctx.pose.tip_m, v["segment_mm"] * 1e-3)
    target = ctx.outcome(cut.sample)
    warnings = []
    if cut.clipped:
        warnings.append(f"the {v['segment_mm']:g} mm segment ran past an end of {ctx.nerve.name!r}: {1e3 * cut.removed_length_m:.1f} mm removed")
    physics = Physics(cut.sample, cut.lesion().as_dict(), cut.to_dict(), tuple(warnings), 0.0, "excised segment", engine=cut)
    return physics, target


def _block_relief(block, sensory_h) -> object:
    from neurolysis.nerve import Relief

    note = f"temporary conduction block: sensory {sensory_h.median:.1f} h (10-90 %: {sensory_h.p10:.1f}-{sensory_h.p90:.1f} h); no axon is destroyed"
    return Relief(sensory_h.median / HOURS_PER_MONTH, sensory_h.p10 / HOURS_PER_MONTH, sensory_h.p90 / HOURS_PER_MONTH, "conduction-block", note)


def neurolytic_comparison(nerve, horizon_months: float, seed: int = 0) -> list[dict]:
    """Relief of a complete lesion of each neurolytic method's typical length at ``nerve``
    (``nerve.relief_for_lesion``; lengths in ``data/nerve_model.toml [comparison]``) and
    the procedures needed to cover ``horizon_months``."""
    from neurolysis.nerve import relief_for_lesion

    cat = load_catalog("nerve_model")["comparison"]
    out = []
    for method, length_mm in cat["typical_lesion_mm"].items():
        relief = relief_for_lesion(length_mm * 1e-3, nerve.end_organ_m, method, seed=seed)
        needed = math.ceil(horizon_months / relief.median) if relief.median else None
        out.append({
            "method": method,
            "relief_months": relief.to_dict(),
            "procedures_needed": needed,
            "basis": f"complete lesion of {length_mm:g} mm along the nerve, {1e3 * nerve.end_organ_m:g} mm to the end organ ({cat['sources'][method]}); simulate a plan with method = {method!r} for this placement",
        })  # fmt: skip
    return out


def _solve_block(ctx: Context):
    from neurolysis.chemistry import simulate_block
    from neurolysis.fields import unharmed

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
    warnings = [over_limit_warning(section)] if b.over_limit else []
    target = ctx.outcome(unharmed)
    target = replace(target, pain_block=True, relief=_block_relief(b, b.sensory_h))
    physics = Physics(unharmed, _no_lesion(), section, tuple(warnings), INJECTION_NEEDLE_M, "no lesion (reversible block)")
    return physics, target


def _no_lesion() -> dict:
    from neurolysis.lesion import LesionShape

    return LesionShape("no lesion: a nerve block destroys nothing", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0).as_dict()


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Method:
    """One plan method: its fields, checks and solver."""

    name: str
    section: str
    fields: tuple[str, ...]
    description: str
    check: Callable
    solve: Callable
    check_plan: Callable | None = None
    needle_length_m: Callable | None = None  # settings -> active length for the tip-in-bone check (None: no needle)


def _rf_needle_length(settings) -> float:
    return settings.tip_mm * 1e-3


def _cryo_needle_length(settings) -> float:
    from neurolysis.cryoprobes import cryoprobe

    return cryoprobe(settings["probe"]).active_length_m


def _injection_needle(settings) -> float:
    return INJECTION_NEEDLE_M


METHODS: dict[str, Method] = {
    "rf": Method("rf", "rf", RF_FIELDS, "conventional radiofrequency ablation", _check_rf, _solve_rf, None, _rf_needle_length),
    "cooled-rf": Method("cooled-rf", "rf", RF_FIELDS, "internally cooled RF", _check_rf, _solve_rf, None, _rf_needle_length),
    "pulsed-rf": Method("pulsed-rf", "rf", RF_FIELDS, "pulsed RF (not meant to destroy)", _check_rf, _solve_rf, None, _rf_needle_length),
    "chemical": Method("chemical", "chemical", CHEMICAL_FIELDS, "chemical neurolysis (ethanol, phenol)", _check_chemical, _solve_chemical, None, _injection_needle),
    "cryo": Method("cryo", "cryo", CRYO_FIELDS, "cryoneurolysis", _check_cryo, _solve_cryo, None, _cryo_needle_length),
    "surgical": Method("surgical", "surgical", SURGICAL_FIELDS, "surgical neurectomy", _check_surgical, _solve_surgical),
    "block": Method("block", "block", BLOCK_FIELDS, "local-anaesthetic nerve block (temporary)", _check_block, _solve_block, _check_block_plan, _injection_needle),
}


def method_names() -> tuple[str, ...]:
    return tuple(METHODS)


def choices(field_name: str, method: str) -> list[str] | None:
    """The catalogued values a text field accepts for ``method`` (agents, probes, adjuvants)."""
    if field_name == "agent" and method == "chemical":
        from neurolysis.chemistry import neurolytic_agents

        return sorted(neurolytic_agents())
    if field_name == "agent" and method == "block":
        from neurolysis.chemistry import anaesthetics

        return sorted(anaesthetics())
    if field_name == "probe":
        from neurolysis.cryoprobes import all_cryoprobes

        return sorted(all_cryoprobes())
    if field_name == "adjuvants":
        return list(ADJUVANTS)
    return None


def method_summary(name: str) -> dict:
    """A method for ``neurolysis methods``: its JSON section, fields, defaults and choices."""
    m = METHODS[name]
    out = {"method": name, "description": m.description, "section": m.section, "fields": list(m.fields), "defaults": defaults(name)}
    out["choices"] = {f: c for f in m.fields if (c := choices(f, name)) is not None}
    return out


def check_procedure(procedure) -> None:
    """Method known; no field of another method set; the method's own fields valid."""
    check_choice("procedure.method", procedure.method, METHODS)
    m = METHODS[procedure.method]
    for f in fields(procedure):
        value = getattr(procedure, f.name)
        if f.name != "method" and value is not None and f.name not in m.fields:
            raise ValidationError(f"procedure.{f.name} = {value!r}: not used by method {m.name!r}; its fields are {', '.join(m.fields)}")
    for name in ("concentration_pct", "volume_ml", "interval_h", "rate_ml_per_min", "segment_mm", "horizon_months"):
        value = getattr(procedure, name, None)
        if value is not None:
            check_number(f"procedure.{name}", value)
    m.check(procedure)


def check_plan(plan) -> None:
    """Checks that need more than ``[procedure]`` (the patient, for a block)."""
    m = METHODS[plan.procedure.method]
    if m.check_plan is not None:
        m.check_plan(plan)


__all__ = ["ADJUVANTS", "Context", "METHODS", "Method", "Physics", "RF_MODES", "check_plan", "check_procedure",
           "choices", "defaults", "method_names", "method_summary", "neurolytic_comparison", "resolved", "rf_settings_at"]  # fmt: skip
