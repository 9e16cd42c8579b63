"""The RF settings schema: what an RF lesion simulation takes, in user units, validated.

One definition of the RF settings for the command line (``neurolysis rf``), the plan's
``[procedure]`` fields of the RF methods and both engines. Accepted ranges are data
(``data/devices.toml [settings_range]``); ``None`` means the device's or generator's
default (:meth:`RFSettings.resolved`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import get_args, get_type_hints

from neurolysis import devices as catalog
from neurolysis.engines.rf.fluid import PreInjection
from neurolysis.fields import BODY_TEMP_C
from neurolysis.physics.damage import arrhenius, arrhenius_sets
from neurolysis.physics.mesh import NeedleGeometry
from neurolysis.tissue import load_tissue, tissue_ids
from neurolysis.validation import ValidationError, check_choice, check_number, check_range

ELECTRODES = ("monopolar", "bipolar")
"""Electrode configurations: a needle against a grounding pad, or two needles against each other."""


def _setting(default, help: str, flag: str | None = None):
    """A settings field with its command-line help (and flag, default ``--field-name``)."""
    return field(default=default, metadata={"help": help, "flag": flag})


@dataclass(frozen=True)
class RFSettings:
    """Inputs of an RF lesion simulation, in user units (mm, C, s, mL/min, V).

    ``None`` means "the device's or generator's default" (see :meth:`resolved`). Each field
    carries its help text, from which ``neurolysis rf`` builds its options and the plan its
    comments (:func:`setting_help`).
    """

    mode: str = _setting("conventional", "conventional (default), cooled or pulsed")
    gauge: int | None = _setting(None, "needle gauge (16, 17, 18, 20, 22, 23)")
    tip_mm: float | None = _setting(None, "active (uninsulated) tip length, mm")
    set_temp_c: float | None = _setting(None, "generator set temperature, C (not pulsed)")
    time_s: float | None = _setting(None, "lesion time at set temperature, s (including ramp)")
    ramp_s: float | None = _setting(None, "ramp time to the set temperature, s")
    tissue: str = _setting("muscle", "tissue id (see `neurolysis tissues`); default muscle")
    ex_vivo: bool = _setting(False, "excised tissue: no perfusion, bath temperature --initial-temp-c")
    initial_temp_c: float | None = _setting(None, "ex vivo tissue and bath temperature, C (default 21)")
    damage_model: str | None = _setting(None, "Arrhenius parameter set (see data/damage.toml)")
    coolant_temp_c: float | None = _setting(None, "cooled mode: coolant inlet temperature, C")
    coolant_flow_ml_min: float | None = _setting(None, "cooled mode: coolant flow, mL/min")
    pulse_voltage_v: float | None = _setting(None, "pulsed mode: pulse voltage, V", flag="--voltage-v")
    pulse_frequency_hz: float | None = _setting(None, "pulsed mode: pulse repetition rate, Hz")
    pulse_width_ms: float | None = _setting(None, "pulsed mode: pulse width, ms")
    pulse_temp_limit_c: float | None = _setting(None, "pulsed mode: generator temperature limit, C", flag="--temp-limit-c")
    max_power_w: float | None = _setting(None, "generator power limit, W")
    electrodes: str = _setting("monopolar", "monopolar (default: one needle, current to a grounding pad) or bipolar (two parallel needles, current between the tips; conventional mode)")
    pre_injection: str | None = _setting(None, "fluid injected through the needle before heating (see `neurolysis fluids`; with --pre-injection-ml)")
    pre_injection_ml: float | None = _setting(None, "volume of the pre-injected fluid, mL")
    h_fine_mm: float = _setting(0.2, "mesh size where the lesion forms, mm (default verified 0.2)")
    dt_s: float = _setting(1.0, "time step, s (default verified 1.0)")
    domain_mm: float = _setting(60.0, "distance to the far boundary, mm")
    fine_margin_mm: float | None = _setting(None, "reach of the fine mesh beyond the needle, mm (default: fitted to the expected lesion, 8 where none is tabulated)")

    def __post_init__(self) -> None:
        check_choice("mode", self.mode, catalog.MODES)
        check_choice("tissue", self.tissue, tissue_ids())
        check_choice("electrodes", self.electrodes, ELECTRODES)
        if self.electrodes == "bipolar" and self.mode != "conventional":
            raise ValidationError(f"electrodes = 'bipolar': modelled for conventional RF only (mode = {self.mode!r}); no {self.mode} bipolar geometry was read to validate it")
        if self.gauge is not None:
            gauges = sorted(catalog.gauge_outer_diameters_mm())
            if check_number("gauge", self.gauge) != int(self.gauge):
                raise ValidationError(f"gauge = {self.gauge}: must be a whole number; allowed values are {', '.join(map(str, gauges))}")
            check_choice("gauge", int(self.gauge), gauges)
        for name, (low, high, unit) in catalog.settings_ranges().items():
            value = getattr(self, name)
            if value is not None:
                check_range(name, value, low, high, unit=unit)
        for name, (low, high, unit) in catalog.settings_ranges("numerics_range").items():
            if getattr(self, name) is not None:
                check_range(name, getattr(self, name), low, high, unit=unit)
        if self.damage_model is not None:
            check_choice("damage_model", self.damage_model, sorted(arrhenius_sets()))
        if self.initial_temp_c is not None and not self.ex_vivo:
            raise ValidationError(f"initial_temp_c = {self.initial_temp_c:g} C: only used in ex vivo mode (in vivo tissue starts at {BODY_TEMP_C:g} C)")
        if load_tissue(self.tissue).ex_vivo_only and not self.ex_vivo:
            raise ValidationError(f"tissue = {self.tissue!r}: an ex vivo phantom, allowed only with ex vivo mode (--ex-vivo)")
        if self.mode == "pulsed" and self.set_temp_c is not None:
            raise ValidationError(f"set_temp_c = {self.set_temp_c:g} C: pulsed RF is voltage-driven; use pulse_temp_limit_c for its temperature limit")
        if self.mode != "pulsed":
            for name in ("pulse_voltage_v", "pulse_frequency_hz", "pulse_width_ms", "pulse_temp_limit_c"):
                if getattr(self, name) is not None:
                    raise ValidationError(f"{name} = {getattr(self, name):g}: only used in pulsed mode")
        if self.mode != "cooled":
            for name in ("coolant_temp_c", "coolant_flow_ml_min"):
                if getattr(self, name) is not None:
                    raise ValidationError(f"{name} = {getattr(self, name):g}: only used in cooled mode")
        if (self.pre_injection is None) != (self.pre_injection_ml is None):
            raise ValidationError(f"pre_injection = {self.pre_injection!r}, pre_injection_ml = {self.pre_injection_ml!r}: give both the fluid and its volume, or neither")
        if self.pre_injection is not None:
            PreInjection(self.pre_injection, self.pre_injection_ml)
        if self.pulse_width_ms is not None and self.pulse_frequency_hz is not None:
            check_range("pulse_width_ms", self.pulse_width_ms, 1.0, 1000.0 / self.pulse_frequency_hz, high_inclusive=False, unit="ms (shorter than the pulse period)")

    @property
    def injection(self) -> PreInjection | None:
        """The fluid injected before heating, or None."""
        return None if self.pre_injection is None else PreInjection(self.pre_injection, float(self.pre_injection_ml))

    @property
    def device(self) -> catalog.Device:
        """The catalog device of this mode that matches gauge and tip, else the mode's default."""
        matches = [
            d
            for d in catalog.all_devices().values()
            if d.mode == self.mode and (self.gauge is None or d.gauge == self.gauge) and (self.tip_mm is None or d.tip_mm == self.tip_mm)
        ]
        return matches[0] if matches else catalog.default_device(self.mode)

    def resolved(self) -> RFSettings:
        """Every ``None`` filled from the device catalog, generator and ex vivo defaults."""
        device, gen = self.device, catalog.generator()
        defaults = {
            "gauge": device.gauge,
            "tip_mm": device.tip_mm,
            "set_temp_c": None if self.mode == "pulsed" else device.default_set_temp_c,
            "time_s": device.default_time_s,
            "ramp_s": gen.ramp_time_s,
            "initial_temp_c": 21.0 if self.ex_vivo else None,
            "damage_model": arrhenius().name,
            "max_power_w": gen.max_power_w,
        }
        if self.mode == "cooled":
            defaults |= {"coolant_temp_c": device.coolant_temp_c, "coolant_flow_ml_min": device.coolant_flow_ml_min}
        if self.mode == "pulsed":
            defaults |= {
                "pulse_voltage_v": device.pulse_voltage_v,
                "pulse_frequency_hz": device.pulse_frequency_hz,
                "pulse_width_ms": device.pulse_width_ms,
                "pulse_temp_limit_c": device.pulse_temp_limit_c,
            }
        changes = {k: v for k, v in defaults.items() if getattr(self, k) is None and v is not None}
        return replace(self, **changes)

    @property
    def start_temp_c(self) -> float:
        return self.initial_temp_c if self.ex_vivo and self.initial_temp_c is not None else BODY_TEMP_C

    def with_(self, **changes) -> RFSettings:
        """A copy with ``changes`` applied (validated again)."""
        return replace(self, **changes)

    def as_dict(self) -> dict:
        """Settings keyed with their units, for JSON and reports."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def needle_geometry(settings: RFSettings) -> NeedleGeometry:
    """The needle shape of resolved ``settings`` (gauge, tip, coat, cooled lumen), for either engine's mesh."""
    radius = catalog.outer_radius_m(settings.gauge)
    lumen = settings.device.lumen_diameter_mm * 0.5e-3 if settings.mode == "cooled" else 0.0
    return NeedleGeometry(
        radius_m=radius,
        tip_length_m=settings.tip_mm * 1e-3,
        cone_length_m=catalog.cone_length_over_radius() * radius,
        insulation_thickness_m=catalog.insulation_thickness_m(),
        lumen_radius_m=lumen,
    )


def setting_help(name: str) -> str:
    """The help text of the RF setting ``name``."""
    return next(f.metadata["help"] for f in fields(RFSettings) if f.name == name)


def setting_types() -> dict[str, type]:
    """The value type of each RF setting (``int``, ``float``, ``str`` or ``bool``; optional ones unwrapped)."""
    hints = get_type_hints(RFSettings)
    return {name: next(t for t in get_args(hint) if t is not type(None)) if get_args(hint) else hint for name, hint in hints.items()}
