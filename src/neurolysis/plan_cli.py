"""``neurolysis plan new`` (write a plan file) and ``neurolysis simulate`` (solve one)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from neurolysis.about import DISCLAIMER
from neurolysis.console import deliver, progress_bar
from neurolysis.output import print_json
from neurolysis.planning.plan import load_plan, new_plan, new_segmentation_plan, plan_toml
from neurolysis.planning.simulate import prepare, solve
from neurolysis.report.outcome_table import print_outcome
from neurolysis.store import command as store_command
from neurolysis.validation import ValidationError


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    """``plan`` and its ``new`` subcommand."""
    new = parser.add_subparsers(dest="plan_command", required=True, parser_class=type(parser)).add_parser(
        "new", help="print a plan with the recommended placement on a template or a patient's segmentation (TOML, to stdout)"
    )
    where = new.add_mutually_exclusive_group(required=True)
    where.add_argument("--template", help="anatomy template (see `neurolysis templates`)")
    where.add_argument(
        "--segmentation", nargs="+", metavar="SEG", help="a patient's label map (NIfTI, NRRD, .seg.nrrd) or TotalSegmentator folder; more files add label layers (see `neurolysis anatomy inspect`)"
    )
    new.add_argument("--names", nargs="+", metavar="N", help="with --segmentation: totalsegmentator | totalsegmentator-mr | totalsegmentator:<task> | embedded | a table file; one, or one per file")
    new.add_argument("--image", metavar="IMG", help="with --segmentation: the CT or MR (NIfTI, NRRD or a DICOM folder) for figures and the viewer")
    new.add_argument("--side", choices=("left", "right"), help="with --segmentation: the side of the target nerve, where it matters")
    new.add_argument("--target", action="append", help="target nerve (default: the template's targets, one needle each; required with --segmentation); repeat for several needles")
    new.add_argument("--approach", default="parallel", help="parallel (default) or perpendicular")
    new.add_argument("--method", default="rf", help="rf (default), cooled-rf, pulsed-rf, chemical, cryo, surgical or block")


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``simulate``."""
    parser.add_argument("plan", help="plan file (TOML)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE", help="override a plan field, e.g. placement.offset_mm=[3,0,0] (repeatable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    parser.add_argument("--plot", metavar="FILE.png", help="write slices through the needle with anatomy, lesion and nerves, and the axon map")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--override-max-dose", action="store_true", help="block: simulate a dose over the agent's maximum (warned in every output)")
    parser.add_argument("--monte-carlo", type=int, metavar="N", help="add an uncertainty section: N needle poses drawn from the published placement accuracy (sets uncertainty.samples)")
    parser.add_argument("--check", action="store_true", help="validate the plan (fields, anatomy, target, placement) and print the resolved plan, without solving")
    store_command.add_save_arguments(parser)


def run_plan(args: argparse.Namespace) -> int:
    """``neurolysis plan new``: print a plan with the recommended placement."""
    if args.segmentation is None:
        for option in ("names", "image", "side"):
            if getattr(args, option) is not None:
                raise ValidationError(f"plan new --{option}: only used with --segmentation")
        plan = new_plan(args.template, args.target, args.approach, args.method)
    else:
        plan = new_segmentation_plan(args.segmentation, args.names, args.image, args.side, args.target, args.approach, args.method)
    sys.stdout.write(plan_toml(plan))
    return 0


def run_simulate(args: argparse.Namespace) -> int:
    """``neurolysis simulate PLAN``: check, solve and answer (table, JSON, figure; --save to the case store)."""
    extra = [*(["procedure.override_max_dose=true"] if args.override_max_dose else []), *([f"uncertainty.samples={args.monte_carlo}"] if args.monte_carlo is not None else [])]
    plan = load_plan(args.plan, [*args.set, *extra])
    progress, callback = progress_bar(not args.quiet and sys.stderr.isatty())
    context = prepare(plan, progress=callback)  # anatomy, target and placement checked before the solve
    store_command.check_save(args)  # --save: the store opens and holds --parent, before the solve
    if args.check:
        if args.json:
            return print_json({"valid": True, "settings": plan.as_dict(), "disclaimer": DISCLAIMER})
        print(f"neurolysis: plan {args.plan} is valid (method {plan.procedure.method}); not solved (--check)")
        return 0
    with progress:
        outcome = solve(context)
    if not args.quiet:
        print(f"neurolysis: solved in {outcome.wall_time_s:.1f} s", file=sys.stderr)
        for warning in outcome.warnings:
            print(f"neurolysis: warning: {warning}", file=sys.stderr)
    plot = None
    if args.plot:
        from neurolysis.report.anatomy_figures import plot_outcome as plot  # matplotlib: only when a figure is asked for
    status = deliver(args, outcome, plot, print_outcome)
    if getattr(args, "save", False):
        store_command.save_simulated(args, Path(args.plan).read_text(encoding="utf-8"), outcome)
    return status


__all__ = ["add_plan_arguments", "add_simulate_arguments", "run_plan", "run_simulate"]
