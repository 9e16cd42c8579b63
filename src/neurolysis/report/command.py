"""``neurolysis report PLAN.toml -o report.html [--monte-carlo N] [--compare]``: the HTML report.

The output path and the plan (anatomy, target, placement, settings) are checked before any
solve; a bad one is a ValidationError (one line, exit 2 from ``neurolysis.cli``).
"""

from __future__ import annotations

import argparse
import sys

from neurolysis.compare import compare_methods
from neurolysis.output import check_output_path
from neurolysis.planning.plan import load_plan
from neurolysis.planning.simulate import prepare, solve
from neurolysis.report.html import build_report, write_report
from neurolysis.validation import ValidationError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``report`` subcommand's arguments."""
    parser.add_argument("plan", help="plan file (TOML)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE.html", help="the report: one self-contained HTML file (written atomically)")
    parser.add_argument("--monte-carlo", type=int, metavar="N", help="add the uncertainty section: N needle poses drawn from the published placement accuracy (sets uncertainty.samples)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE", help="override a plan field (repeatable)")
    parser.add_argument("--compare", action="store_true", help="add the method comparison (simulates every method at the plan's target: slower)")
    parser.add_argument("--horizon-months", type=float, default=12.0, help="horizon of the method comparison (default 12)")
    parser.add_argument("--quiet", action="store_true", help="no messages on stderr")


def _comparison(plan, samples: int | None, horizon_months: float) -> dict:
    return compare_methods(plan.anatomy.template, plan.target.nerve, horizon_months=horizon_months, samples=samples, base=plan)


def run(args: argparse.Namespace) -> int:
    """Check the output path and the plan, solve, build the report, write it; 0 on success."""
    check_output_path(args.output)
    extra = [f"uncertainty.samples={args.monte_carlo}"] if args.monte_carlo is not None else []
    plan = load_plan(args.plan, [*args.set, *extra])
    if args.compare and plan.anatomy.template is None and plan.anatomy.segmentation is None:
        raise ValidationError("compare: the method comparison needs a plan on an anatomy template or a segmentation, not a label map")
    context = prepare(plan)  # anatomy, target, placement and settings checked before the solve
    outcome = solve(context)
    comparison = _comparison(plan, args.monte_carlo, args.horizon_months) if args.compare else None

    path = write_report(build_report(outcome, comparison=comparison), args.output)
    if not args.quiet:
        print(f"neurolysis: solved in {outcome.wall_time_s:.1f} s; report written to {path}", file=sys.stderr)
    return 0


__all__ = ["add_arguments", "run"]
