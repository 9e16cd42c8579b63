"""The plan file: what to simulate, validated in full before any computation.

A plan is TOML with the sections ``[anatomy]``, ``[target]``, ``[procedure]``,
``[placement]``, ``[patient]``, ``[simulation]`` and the optional ``[uncertainty]`` and
``[indication]``; field names carry their units (``tip_mm``, ``time_s``). Unknown sections or fields are errors (a typo must never be
silently ignored). ``--set section.field=value`` overrides any field; the value is read as
a TOML value (``3``, ``[3, 0, 0]``, ``"genicular"``) or else taken as a bare string.
"""

from __future__ import annotations

import math
import sys
import tomllib
from dataclasses import asdict, dataclass, field, fields, make_dataclass, replace
from pathlib import Path

from neurolysis.anatomy.imaging import segmentation_scene
from neurolysis.anatomy.scene import APPROACHES
from neurolysis.anatomy.templates import load_template, template_procedure_defaults
from neurolysis.chemistry import WEIGHT_RANGE_KG
from neurolysis.indications import load_indication
from neurolysis.methods import METHODS, check_plan, check_procedure, field_comment, method_names, procedure_fields
from neurolysis.outcome.relief import AGE_RANGE_YEARS
from neurolysis.outcome.spread import check_uncertainty
from neurolysis.planning.anatomy_spec import AnatomySpec
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
``interval_h``, ``rate_ml_per_min``; cryo ``probe`` and ``cycles`` (pairs ``["freeze", 90]``,
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

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValidationError(f"simulation.seed = {self.seed!r}: must be a whole number >= 0")
        if self.seed > SEED_MAX:
            raise ValidationError(f"simulation.seed = {self.seed}: must be a whole number from 0 to {SEED_MAX}")
        if isinstance(self.n_axons, bool) or not isinstance(self.n_axons, int):
            raise ValidationError(f"simulation.n_axons = {self.n_axons!r}: must be a whole number")
        check_range("simulation.n_axons", self.n_axons, 100, 100_000)
        check_range("simulation.mesh_refinement", self.mesh_refinement, 0.5, 2.5)


@dataclass(frozen=True)
class UncertaintySpec:
    """The Monte Carlo cohort over needle placement (``neurolysis.outcome.uncertainty``):
    ``samples`` poses (left out: no cohort; ``simulate --monte-carlo N`` sets it), drawn with ``seed``
    (default: ``simulation.seed``) from the target's published accuracy scaled by the
    ``operator`` preset, unless ``offset_sd_mm`` (one SD or [x, y, z], mm), ``angle_sd_deg``
    or ``gross_miss_fraction`` are given (``data/uncertainty.toml`` says where each comes from).
    ``full_solves``: that many samples are solved in full (slow) and compared with the shortcut.
    ``conductivity_sd_ln``, ``perfusion_sd_ln``: SD of the log of factors on every tissue's
    electrical conductivity and perfusion (RF methods), solved at ``property_solves`` strata.
    ``anchors``: that many sample poses are solved in full as well, and every sample is moved
    from the nearest solved pose (near bone, where one rigid move from the plan is inexact)."""

    samples: int | None = None
    seed: int | None = None
    operator: str = "experienced"
    offset_sd_mm: float | tuple[float, float, float] | None = None
    angle_sd_deg: float | None = None
    gross_miss_fraction: float | None = None
    full_solves: int = 0
    conductivity_sd_ln: float = 0.0
    perfusion_sd_ln: float = 0.0
    property_solves: int = 4
    anchors: int = 0

    def __post_init__(self) -> None:
        for name, high in (("full_solves", 1000), ("property_solves", 16), ("anchors", 32)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValidationError(f"uncertainty.{name} = {value!r}: must be a whole number in [{int(name == 'property_solves')}, {high}]")
            check_range(f"uncertainty.{name}", value, int(name == "property_solves"), high)
        check_range("uncertainty.conductivity_sd_ln", self.conductivity_sd_ln, 0.0, 1.0)
        check_range("uncertainty.perfusion_sd_ln", self.perfusion_sd_ln, 0.0, 1.0)
        if self.anchors and (self.conductivity_sd_ln or self.perfusion_sd_ln):
            raise ValidationError(f"uncertainty.anchors = {self.anchors}: not combined with a property spread (conductivity_sd_ln, perfusion_sd_ln); use one or the other")
        if isinstance(self.offset_sd_mm, list):
            object.__setattr__(self, "offset_sd_mm", tuple(self.offset_sd_mm))
        check_uncertainty(self.samples, self.seed, self.operator, self.offset_sd_mm, self.angle_sd_deg, self.gross_miss_fraction)


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
    base_dir: str = "."

    def __post_init__(self) -> None:
        check_plan(self)

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
            values = asdict(getattr(self, name))
            out[name] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items() if v is not None}
        return out

    def with_(self, **sections) -> Plan:
        return replace(self, **sections)


def plan_from_dict(data: dict, base_dir: str = ".") -> Plan:
    """Validate nested sections (as read from TOML) into a :class:`Plan`."""
    if not isinstance(data, dict):
        raise ValidationError(f"plan = {data!r}: must be a table of sections")
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:
        raise ValidationError(f"plan section [{shown(unknown[0])}]: unknown; allowed sections are {', '.join(_SECTIONS)}")
    for name in _SECTIONS:
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
    return Plan(**sections, base_dir=base_dir)


def parse_override(text: str) -> tuple[str, str, object]:
    """``section.field=value`` -> (section, field, value); the value is read as TOML."""
    key, sep, raw = text.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot or not name:
        raise ValidationError(f"--set {text!r}: must be section.field=value, e.g. placement.offset_mm=[3,0,0]")
    if section not in _SECTIONS:
        raise ValidationError(f"--set {text!r}: unknown section {section!r}; allowed sections are {', '.join(_SECTIONS)}")
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


def plan_on(anatomy: AnatomySpec, target: str | None = None, approach: str = "parallel", method: str = "rf", base_dir: str = ".") -> Plan:
    """A plan on ``anatomy`` with the recommended placement for its target and the method's
    defaults (the template's, or those of the template of the same procedure for a segmentation)."""
    scene = _scene_of(anatomy, target, base_dir)
    nerve = target or scene.target
    check_choice("target.nerve", nerve, [n.name for n in scene.nerves])
    check_choice("procedure.method", method, method_names())
    defaults_from = anatomy.template or scene.procedure_template
    values = METHODS[method].plan_new_values() | (template_procedure_defaults(defaults_from, method) if defaults_from else {})
    return Plan(
        anatomy=anatomy,
        target=TargetSpec(nerve=nerve),
        procedure=ProcedureSpec(method=method, **values),
        placement=PlacementSpec(approach=approach),
        patient=PatientSpec(weight_kg=DEFAULT_BLOCK_WEIGHT_KG if method == "block" else None),
        base_dir=base_dir,
    )


def new_plan(template: str, target: str | None = None, approach: str = "parallel", method: str = "rf") -> Plan:
    """A plan with the template's recommended placement for its target."""
    return plan_on(AnatomySpec(template=template), target, approach, method)


def new_segmentation_plan(segmentation, names=None, image: str | None = None, side: str | None = None, target: str | None = None,
                          approach: str = "parallel", method: str = "rf", tissues: dict | None = None, base_dir: str = ".") -> Plan:  # fmt: skip
    """A plan on a patient's segmentation: its target placed by the landmark rules (docs/models/anatomy.md 7)."""
    anatomy = AnatomySpec(template=None, segmentation=segmentation, names=names, image=image, side=side, tissues=tissues)
    return plan_on(anatomy, target, approach, method, base_dir)
