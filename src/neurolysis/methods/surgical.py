"""Surgical neurectomy in a plan (``surgical``): a segment of the nerve is cut out at the needle site.

Solved geometrically (:mod:`neurolysis.engines.surgical`): every axon through the excised
segment is cut (Sunderland 5).
"""

from __future__ import annotations

from neurolysis._catalog import load_catalog
from neurolysis.engines.surgical import plan_excision
from neurolysis.methods.base import Context, Method, PhysicsResult, PlanField
from neurolysis.validation import check_range

POSITION = 3

def _segment_limits(values) -> tuple[float, float]:
    return 0.0, float(load_catalog("surgery")["segment_max_mm"])


FIELDS = (PlanField("segment_mm", float, "length of nerve excised, mm", number=True, unit="mm", limits=_segment_limits, low_inclusive=False),)


def _check(procedure) -> None:
    segment_mm = METHODS[0].resolved(procedure)["segment_mm"]
    check_range("procedure.segment_mm", segment_mm, *_segment_limits({}), low_inclusive=False, unit="mm")


def _solve(ctx: Context) -> PhysicsResult:
    segment_mm = ctx.settings["segment_mm"]
    cut = plan_excision(ctx.nerve, ctx.pose.tip_m, segment_mm * 1e-3)
    warnings = []
    if cut.clipped:
        warnings.append(f"the {segment_mm:g} mm segment ran past an end of {ctx.nerve.name!r}: {1e3 * cut.removed_length_m:.1f} mm removed")
    return PhysicsResult(cut.sample, cut.lesion().as_dict(), cut.to_dict(), tuple(warnings), 0.0, "excised segment", engine=cut, moves_with_needle=False)


METHODS = (Method("surgical", "surgical", FIELDS, "surgical neurectomy", _check, _solve),)
