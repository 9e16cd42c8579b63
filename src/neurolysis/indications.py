"""Indications and procedure burden: what neurolysis treats, on which nerve, by which method,
with what evidence, outcomes and coverage (``data/indications.toml``), and what each plan
method costs the patient (``data/burden.toml``).

A research and education catalog, not clinical advice. Every statement is a :class:`Line`
with its sources and a tag (READ, READ-2nd, DERIVED, UNVERIFIED); docs/models/indications.md.
:func:`destructive_warning` flags a destructive plan on a mixed motor nerve whose indication
is treated by decompression (the common peroneal nerve: foot drop). ``add_arguments`` and
``run`` are the ``neurolysis indications`` command.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cache
from types import MappingProxyType

from neurolysis._catalog import load_catalog
from neurolysis.anatomy.scene import without_level
from neurolysis.validation import check_choice

TAGS = ("READ", "READ-2nd", "DERIVED", "UNVERIFIED")


@dataclass(frozen=True)
class Line:
    """One catalogued statement: its text, the ``[sources]`` keys it rests on (``"S1; S3"``),
    how it was read (``tag``) and, for the lines about a method, the plan method."""

    text: str
    source: str
    tag: str
    method: str | None = None

    @property
    def source_keys(self) -> tuple[str, ...]:
        return tuple(k.strip() for k in self.source.split(";"))

    def to_dict(self) -> dict:
        return ({"method": self.method} if self.method else {}) | {"text": self.text, "source": self.source, "tag": self.tag}


_LINE_LISTS = ("treatment", "uses", "avoid", "evidence", "guidelines", "typical_outcomes", "coverage", "notes")


@dataclass(frozen=True)
class Indication:
    """One indication: its target nerves and templates, the methods used (``uses``) and not
    appropriate (``avoid``, with the reason), evidence, outcomes and coverage, each a sourced
    :class:`Line`; ``sources`` maps the keys its lines cite to full references."""

    id: str
    name: str
    category: str
    targets: tuple[str, ...]
    templates: tuple[str, ...]
    treatment: tuple[Line, ...]
    uses: tuple[Line, ...]
    avoid: tuple[Line, ...]
    evidence_level: Line
    evidence: tuple[Line, ...]
    guidelines: tuple[Line, ...]
    typical_outcomes: tuple[Line, ...]
    coverage_class: str
    coverage: tuple[Line, ...]
    notes: tuple[Line, ...]
    motor_warning: str | None
    sources: Mapping[str, str]
    no_template: str | None = None  # why no anatomy template simulates it (an entry without templates must say)

    @property
    def methods(self) -> tuple[str, ...]:
        """Plan methods used for this indication, in catalog order."""
        return tuple(dict.fromkeys(line.method for line in self.uses))

    @property
    def not_appropriate(self) -> dict[str, str]:
        """Plan method -> why it is not appropriate here."""
        return {line.method: line.text for line in self.avoid}

    def lines(self) -> tuple[Line, ...]:
        return (self.evidence_level, *(line for name in _LINE_LISTS for line in getattr(self, name)))

    def to_dict(self) -> dict:
        """The full entry (``neurolysis indications --json``)."""
        out = {"id": self.id, "name": self.name, "category": self.category, "targets": list(self.targets), "templates": list(self.templates),
               "methods": list(self.methods), "not_appropriate": self.not_appropriate, "evidence_level": self.evidence_level.to_dict()}  # fmt: skip
        out |= {name: [line.to_dict() for line in getattr(self, name)] for name in _LINE_LISTS}
        return out | {"coverage_class": self.coverage_class, "motor_warning": self.motor_warning, "no_template": self.no_template, "sources": dict(self.sources)}

    def summary(self) -> dict:
        """What an outcome carries (``simulate --json`` key ``indication``): evidence, outcomes, coverage."""
        lines = (self.evidence_level, *self.evidence, *self.guidelines, *self.typical_outcomes, *self.coverage)
        cited = {k for line in lines for k in line.source_keys}
        return {
            "id": self.id, "name": self.name, "category": self.category,
            "evidence_level": self.evidence_level.to_dict(),
            "evidence": [line.to_dict() for line in (*self.evidence, *self.guidelines)],
            "typical_outcomes": [line.to_dict() for line in self.typical_outcomes],
            "coverage_class": self.coverage_class,
            "coverage": [line.to_dict() for line in self.coverage],
            "sources": {k: v for k, v in self.sources.items() if k in cited},
        }  # fmt: skip


@dataclass(frozen=True)
class Burden:
    """What one plan method costs the patient: duration, anaesthesia, setting, tolerability, and
    how long its effect lasts (``effect_class``: permanent | long-lasting | temporary | uncertain).
    ``destructive``: it kills axons (a motor nerve loses its axons too, for ``motor_loss``)."""

    method: str
    name: str
    destructive: bool
    effect_class: str
    effect: str
    settings: tuple[str, ...]
    duration: tuple[Line, ...]
    anaesthesia: tuple[Line, ...]
    setting: tuple[Line, ...]
    tolerability: tuple[Line, ...]
    effect_duration: tuple[Line, ...]
    notes: tuple[Line, ...]
    motor_loss: Line | None
    sources: Mapping[str, str]

    def lines(self) -> tuple[Line, ...]:
        return (*self.duration, *self.anaesthesia, *self.setting, *self.tolerability, *self.effect_duration, *self.notes, *((self.motor_loss,) if self.motor_loss else ()))

    def as_dict(self) -> dict:
        """The short form a comparison table shows: one text per field (the first line of each, with its tag)."""
        first = {name: f"{lines[0].text} [{lines[0].tag}]" for name in ("anaesthesia", "duration") if (lines := getattr(self, name))}
        return {"effect_class": self.effect_class, "effect": self.effect, "setting": ", ".join(self.settings), **first, "destructive": self.destructive}

    def to_dict(self) -> dict:
        """Every field, each line with its source and tag."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Line):
                value = value.to_dict()
            elif isinstance(value, tuple) and value and isinstance(value[0], Line):
                value = [line.to_dict() for line in value]
            out[f.name] = list(value) if isinstance(value, tuple) else dict(value) if isinstance(value, Mapping) else value
        return out


def _line(raw: Mapping, where: str, sources: Mapping[str, str], method: bool = False) -> Line:
    """A catalog line, checked: known tag, every source key defined, a method named where one is needed."""
    line = Line(raw["text"], raw["source"], raw["tag"], raw.get("method"))
    if line.tag not in TAGS or not line.text.strip():
        raise ValueError(f"{where}: tag {line.tag!r} (allowed {', '.join(TAGS)}) or empty text")
    missing = [k for k in line.source_keys if k not in sources]
    if missing:
        raise ValueError(f"{where}: source keys {missing} are not in [sources]")
    if method and not line.method:
        raise ValueError(f"{where}: names no method")
    return line


def _cited(lines, sources: Mapping[str, str]) -> Mapping[str, str]:
    keys = {k for line in lines for k in line.source_keys}
    return MappingProxyType({k: v for k, v in sources.items() if k in keys})


@cache
def _indications() -> dict[str, Indication]:
    catalog = load_catalog("indications")
    sources = catalog["sources"]
    out = {}
    for key, raw in catalog["indication"].items():
        where = f"indications.toml [indication.{key}]"
        if raw["category"] not in catalog["categories"] or raw["coverage_class"] not in catalog["coverage_classes"]:
            raise ValueError(f"{where}: category {raw['category']!r} or coverage_class {raw['coverage_class']!r} unknown")
        lists = {name: tuple(_line(r, f"{where}.{name}", sources, name in ("uses", "avoid")) for r in raw[name]) for name in _LINE_LISTS}
        level = _line(raw["evidence_level"], f"{where}.evidence_level", sources)
        cited = _cited((level, *(line for group in lists.values() for line in group)), sources)
        if not raw["templates"] and not raw.get("no_template"):
            raise ValueError(f"{where}: names no template and says not why (no_template)")
        out[key] = Indication(key, raw["name"], raw["category"], tuple(raw["targets"]), tuple(raw["templates"]), evidence_level=level,
                              coverage_class=raw["coverage_class"], motor_warning=raw.get("motor_warning"), sources=cited, no_template=raw.get("no_template"), **lists)  # fmt: skip
    return out


@cache
def _burdens() -> dict[str, Burden]:
    catalog = load_catalog("burden")
    sources = catalog["sources"]
    out = {}
    for method, raw in catalog["method"].items():
        where = f"burden.toml [method.{method}]"
        if raw["effect_class"] not in catalog["effect_classes"] or not set(raw["settings"]) <= set(catalog["setting_kinds"]):
            raise ValueError(f"{where}: effect_class {raw['effect_class']!r} or settings {raw['settings']} unknown")
        lists = {name: tuple(_line(r, f"{where}.{name}", sources) for r in raw.get(name, [])) for name in ("duration", "anaesthesia", "setting", "tolerability", "effect_duration", "notes")}
        motor = _line(raw["motor_loss"], f"{where}.motor_loss", sources) if "motor_loss" in raw else None
        if raw["destructive"] and motor is None:
            raise ValueError(f"{where}: a destructive method needs motor_loss")
        cited = _cited((*(line for group in lists.values() for line in group), *((motor,) if motor else ())), sources)
        out[method] = Burden(method, raw["name"], raw["destructive"], raw["effect_class"], raw["effect"], tuple(raw["settings"]), motor_loss=motor, sources=cited, **lists)
    return out


def indication_names() -> tuple[str, ...]:
    """The catalogued indications, in catalog order."""
    return tuple(_indications())


def load_indication(name: object, field: str = "indication") -> Indication:
    """One indication by id; a ValidationError (one line, naming ``field``) lists the allowed ids."""
    check_choice(field, name, indication_names())
    return _indications()[name]  # type: ignore[index]


def treats(targets: tuple[str, ...], nerve: str) -> bool:
    """Whether ``nerve`` is one of ``targets``, at any spinal level (``L3 medial branch`` is treated
    where the catalog lists ``L4 medial branch``; ``T10 intercostal nerve`` where it lists ``intercostal nerve``)."""
    key = without_level(nerve)
    return nerve in targets or any(without_level(t) == key for t in targets)


def indications_for(template: str | None = None, nerve: str | None = None) -> tuple[Indication, ...]:
    """The indications simulated on ``template`` and/or aimed at ``nerve`` (None: any)."""
    return tuple(i for i in _indications().values() if (template is None or template in i.templates) and (nerve is None or treats(i.targets, nerve)))


def burden(method: str) -> Burden:
    """The procedure burden of a plan method (``procedure.method``)."""
    check_choice("method", method, tuple(_burdens()))
    return _burdens()[method]


def destructive_warning(method: str, nerve_name: str, nerve_kind: str) -> str | None:
    """``FOOT DROP RISK: ...`` when a destructive method (rf, cooled-rf, chemical, cryo, surgical)
    meets a mixed or motor nerve that the catalog treats by decompression (its indication has a
    ``motor_warning``: the common peroneal nerve); else None."""
    b = _burdens().get(method)
    if b is None or not b.destructive or nerve_kind not in load_catalog("indications")["rules"]["motor_kinds"]:
        return None
    for indication in _indications().values():
        if indication.motor_warning and treats(indication.targets, nerve_name):
            return indication.motor_warning.format(method=method, nerve=nerve_name, kind=nerve_kind, motor_loss=b.motor_loss.text)
    return None


def indication_warnings(name: str | None, method: str, nerve_name: str, nerve_kind: str) -> tuple[str, ...]:
    """The outcome's warnings from the catalog: :func:`destructive_warning` (whether or not the plan
    names an indication), and, for a named one, a target it does not treat or a method it rules out."""
    foot = destructive_warning(method, nerve_name, nerve_kind)
    out = [foot] if foot else []
    if name is None:
        return tuple(out)
    ind = load_indication(name, "indication.name")
    if ind.targets and not treats(ind.targets, nerve_name):
        out.append(f"indication {name!r} targets {', '.join(ind.targets)}; this plan's target is {nerve_name!r}")
    if method in ind.not_appropriate and foot is None:
        out.append(f"procedure.method = {method!r} is not appropriate for indication {name!r}: {ind.not_appropriate[method]}")
    elif method not in ind.methods and method not in ind.not_appropriate and ind.methods:
        out.append(f"procedure.method = {method!r} is not among the methods catalogued for indication {name!r} ({', '.join(ind.methods)})")
    return tuple(out)


def outcome_indication(name: str | None) -> dict | None:
    """The ``indication`` key of an outcome: None, or the named indication's :meth:`Indication.summary`."""
    return None if name is None else load_indication(name, "indication.name").summary()
