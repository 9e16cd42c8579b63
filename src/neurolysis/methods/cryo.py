"""Cryoneurolysis in a plan (``cryo``): a cryoprobe's ice ball, grown and thawed by a freeze-thaw protocol.

Solved by the 3D enthalpy engine (:mod:`neurolysis.engines.cryo`). The method reads the
nerve outcome into its section: the frozen and lethal length of nerve against the
published minimum.
"""

from __future__ import annotations

from collections.abc import Sequence

from neurolysis.cryoprobes import MAX_PHASE_S, MIN_PHASE_S, all_cryoprobes, check_cycles, cryoprobe, default_cycles, minimum_lesion_length_m
from neurolysis.engines.cryo import DEFAULT_MESH, simulate_cryo
from neurolysis.methods.base import Context, Method, PhysicsResult, PlanField, centreline_length_m, prefixed
from neurolysis.outcome.axons import NerveOutcome
from neurolysis.validation import check_choice

POSITION = 2

FIELDS = (
    PlanField("probe", str, "see docs/models/cryo.md (catalog: data/cryoprobes.toml)"),
    PlanField("cycles", tuple[tuple[str, float], ...], "freeze-thaw protocol, seconds", normalise=lambda cycles: tuple(tuple(c) for c in check_cycles(cycles)),
              unit="s (each phase)", limits=lambda v: (MIN_PHASE_S, MAX_PHASE_S)),
)


def _defaults() -> dict:
    """The catalog's default probe and protocol (``data/cryoprobes.toml``)."""
    return {"probe": cryoprobe(None).id, "cycles": [list(c) for c in default_cycles()]}


def _check(procedure) -> None:
    if procedure.probe is not None:
        check_choice("procedure.probe", procedure.probe, sorted(all_cryoprobes()))
    prefixed(lambda: check_cycles(procedure.cycles))


def _solve(ctx: Context) -> PhysicsResult:
    probe = cryoprobe(ctx.settings["probe"])
    result = simulate_cryo(probe.id, ctx.settings["cycles"], ctx.pose, ctx.scene, mesh=ctx.refined(DEFAULT_MESH), progress=ctx.progress)
    return PhysicsResult(
        sample=result.sample,
        lesion=result.lethal_zone.as_dict(),
        section={k: v for k, v in result.to_dict().items() if k not in ("warnings", "disclaimer")},
        warnings=tuple(result.warnings),
        active_length_m=probe.active_length_m,
        lethal_label=f"lethal zone (min T ≤ {result.lethal_isotherm_c:g} °C)",
        contours=((lambda pts: -result.min_temp_c_at(pts), -result.ice_edge_c, "deepskyblue", "--", f"ice ball edge ({result.ice_edge_c:g} °C, deepest)"),),
        engine=result,
    )


def _read_outcome(ctx: Context, physics: PhysicsResult, stages: Sequence[NerveOutcome]) -> tuple[dict, tuple[str, ...]]:
    """Frozen and lethal nerve length against the published minimum."""
    result, target = physics.engine, stages[-1]
    frozen_mm = 1e3 * centreline_length_m(ctx.nerve, lambda pts: result.min_temp_c_at(pts) <= result.ice_edge_c)
    minimum_mm = 1e3 * minimum_lesion_length_m()
    nerve = {
        "frozen_length_mm": frozen_mm,
        "lethal_length_mm": target.lesioned_length_mm,
        "minimum_length_mm": minimum_mm,
        "meets_minimum_length": target.lesioned_length_mm >= minimum_mm,
        "note": f"frozen = centerline at or below the ice edge ({result.ice_edge_c:g} C); lethal = lesioned length at or below {result.lethal_isotherm_c:g} C; "
                f"the published minimum frozen length along the nerve is {minimum_mm:g} mm (literature.md E)",
    }  # fmt: skip
    warnings = ()
    if target.lesioned_length_mm < minimum_mm:
        warnings = (f"lethal nerve length {target.lesioned_length_mm:.1f} mm is below the published minimum {minimum_mm:g} mm for cryoneurolysis: relief may be short or absent",)
    return {"nerve": nerve}, warnings


def _needle_length(settings) -> float:
    return cryoprobe(settings["probe"]).active_length_m


METHODS = (
    Method(
        "cryo", "cryo", FIELDS, "cryoneurolysis", _check, _solve, needle_length_m=_needle_length, read_outcome=_read_outcome,
        defaults=_defaults, choices={"probe": lambda: sorted(all_cryoprobes())},
    ),
)  # fmt: skip
