"""The plan file: what to simulate, validated in full before any computation.

A plan is TOML with the sections ``[anatomy]``, ``[target]``, ``[procedure]``,
``[placement]``, ``[patient]``, ``[simulation]`` and the optional ``[uncertainty]`` and
``[indication]``; field names carry their units (``tip_mm``, ``time_s``). Unknown sections or fields are errors (a typo must never be
silently ignored). ``--set section.field=value`` overrides any field; the value is read as
a TOML value (``3``, ``[3, 0, 0]``, ``"genicular"``) or else taken as a bare string.
"""

from __future__ import annotations

import math
import re
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, make_dataclass, replace
from pathlib import Path

from neurolysis.anatomy.imaging import segmentation_scene
from neurolysis.anatomy.scene import APPROACHES
from neurolysis.anatomy.templates import load_template, template_procedure_defaults, template_session_targets
from neurolysis.chemistry import WEIGHT_RANGE_KG
from neurolysis.indications import load_indication
from neurolysis.methods import METHODS, check_plan, check_procedure, field_comment, method_names, procedure_fields
from neurolysis.outcome.relief import AGE_RANGE_YEARS, endpoints
from neurolysis.planning.anatomy_spec import AnatomySpec
from neurolysis.planning.needles import PLACEMENT_KEYS, NeedleSpec, needles_from_list
from neurolysis.planning.uncertainty_spec import UncertaintySpec
from neurolysis.validation import ValidationError, check_choice, check_number, check_range, check_toml_integers, shown

PLACEMENT_APPROACHES = (*APPROACHES, "explicit")
OFFSET_LIMIT_MM = 50.0
DIRECTION_LIMIT = 1e6
"""Largest component of ``placement.direction`` (its length does not matter; larger ones overflow its norm)."""
SEED_MAX = 2**32 - 1
"""Largest ``simulation.seed`` (the axon and Monte Carlo generators take 32-bit seeds)."""
DEFAULT_BLOCK_WEIGHT_KG = 70.0
"""Written by ``plan new --method block`` (a block needs the weight): the user sets the real one."""


def _vector(name: str, value, *, limit: float | None = None, unit: str = "mm") -> tuple[float, float, float]:
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise ValidationError(f"{name} = {value!r}: must be a list of three numbers [x, y, z]")
    out = tuple(check_number(f"{name}[{i}]", v) for i, v in enumerate(value))
    if limit is not None:
        for i, v in enumerate(out):
            check_range(f"{name}[{i}]", v, -limit, limit, unit=unit)
    return out  # type: ignore[return-value]


@dataclass(frozen=True)
class TargetSpec:
    nerve: str | None = None  # None: the anatomy's default target


def _procedure_post_init(self) -> None:
    check_procedure(self)  # every field validated now, with the plan's names
    for f in procedure_fields():
        value = getattr(self, f.name)
        if f.normalise is not None and value is not None:
            object.__setattr__(self, f.name, f.normalise(value))


ProcedureSpec = make_dataclass(
    "ProcedureSpec",
    [("method", str, field(default="rf"))] + [(f.name, f.type | None, field(default=None)) for f in procedure_fields()],
    frozen=True,
    namespace={"__post_init__": _procedure_post_init, "__module__": __name__},
)
ProcedureSpec.__doc__ = """Method and its settings in user units; ``None`` means the default.

The fields are those the methods declare (``neurolysis.methods``, one module per method),
each name once, in registry order: RF methods the device settings (defaults from the device
catalog); chemical ``agent``, ``concentration_pct``, ``volume_ml``, ``injections``,
``interval_h``, ``rate_ml_per_min``, ``repeat_site``; RF ``pre_injection`` (a table
{fluid, volume_ml}); cryo ``probe`` and ``cycles`` (pairs ``["freeze", 90]``,
``["thaw", 30]``, seconds); surgical ``segment_mm``; block ``agent``, ``concentration_pct``,
``volume_ml``, ``adjuvants``, ``override_max_dose``, ``horizon_months`` (defaults from
``data/plan_defaults.toml``). Setting a field another method reads is an error.
"""


@dataclass(frozen=True)
class PlacementSpec:
    """Where the needle goes (anatomy frame, mm).

    ``parallel`` / ``perpendicular``: the anatomy's recommended pose for the target,
    its tip moved by ``offset_mm``. ``explicit``: ``tip_mm`` and ``direction`` (hub -> tip).
    """

    approach: str = "parallel"
    offset_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    tip_mm: tuple[float, float, float] | None = None
    direction: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        check_choice("placement.approach", self.approach, PLACEMENT_APPROACHES)
        object.__setattr__(self, "offset_mm", _vector("placement.offset_mm", self.offset_mm, limit=OFFSET_LIMIT_MM))
        if self.approach == "explicit":
            if self.tip_mm is None or self.direction is None:
                raise ValidationError(f"placement.approach = 'explicit': needs placement.tip_mm and placement.direction (got tip_mm = {self.tip_mm!r}, direction = {self.direction!r})")
        elif self.tip_mm is not None or self.direction is not None:
            raise ValidationError(f"placement.tip_mm / placement.direction: only used with approach = 'explicit' (approach is {self.approach!r}; use offset_mm to move the recommended tip)")
        if self.tip_mm is not None:
            object.__setattr__(self, "tip_mm", _vector("placement.tip_mm", self.tip_mm))
        if self.direction is not None:
            direction = _vector("placement.direction", self.direction, limit=DIRECTION_LIMIT, unit="")
            if math.hypot(*direction) < 1e-9:
                raise ValidationError(f"placement.direction = {list(direction)}: must be a non-zero vector (hub -> tip)")
            object.__setattr__(self, "direction", direction)


@dataclass(frozen=True)
class PatientSpec:
    """``weight_kg`` (doses, blood alcohol); ``age_years`` (regrowth and maturation speed;
    None: an adult, ``data/nerve_model.toml [recovery.age]``)."""

    weight_kg: float | None = None
    age_years: float | None = None

    def __post_init__(self) -> None:
        if self.weight_kg is not None:
            check_range("patient.weight_kg", self.weight_kg, *WEIGHT_RANGE_KG, unit="kg")
        if self.age_years is not None:
            check_range("patient.age_years", self.age_years, *AGE_RANGE_YEARS, unit="years")


@dataclass(frozen=True)
class SimulationSpec:
    """Numerical options: the seed of every random choice (axon positions, Monte Carlo),
    the number of modelled axons, and a mesh refinement factor (1 = the verified default;
    1.5 divides the 3D mesh spacing by 1.5, for convergence checks)."""

    seed: int = 0
    n_axons: int = 2000
    mesh_refinement: float = 1.0
    relief_endpoint: str | None = None  # complete (None) | fifty_percent: the relief whose end is reported

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValidationError(f"simulation.seed = {self.seed!r}: must be a whole number >= 0")
        if self.seed > SEED_MAX:
            raise ValidationError(f"simulation.seed = {self.seed}: must be a whole number from 0 to {SEED_MAX}")
        if isinstance(self.n_axons, bool) or not isinstance(self.n_axons, int):
            raise ValidationError(f"simulation.n_axons = {self.n_axons!r}: must be a whole number")
        check_range("simulation.n_axons", self.n_axons, 100, 100_000)
        check_range("simulation.mesh_refinement", self.mesh_refinement, 0.5, 2.5)
        if self.relief_endpoint is not None:
            check_choice("simulation.relief_endpoint", self.relief_endpoint, endpoints())


@dataclass(frozen=True)
class IndicationSpec:
    """The indication the plan treats (optional; ``neurolysis indications``, ``data/indications.toml``):
    the outcome then carries its evidence, outcomes and coverage, and warns when the plan's target
    nerve or method does not fit it."""

    name: str | None = None

    def __post_init__(self) -> None:
        if self.name is not None:
            load_indication(self.name, "indication.name")


_SECTIONS = {
    "anatomy": AnatomySpec,
    "target": TargetSpec,
    "procedure": ProcedureSpec,
    "placement": PlacementSpec,
    "patient": PatientSpec,
    "simulation": SimulationSpec,
    "uncertainty": UncertaintySpec,
    "indication": IndicationSpec,
}


@dataclass(frozen=True)
class Plan:
    """A validated plan; relative anatomy paths are resolved against ``base_dir``."""

    anatomy: AnatomySpec = field(default_factory=AnatomySpec)
    target: TargetSpec = field(default_factory=TargetSpec)
    procedure: ProcedureSpec = field(default_factory=ProcedureSpec)
    placement: PlacementSpec = field(default_factory=PlacementSpec)
    patient: PatientSpec = field(default_factory=PatientSpec)
    simulation: SimulationSpec = field(default_factory=SimulationSpec)
    uncertainty: UncertaintySpec = field(default_factory=UncertaintySpec)
    indication: IndicationSpec = field(default_factory=IndicationSpec)
    needles: tuple[NeedleSpec, ...] = ()
    base_dir: str = "."

    def __post_init__(self) -> None:
        if self.needles:
            if self.placement != PlacementSpec():
                raise ValidationError("placement: a plan with [[needles]] places each needle in its own table; leave [placement] out")
            u = self.uncertainty
            if u.full_solves or u.anchors or u.conductivity_sd_ln or u.perfusion_sd_ln:
                raise ValidationError("uncertainty: with [[needles]] the placement cohort moves each lesion rigidly; full_solves, anchors and the property spread "
                                      "(conductivity_sd_ln, perfusion_sd_ln) are for one needle: leave them at 0")  # fmt: skip
            if self.target.nerve is not None and self.target.nerve != self.needles[0].target:
                raise ValidationError(f"target.nerve = {self.target.nerve!r}: with [[needles]] it is the first needle's target ({self.needles[0].target!r}); leave it out or make them agree")
        check_plan(self)

    def needle_specs(self) -> tuple[NeedleSpec, ...]:
        """Every lesion of the plan: the ``[[needles]]``, or the one of ``[target]`` and ``[placement]``."""
        return self.needles or (NeedleSpec(self.target.nerve, self.placement),)

    def for_needle(self, needle: NeedleSpec) -> Plan:
        """This plan as the one lesion ``needle`` makes: its target, placement and settings."""
        procedure = replace(self.procedure, **{k: tuple(v) if isinstance(v, list) else v for k, v in needle.settings.items()}) if needle.settings else self.procedure
        return replace(self, target=TargetSpec(nerve=needle.target), placement=needle.placement, procedure=procedure, needles=())

    def path(self, name: str | None) -> Path | None:
        """An anatomy file path, relative to the plan file's folder."""
        if name is None:
            return None
        p = Path(name)
        return p if p.is_absolute() else Path(self.base_dir) / p

    def as_dict(self) -> dict:
        """The plan as nested sections (the resolved plan in the JSON output)."""
        out = {}
        for name in _SECTIONS:
            if name == "placement" and self.needles:
                continue
            values = asdict(getattr(self, name))
            out[name] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items() if v is not None}
        if self.needles:
            out["needles"] = [n.as_dict() for n in self.needles]
        return out

    def with_(self, **sections) -> Plan:
        return replace(self, **sections)


def plan_from_dict(data: dict, base_dir: str = ".") -> Plan:
    """Validate nested sections (as read from TOML) into a :class:`Plan`."""
    if not isinstance(data, dict):
        raise ValidationError(f"plan = {data!r}: must be a table of sections")
    unknown = sorted(set(data) - set(_SECTIONS) - {"needles"}, key=str)
    if unknown:
        raise ValidationError(f"plan section [{shown(unknown[0])}]: unknown; allowed sections are {', '.join(_SECTIONS)} and [[needles]]")
    for name in (*_SECTIONS, "needles"):
        check_toml_integers(data.get(name), name)
    sections = {}
    for name, cls in _SECTIONS.items():
        values = data.get(name, {})
        if not isinstance(values, dict):
            raise ValidationError(f"{name} = {values!r}: must be a table [{name}]")
        allowed = [f.name for f in fields(cls)]
        for key in values:
            if key not in allowed:
                raise ValidationError(f"{name}.{shown(key)}: unknown field; allowed fields of [{name}] are {', '.join(allowed)}")
        kwargs = dict(values)
        for key in ("offset_mm", "tip_mm", "direction"):
            if name == "placement" and isinstance(kwargs.get(key), list):
                kwargs[key] = tuple(kwargs[key])
        if name == "anatomy" and ("labels" in kwargs or "segmentation" in kwargs) and "template" not in kwargs:
            kwargs["template"] = None
        sections[name] = cls(**kwargs)
    needles = ()
    if "needles" in data:
        needles = needles_from_list(data["needles"], sections["procedure"], PlacementSpec, tuple(f.name for f in procedure_fields()))
        if sections["target"].nerve is None:
            sections["target"] = TargetSpec(nerve=needles[0].target)
    return Plan(**sections, needles=needles, base_dir=base_dir)


NEEDLE_KEY = re.compile(r"needles\[(\d{1,2})\]")
"""``--set needles[k].field=value``: a field of the k-th ``[[needles]]`` table (k from 0)."""


def parse_override(text: str) -> tuple[str, str, object]:
    """``section.field=value`` -> (section, field, value); the value is read as TOML."""
    key, sep, raw = text.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot or not name:
        raise ValidationError(f"--set {text!r}: must be section.field=value, e.g. placement.offset_mm=[3,0,0]")
    if NEEDLE_KEY.fullmatch(section):
        allowed = ["target", *PLACEMENT_KEYS, *(f.name for f in procedure_fields() if f.name not in PLACEMENT_KEYS)]
    elif section not in _SECTIONS:
        raise ValidationError(f"--set {text!r}: unknown section {section!r}; allowed sections are {', '.join(_SECTIONS)} and needles[k] (k from 0)")
    else:
        allowed = [f.name for f in fields(_SECTIONS[section])]
    if name not in allowed:
        raise ValidationError(f"--set {text!r}: unknown field {name!r}; allowed fields of [{section}] are {', '.join(allowed)}")
    try:
        document = tomllib.loads(f"v = {raw.strip()}")
    except (ValueError, RecursionError) as error:  # not one TOML value: the text itself
        if not isinstance(error, tomllib.TOMLDecodeError):
            raise ValidationError(f"{section}.{name} = {shown(raw.strip()[:40])}...: {toml_problem(error)}") from None
        document = {"v": raw.strip()}
    value = document["v"] if len(document) == 1 else raw.strip()  # "3\nx = 1" is text, not the value 3
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f"{section}.{name} = {shown(raw.strip())}: must be a finite number")
    return section, name, value


def toml_problem(error: Exception) -> str:
    """What made TOML text unreadable, in one line (the parser's message, or the limit hit)."""
    if isinstance(error, tomllib.TOMLDecodeError):
        return str(error)
    if isinstance(error, RecursionError):
        return "arrays or tables nested too deeply"
    return f"an integer of more than {sys.get_int_max_str_digits()} digits"


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """A copy of the nested plan dict with every ``--set`` applied in order."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for text in overrides:
        section, name, value = parse_override(text)
        if (needle := NEEDLE_KEY.fullmatch(section)) is not None:
            k, needles = int(needle.group(1)), out.get("needles")
            if not isinstance(needles, list) or k >= len(needles) or not isinstance(needles[k], dict):
                raise ValidationError(f"--set {text!r}: the plan has {len(needles) if isinstance(needles, list) else 0} [[needles]] tables; needles[k] counts from 0")
            out["needles"] = [dict(n) if isinstance(n, dict) else n for n in needles]
            out["needles"][k][name] = value
            continue
        out.setdefault(section, {})
        if not isinstance(out[section], dict):
            raise ValidationError(f"{section} = {out[section]!r}: must be a table [{section}]")
        out[section][name] = value
        if section == "anatomy" and name in ("labels", "segmentation"):
            out[section].setdefault("template", None)
    return out


def load_plan(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Plan:
    """Read, override and validate a plan file (all errors are ValidationError, one line)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationError(f"plan file = {str(p)!r}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:  # a directory, no permission, a name too long, not UTF-8
        raise ValidationError(f"plan file = {str(p)!r}: cannot be read ({error.__class__.__name__})") from None
    try:
        data = tomllib.loads(text)
    except (ValueError, RecursionError) as error:  # TOMLDecodeError; an over-long integer; deep nesting
        raise ValidationError(f"plan file = {str(p)!r}: malformed TOML ({toml_problem(error)})") from None
    return plan_from_dict(apply_overrides(data, list(overrides)), base_dir=str(p.parent))


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_value(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, float):
        return repr(value)
    return str(value)


_COMMENTS = {
    ("anatomy", "template"): "see `neurolysis templates`; or segmentation = \"seg.nii.gz\" (a patient's scan), or labels = \"case.nii.gz\", labels_map = \"labels.toml\", nerves = \"nerves.json\"",
    ("anatomy", "segmentation"): "a label map (NIfTI, NRRD, .seg.nrrd) or a TotalSegmentator folder; a list adds label layers; paths relative to this file",
    ("anatomy", "names"): "totalsegmentator | totalsegmentator-mr | totalsegmentator:<task> | embedded | a table (.ctbl, .tsv, .txt, .csv)",
    ("anatomy", "image"): "CT or MR for figures and the viewer: NIfTI, NRRD or a DICOM folder",
    ("anatomy", "side"): "left | right: the side of the target nerve",
    ("anatomy", "tissues"): "structure name = tissue id: overrides the name rules",
    ("target", "nerve"): "a nerve of the anatomy",
    ("procedure", "method"): "rf | cooled-rf | pulsed-rf | chemical | cryo | surgical | block",
    ("placement", "approach"): "parallel | perpendicular | explicit",
    ("placement", "offset_mm"): "shift of the tip from the recommended position (anatomy frame, mm)",
    ("patient", "weight_kg"): "kg; required for a block (maximum dose), used for blood alcohol",
    ("patient", "age_years"): "years; regrowth and maturation are faster when young (default: adult)",
    ("simulation", "seed"): "seed of axon positions and Monte Carlo (reproducible results)",
    ("simulation", "n_axons"): "axons modelled in the target nerve",
    ("simulation", "mesh_refinement"): "1 = verified default mesh; > 1 refines (convergence checks, slower)",
    ("simulation", "relief_endpoint"): "complete (default) | fifty_percent: the relief whose end is reported (docs/models/relief.md)",
    ("uncertainty", "samples"): "Monte Carlo over needle placement (or simulate --monte-carlo N)",
    ("uncertainty", "operator"): "experienced | in-training (placement spread from data/uncertainty.toml)",
    ("indication", "name"): "see `neurolysis indications`: the outcome carries its evidence and coverage",
}


def plan_toml(plan: Plan) -> str:
    """The plan as a commented TOML file (``neurolysis plan new``)."""
    lines = ["# Neurolysis Planner plan (research and education tool, not for clinical decisions)"]
    for section, values in plan.as_dict().items():
        if section == "indication" and not values:
            continue  # optional: written only when set
        if section == "needles":
            for needle in values:
                lines.append("\n[[needles]]")
                lines += [f"{key} = {toml_value(value)}" for key, value in needle.items()]
            continue
        lines.append(f"\n[{section}]")
        if section == "patient" and not values:
            lines.append("# weight_kg = 70")
            lines.append("# age_years = 60")
        for key, value in values.items():
            comment = field_comment(plan.procedure.method, key) if section == "procedure" and key != "method" else _COMMENTS.get((section, key))
            lines.append(f"{key} = {toml_value(value)}" + (f"    # {comment}" if comment else ""))
    return "\n".join(lines) + "\n"


def _scene_of(anatomy: AnatomySpec, target: str | None, base_dir: str):
    """The scene a new plan is written for: the template, or the segmentation with its target placed."""
    if anatomy.template is not None:
        return load_template(anatomy.template)
    if anatomy.segmentation is not None:
        return segmentation_scene(anatomy.segmentation, anatomy.names, anatomy.image, anatomy.side, target, anatomy.tissues, base_dir)
    raise ValidationError("plan new: give a template or a segmentation (label-map plans are written by hand: docs/planning.md)")


def plan_on(anatomy: AnatomySpec, target: str | Sequence[str] | None = None, approach: str = "parallel", method: str = "rf", base_dir: str = ".") -> Plan:
    """A plan on ``anatomy`` with the recommended placement for its target and the method's
    defaults (the template's, or those of the template of the same procedure for a segmentation).

    ``target``: one nerve (the single ``[placement]`` form), several (one ``[[needles]]`` table
    each), or None: the template's targets, as needles when it has several (the genicular
    procedure treats three nerves)."""
    wanted = (target,) if isinstance(target, str) else tuple(target) if target else ()
    scene = _scene_of(anatomy, wanted[0] if len(wanted) == 1 else (wanted or None), base_dir)
    if not wanted:
        wanted = template_session_targets(anatomy.template) if anatomy.template is not None else (scene.target,)
    for nerve in wanted:
        check_choice("target.nerve", nerve, [n.name for n in scene.nerves])
    check_choice("procedure.method", method, method_names())
    defaults_from = anatomy.template or scene.procedure_template
    values = METHODS[method].plan_new_values() | (template_procedure_defaults(defaults_from, method) if defaults_from else {})
    several = len(wanted) > 1
    return Plan(
        anatomy=anatomy,
        target=TargetSpec(nerve=wanted[0]),
        procedure=ProcedureSpec(method=method, **values),
        placement=PlacementSpec() if several else PlacementSpec(approach=approach),
        patient=PatientSpec(weight_kg=DEFAULT_BLOCK_WEIGHT_KG if method == "block" else None),
        needles=tuple(NeedleSpec(n, PlacementSpec(approach=approach)) for n in wanted) if several else (),
        base_dir=base_dir,
    )


def new_plan(template: str, target: str | Sequence[str] | None = None, approach: str = "parallel", method: str = "rf") -> Plan:
    """A plan with the template's recommended placement for its target (or its targets: a needle each)."""
    return plan_on(AnatomySpec(template=template), target, approach, method)


def new_segmentation_plan(segmentation, names=None, image: str | None = None, side: str | None = None, target: str | None = None,
                          approach: str = "parallel", method: str = "rf", tissues: dict | None = None, base_dir: str = ".") -> Plan:  # fmt: skip
    """A plan on a patient's segmentation: its target placed by the landmark rules (docs/models/anatomy.md 7)."""
    anatomy = AnatomySpec(template=None, segmentation=segmentation, names=names, image=image, side=side, tissues=tissues)
    return plan_on(anatomy, target, approach, method, base_dir)
