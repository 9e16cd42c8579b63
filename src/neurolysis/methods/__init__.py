"""The methods a plan can name (``procedure.method``): the registry, built from the method modules.

Every module of this package except :mod:`.base` declares ``METHODS`` (its
:class:`~neurolysis.methods.base.Method` records) and ``POSITION`` (its place in listings
and in the order of the ``[procedure]`` fields). Adding a method means adding one module
here, with its data and docs; nothing else changes (see docs/architecture.md).

=============  ==============  =======================================================
method         JSON section    engine
=============  ==============  =======================================================
rf, cooled-rf  ``rf``          3D RF (``engines/rf/engine3d.py``)
pulsed-rf      ``rf``          3D RF, pulsed mode (kills nothing)
chemical       ``chemical``    3D bolus + transport + dose (``engines/chemical.py``)
cryo           ``cryo``        3D enthalpy freezing (``engines/cryo.py``)
surgical       ``surgical``    excised segment (``engines/surgical.py``)
block          ``block``       local-anaesthetic block model (``engines/block.py``)
=============  ==============  =======================================================
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import fields

from neurolysis.methods.base import Method, PlanField
from neurolysis.validation import ValidationError, check_choice, check_number


def _discover() -> dict[str, Method]:
    modules = [importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__) if m.name != "base"]
    modules.sort(key=lambda module: module.POSITION)
    return {m.name: m for module in modules for m in module.METHODS}


METHODS: dict[str, Method] = _discover()


def method_names() -> tuple[str, ...]:
    return tuple(METHODS)


def procedure_fields() -> tuple[PlanField, ...]:
    """Every method's ``[procedure]`` fields, each name once, in registry order (the first
    declaration of a shared name gives its type)."""
    seen: dict[str, PlanField] = {}
    for m in METHODS.values():
        for f in m.fields:
            seen.setdefault(f.name, f)
    return tuple(seen.values())


def field_comment(method: str, name: str) -> str:
    """The comment ``plan new`` writes beside ``[procedure] name`` of ``method``."""
    return next((f.comment for f in METHODS[method].fields if f.name == name), "")


def method_summary(name: str) -> dict:
    """A method for ``neurolysis methods``: its JSON section, fields, defaults, choices, units and
    ranges. ``ranges[field]`` = {low, high, low_inclusive, unit} at the default values;
    ``ranges_by_choice[field][choice_field][choice]`` = [low, high] where another choice moves them
    (a concentration's limit follows the agent)."""
    m = METHODS[name]
    defaults = m.default_values()
    out = {"method": name, "description": m.description, "section": m.section, "fields": list(m.field_names), "defaults": defaults}
    choices = {f: options() for f in m.field_names if (options := m.choices.get(f)) is not None}
    out["choices"] = choices
    out["units"] = {f.name: f.unit for f in m.fields if f.unit}
    out["ranges"], out["ranges_by_choice"] = {}, {}
    for f in m.fields:
        if f.limits is None:
            continue
        low, high = f.limits(defaults)
        out["ranges"][f.name] = {"low": low, "high": high, "low_inclusive": f.low_inclusive, "unit": f.unit}
        for chooser, options in choices.items():
            moved = {option: list(f.limits(defaults | {chooser: option})) for option in options}
            if any(v != [low, high] for v in moved.values()):
                out["ranges_by_choice"].setdefault(f.name, {})[chooser] = moved
    return out


def check_procedure(procedure) -> None:
    """Method known; no field of another method set; the method's own fields valid."""
    check_choice("procedure.method", procedure.method, METHODS)
    m = METHODS[procedure.method]
    for f in fields(procedure):
        value = getattr(procedure, f.name)
        if f.name != "method" and value is not None and f.name not in m.field_names:
            raise ValidationError(f"procedure.{f.name} = {value!r}: not used by method {m.name!r}; its fields are {', '.join(m.field_names)}")
    for f in m.fields:
        value = getattr(procedure, f.name)
        if f.number and value is not None:
            check_number(f"procedure.{f.name}", value)
    m.check(procedure)


def check_plan(plan) -> None:
    """Checks that need more than ``[procedure]`` (the patient, for a block)."""
    m = METHODS[plan.procedure.method]
    if m.check_plan is not None:
        m.check_plan(plan)


__all__ = ["METHODS", "Method", "check_plan", "check_procedure", "field_comment", "method_names", "method_summary", "procedure_fields"]
