"""What every method declares and what its solve hands on: the typed base of the method registry.

A method module (one per ``procedure.method`` family) declares its :class:`Method` records:
its ``[procedure]`` fields (:class:`PlanField`), their checks and defaults, and
``solve(context) -> PhysicsResult``. The solve does physics only; the nerve outcome and the
critical-structure risk are computed from the :class:`PhysicsResult` in one place for every
method (:mod:`neurolysis.outcome.assess`), and a method may then read that outcome into its
own JSON section (``Method.read_outcome``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from neurolysis._catalog import load_catalog
from neurolysis.anatomy.centreline import nerve_frame
from neurolysis.anatomy.scene import Nerve, Scene
from neurolysis.engines.rf.settings import RFSettings
from neurolysis.fields import FieldSample, FieldSampler, NeedlePose
from neurolysis.outcome.relief import Relief
from neurolysis.validation import ValidationError

if TYPE_CHECKING:  # the plan layer imports the registry, so the plan type is named only for annotations
    from neurolysis.outcome.axons import NerveOutcome
    from neurolysis.planning.plan import Plan

RISK_MARGIN_M = 25e-3
"""Critical structures are sampled within this distance of the tip (m) by default
(``PhysicsResult.risk_margin_m``); farther than that the RF field is at body temperature
(the 3D mesh verifies this). Chemical plans widen it with the bolus."""
VIEW_HALF_WIDTH_M = 15e-3
"""Half-width of the figure slices (m) unless a method needs more (a large bolus)."""
INJECTION_NEEDLE_M = 1e-3
"""Length of a bare injection needle's tip checked against bone (the bevel, ~1 mm)."""


@dataclass(frozen=True)
class PlanField:
    """One ``[procedure]`` field of a method: its name (with its unit), value type, whether
    it must be a number, the comment ``neurolysis plan new`` writes beside it, and how a
    checked value is stored (``normalise``, e.g. a TOML list as a tuple).

    ``unit`` is the user-facing unit; ``limits(values)`` the (low, high) the method's check
    accepts, given the resolved ``[procedure]`` values (a concentration's limit depends on the
    agent); it names the same constants or catalog entries the check reads, and a test holds the
    two together. ``low_inclusive``: whether ``low`` itself is accepted (high always is)."""

    name: str
    type: Any
    comment: str = ""
    number: bool = False
    normalise: Callable[[Any], Any] | None = None
    unit: str = ""
    limits: Callable[[Mapping[str, Any]], tuple[float, float]] | None = None
    low_inclusive: bool = True


@dataclass(frozen=True)
class Context:
    """What a solver gets: the plan, its scene, target nerve and needle pose, and the method's
    settings as ``prepare`` resolved them (``RFSettings`` for RF, else the fields with defaults);
    ``tissue_factors``: a property spread to apply to every tissue (RF methods read it).
    ``lesions``: a plan with several needles has one context per lesion (its own target, pose and
    settings; the first is this context's own); () for one needle. ``partner``: the second needle
    of a bipolar pair (its lesion is one, made by both needles; ``pose`` is the first's)."""

    plan: Plan
    scene: Scene
    nerve: Nerve
    pose: NeedlePose
    settings: RFSettings | Mapping[str, Any]
    progress: Callable[[float], None] | None = None
    tissue_factors: Mapping[str, float] | None = None
    lesions: tuple[Context, ...] = ()
    partner: NeedlePose | None = None

    def refined(self, mesh):
        """The mesh spec divided by the plan's ``simulation.mesh_refinement``."""
        r = self.plan.simulation.mesh_refinement
        return mesh if r == 1.0 else mesh.refined(r)


class EngineResult(Protocol):
    """What every engine's result offers (``RF3DResult``, ``ChemicalResult``, ``CryoResult``,
    ``Excision``): its fields at points of the anatomy frame."""

    def sample(self, points_m: np.ndarray) -> FieldSample: ...


Contour = tuple[Callable[[np.ndarray], np.ndarray], float, str, str, str]
"""A figure isoline: (values at points (n, 3), level, colour, line style, legend label)."""


@dataclass(frozen=True, eq=False)
class PhysicsResult:
    """What a method's solve hands to the outcome layer (physics only).

    ``sample``: the field sampler (anatomy frame, m) for the nerve and risk models;
    ``lesion``: the JSON ``lesion`` (LesionShape keys); ``section``: the method's own JSON
    section; ``active_length_m``: the needle's active (or freezing) length for figures (0
    without a needle); ``contours``: extra figure isolines ``(values_at(points), level,
    colour, linestyle, label)``; ``engine``: the engine's own result;
    ``risk_margin_m``/``risk_spacing_m``: half-size of the box around the tip in which
    critical structures are sampled, and its grid spacing (beyond it the method's fields are
    undisturbed); ``view_half_width_m``: half-width of the figure slices;
    ``stage_samplers``: the fields after each earlier stage (injections before the last),
    whose nerve outcomes the method reads; ``reversible_relief``: a temporary conduction
    block's duration (a nerve block destroys nothing, so relief does not come from regrowth);
    ``moves_with_needle``: the fields sit in the needle's frame, so a placement cohort can move
    them with it (False for surgery and the block); ``parts``: with several needles, each lesion's
    own result (this one's ``sample`` combines them).
    """

    sample: FieldSampler
    lesion: dict
    section: dict
    warnings: tuple[str, ...]
    active_length_m: float
    lethal_label: str
    contours: tuple[Contour, ...] = ()
    engine: EngineResult | None = field(default=None, repr=False)
    risk_margin_m: float = RISK_MARGIN_M
    risk_spacing_m: float = 0.5e-3
    view_half_width_m: float = VIEW_HALF_WIDTH_M
    stage_samplers: tuple[FieldSampler, ...] = ()
    reversible_relief: Relief | None = None
    moves_with_needle: bool = True
    parts: tuple[PhysicsResult, ...] = ()  # several needles: each lesion's own result (this one combines them)


OutcomeReader = Callable[[Context, PhysicsResult, Sequence["NerveOutcome"]], tuple[dict, tuple[str, ...]]]
"""(context, physics, nerve outcome after each stage, the last is the target's) -> (keys
added to the method's JSON section, warnings)."""


def catalog_defaults(method: str) -> dict:
    """A method's ``[procedure]`` defaults from ``data/plan_defaults.toml`` (sources left out)."""
    return {k: v for k, v in load_catalog("plan_defaults").get(method, {}).items() if k != "sources"}


@dataclass(frozen=True)
class Method:
    """One plan method: its JSON section, fields, checks, defaults and solver.

    ``check(procedure)`` validates the method's own fields (one-line ``ValidationError``);
    ``check_plan(plan)`` what needs more than ``[procedure]``; ``needle_length_m(settings)``
    the active length checked against bone (None: no needle); ``defaults()`` the values of
    fields left out (default: ``data/plan_defaults.toml``); ``new_plan_values()`` what
    ``neurolysis plan new`` writes (default: the defaults); ``resolve(plan, scene, pose)`` the
    settings a solve gets (default: the fields with defaults filled in, :func:`resolved`);
    ``choices`` the catalogued values a text field accepts.
    """

    name: str
    section: str
    fields: tuple[PlanField, ...]
    description: str
    check: Callable[[Any], None]
    solve: Callable[[Context], PhysicsResult]
    check_plan: Callable[[Plan], None] | None = None
    needle_length_m: Callable[[Any], float] | None = None
    read_outcome: OutcomeReader | None = None
    defaults: Callable[[], dict] | None = None
    choices: Mapping[str, Callable[[], list[str]]] = field(default_factory=dict)
    resolve: Callable[[Plan, Scene, NeedlePose], Any] | None = None
    new_plan_values: Callable[[], dict] | None = None

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def default_values(self) -> dict:
        return self.defaults() if self.defaults is not None else catalog_defaults(self.name)

    def resolved(self, procedure) -> dict:
        """The method's ``[procedure]`` fields with the defaults filled in."""
        out = self.default_values()
        for name in self.field_names:
            value = getattr(procedure, name)
            if value is not None:
                out[name] = list(value) if isinstance(value, tuple) else value
        return out

    def settings_for(self, plan: Plan, scene: Scene, pose: NeedlePose):
        """What ``solve`` gets as ``Context.settings``."""
        return self.resolve(plan, scene, pose) if self.resolve is not None else self.resolved(plan.procedure)

    def plan_new_values(self) -> dict:
        return self.new_plan_values() if self.new_plan_values is not None else self.default_values()


def prefixed(check: Callable[[], object]):
    """Run a library check and name the plan field in its error (``procedure.<field>``)."""
    try:
        return check()
    except ValidationError as error:
        text = str(error)
        raise ValidationError(text if text.startswith("procedure.") else f"procedure.{text}") from None


def injection_needle(settings) -> float:
    """The bare injection needle's tip length (m) checked against bone."""
    return INJECTION_NEEDLE_M


def centreline_length_m(nerve: Nerve, inside: Callable[[np.ndarray], np.ndarray], step_m: float = 0.1e-3, ring_m: float = 0.0, points: int = 12) -> float:
    """Length (m) of the nerve along which ``inside(points)`` holds (to one step): on its
    centreline, or with ``ring_m`` > 0 at some point of a ring of ``points`` points at that
    distance from the centreline."""
    frame = nerve_frame(nerve.centerline_m, step_m)
    if ring_m <= 0.0:
        return float(np.count_nonzero(inside(frame.points_m)) * frame.ds_m)
    angle = np.linspace(0.0, 2.0 * np.pi, points, endpoint=False)
    ring = frame.offset_points(ring_m * np.cos(angle), ring_m * np.sin(angle))
    hit = np.asarray(inside(ring.reshape(-1, 3)), bool).reshape(ring.shape[:2]).any(axis=1)
    return float(np.count_nonzero(hit) * frame.ds_m)
