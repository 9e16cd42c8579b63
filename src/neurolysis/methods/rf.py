"""Radiofrequency methods in a plan: ``rf`` (conventional), ``cooled-rf`` and ``pulsed-rf``.

The ``[procedure]`` fields are the plan's subset of :class:`~neurolysis.engines.rf.settings.RFSettings`
(the schema, written once there); the tissue comes from the anatomy at the tip. Solved by
the 3D engine (:mod:`neurolysis.engines.rf.engine3d`) in the anatomy; pulsed RF kills nothing.
"""

from __future__ import annotations

from neurolysis.devices import settings_ranges
from neurolysis.engines.poses import tissue_at
from neurolysis.engines.rf.engine3d import BIPOLAR_DT_S, BIPOLAR_MESH, DEFAULT_MESH, simulate_rf3d
from neurolysis.engines.rf.fluid import fluid_ids, pre_injection_limits_ml
from neurolysis.engines.rf.settings import RFSettings, setting_help, setting_types
from neurolysis.methods.base import Context, Method, PhysicsResult, PlanField
from neurolysis.validation import ValidationError, check_choice, check_range

POSITION = 0
"""Place of these methods in the registry's listing (``neurolysis methods``, plan field order)."""

RF_MODES = {"rf": "conventional", "cooled-rf": "cooled", "pulsed-rf": "pulsed"}
"""Plan method -> generator mode of RFSettings."""

PLAN_SETTINGS = (
    "gauge", "tip_mm", "set_temp_c", "time_s", "ramp_s", "max_power_w", "coolant_temp_c", "coolant_flow_ml_min",
    "pulse_voltage_v", "pulse_frequency_hz", "pulse_width_ms", "pulse_temp_limit_c", "damage_model", "electrodes",
)  # fmt: skip
"""The RFSettings fields a plan may set (the rest: tissue from the anatomy at the tip, mode from
the method, numerics fixed); types and comments come from RFSettings."""


def _plan_field(name: str) -> PlanField:
    """An RF setting as a plan field; unit and limits from ``data/devices.toml [settings_range]``, as RFSettings checks them."""
    ranged = settings_ranges()
    if name not in ranged:
        return PlanField(name, setting_types()[name], setting_help(name))
    return PlanField(name, setting_types()[name], setting_help(name), unit=ranged[name][2], limits=lambda values: settings_ranges()[name][:2])


PRE_INJECTION = PlanField("pre_injection", dict, "{ fluid = \"saline-0.9\", volume_ml = 0.5 }: fluid injected through the needle before heating (see `neurolysis fluids`)")
"""A table in the plan, the pair (pre_injection, pre_injection_ml) in RFSettings."""
FIELDS = (*(_plan_field(name) for name in PLAN_SETTINGS), PRE_INJECTION)
MODE_ONLY = {"set_temp_c": ("conventional", "cooled"), "coolant_temp_c": ("cooled",), "coolant_flow_ml_min": ("cooled",),
             "electrodes": ("conventional",), "pulse_voltage_v": ("pulsed",), "pulse_frequency_hz": ("pulsed",), "pulse_width_ms": ("pulsed",), "pulse_temp_limit_c": ("pulsed",)}  # fmt: skip
"""Settings only some generator modes use (RFSettings refuses them in the others); each RF method declares only its mode's."""


def mode_fields(method: str) -> tuple[PlanField, ...]:
    """The plan fields of one RF method: the settings its generator mode uses."""
    mode = RF_MODES[method]
    return tuple(f for f in FIELDS if mode in MODE_ONLY.get(f.name, (mode,)))


def rf_settings(procedure, **extra) -> RFSettings:
    """The plan's RF settings (unresolved), with the plan's field names in errors."""
    values = {f.name: getattr(procedure, f.name) for f in mode_fields(procedure.method)}
    values = {k: v for k, v in values.items() if v is not None}
    if "pre_injection" in values:
        values |= _pre_injection(values.pop("pre_injection"))
    try:
        return RFSettings(mode=RF_MODES[procedure.method], **values, **extra)
    except ValidationError as error:
        raise ValidationError(f"procedure.{error}") from None


def _pre_injection(table) -> dict:
    """``procedure.pre_injection`` = { fluid, volume_ml } as the RFSettings pair."""
    if not isinstance(table, dict) or set(table) != {"fluid", "volume_ml"}:
        raise ValidationError(f"procedure.pre_injection = {table!r}: must be a table {{ fluid = \"saline-0.9\", volume_ml = 0.5 }} with exactly these two keys")
    check_choice("procedure.pre_injection.fluid", table["fluid"], fluid_ids())
    low, high = pre_injection_limits_ml()
    return {"pre_injection": table["fluid"], "pre_injection_ml": check_range("procedure.pre_injection.volume_ml", table["volume_ml"], low, high, unit="mL")}


def _check(procedure) -> None:
    rf_settings(procedure)


def resolve(plan, scene, pose) -> RFSettings:
    """The plan's resolved RF settings for the tissue at the needle tip."""
    tissue = tissue_at(scene, pose.tip_m, "muscle")[0]
    if tissue == "bone":
        tissue = "muscle"  # reported only; a tip in bone is refused by the bone check
    return rf_settings(plan.procedure, tissue=tissue).resolved()


def shown_defaults(method: str) -> dict:
    """What ``plan new`` writes for an RF method: gauge, tip, time and (not pulsed) set temperature."""
    s = RFSettings(mode=RF_MODES[method]).resolved()
    shown = {"gauge": s.gauge, "tip_mm": s.tip_mm, "time_s": s.time_s}
    if method != "pulsed-rf":
        shown["set_temp_c"] = s.set_temp_c
    return shown


def _solve(ctx: Context) -> PhysicsResult:
    settings = ctx.settings
    poses = [ctx.pose] if ctx.partner is None else [ctx.pose, ctx.partner]
    mesh, dt_s = (DEFAULT_MESH, None) if ctx.partner is None else (BIPOLAR_MESH, BIPOLAR_DT_S)
    result = simulate_rf3d(settings, poses, ctx.scene, progress=ctx.progress, mesh=ctx.refined(mesh), dt_s=dt_s, tissue_factors=ctx.tissue_factors)
    rf = result.to_dict()
    return PhysicsResult(
        sample=result.sample,
        lesion=rf["lesion"],
        section={k: v for k, v in rf.items() if k not in ("lesion", "warnings", "disclaimer")},
        warnings=tuple(result.warnings),
        active_length_m=settings.tip_mm * 1e-3,
        lethal_label="lesion (Arrhenius Ω ≥ 1)",
        contours=((lambda pts: result.sample(pts).peak_temp_c, 50.0, "white", "--", "50 °C isotherm (peak)"),),
        engine=result,
    )


def _needle_length(settings: RFSettings) -> float:
    return settings.tip_mm * 1e-3


def _method(name: str, description: str) -> Method:
    return Method(name, "rf", mode_fields(name), description, _check, _solve, needle_length_m=_needle_length, resolve=resolve, new_plan_values=lambda: shown_defaults(name))


METHODS = (
    _method("rf", "conventional radiofrequency ablation"),
    _method("cooled-rf", "internally cooled RF"),
    _method("pulsed-rf", "pulsed RF (not meant to destroy)"),
)
