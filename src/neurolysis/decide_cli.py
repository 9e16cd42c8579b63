"""The ``neurolysis compare`` and ``neurolysis optimize`` commands (arguments, checks, output).

Every input is checked (one line, exit 2) before any solve, including that an output path
can be written.
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from neurolysis.about import DISCLAIMER
from neurolysis.compare import compare_methods
from neurolysis.optimize import optimize_plan, search_space
from neurolysis.output import check_output_path, print_json, write_text_atomic
from neurolysis.planning.plan import load_plan, plan_from_dict, plan_toml
from neurolysis.validation import ValidationError, check_range


def _fmt_relief(r: dict | None) -> str:
    if not r or r.get("median") is None:
        return "-"
    return f"{r['median']:.1f} ({r['p10']:.1f}-{r['p90']:.1f})"


# ------------------------------------------------------------------ compare


def add_compare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("plan", nargs="?", help="a plan file: compare every method at its target, placement and patient (else --template)")
    p.add_argument("--template", help="anatomy template (see `neurolysis templates`)")
    p.add_argument("--target", help="target nerve (default: the template's target)")
    p.add_argument("--horizon-months", type=float, default=12.0, help="procedures needed to cover this many months (default 12)")
    p.add_argument("--monte-carlo", type=int, metavar="N", help="P(block), relief and P(injury) over N needle poses drawn from the published placement accuracy")
    p.add_argument("--methods", metavar="M1,M2", help="compare only these methods (comma-separated; default: all)")
    p.add_argument("--all", action="store_true", help="also simulate the methods that do not apply (listed with their reason either way)")
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    p.add_argument("--report", metavar="FILE.html", help="also write an HTML report of the first applicable method's plan with this comparison")
    p.add_argument("--workers", type=int, default=1, help="solve the methods in this many processes at once (default 1; 2 on a 2-core machine halves the wait; not with --report)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def run_compare(args: argparse.Namespace) -> int:
    if (args.plan is None) == (args.template is None):
        raise ValidationError("compare: give either a plan file or --template (not both)")
    if args.report:
        check_output_path(args.report, "--report")
    base = load_plan(args.plan) if args.plan else None
    template = base.anatomy.template if base is not None else args.template
    if base is not None and template is None and base.anatomy.segmentation is None:
        raise ValidationError(f"compare {args.plan}: the plan's anatomy is a label map; compare needs a template or a segmentation")
    target = args.target or (base.target.nerve if base is not None else None)

    def progress(method: str, fraction: float) -> None:
        if not args.quiet:
            print(f"neurolysis: compare: simulating {method} ({fraction:.0%} done)", file=sys.stderr)

    if args.report and args.workers > 1:
        raise ValidationError(f"--workers = {args.workers}: with --report the methods are solved in this process (the report draws their fields); drop one")
    outcomes: dict | None = {} if args.report else None
    result = compare_methods(template, target, horizon_months=args.horizon_months, samples=args.monte_carlo, base=base,
                             simulate_all=args.all, methods=None if args.methods is None else tuple(m.strip() for m in args.methods.split(",")),
                             progress=progress, outcomes=outcomes, workers=args.workers)  # fmt: skip
    if args.report:
        first = next(e["method"] for e in result["methods"] if e["applicable"] and e["method"] in outcomes)
        from neurolysis.report.html import build_report, write_report  # Jinja2 and matplotlib: only when a report is written

        write_report(build_report(outcomes[first], comparison=result), args.report)
        if not args.quiet:
            print(f"neurolysis: report written to {args.report}", file=sys.stderr)
    if args.json:
        return print_json(result)
    print_comparison(result)
    return 0


def print_comparison(result: dict) -> None:
    """The comparison as a table on stdout."""
    console = Console()
    console.print(f"[bold]Methods at the {result['target']}[/bold] ({result['template']}; horizon {result['horizon_months']:g} months"
                  f"{'; ' + str(result['samples']) + ' placement samples' if result['samples'] else '; planned pose only, add --monte-carlo N for P(block) over placements'})")  # fmt: skip
    table = Table("method", "applies", "P(block)", "relief, months", f"procedures / {result['horizon_months']:g} mo", "motor deficit", "worst P(injury)", "burden", "s")
    table.columns[0].no_wrap = True
    for e in result["methods"]:
        burden = e.get("burden") or {}
        injured = [c["name"] for c in e["critical"] if c["injured"]]
        worst = "-" if e["worst_p_injury"] is None else f"{e['worst_p_injury']:.2f}" + (f" ({', '.join(injured)})" if injured else "")
        table.add_row(
            e["method"], "yes" if e["applicable"] else f"no: {e['reason']}", "-" if e["p_block"] is None else f"{e['p_block']:.2f}",
            _fmt_relief(e["relief_months"]), "-" if e["procedures_needed"] is None else str(e["procedures_needed"]),
            "-" if e["motor_deficit"] is None else ("yes" if e["motor_deficit"] else "no"), worst,
            "; ".join(str(burden[k]) for k in ("effect_class", "setting", "anaesthesia") if burden.get(k)) or "-", f"{e['wall_time_s']:.0f}",
        )  # fmt: skip
    console.print(table)
    console.print(DISCLAIMER)


# ------------------------------------------------------------------ optimize


def add_optimize_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("plan", help="plan file (TOML): rf, cooled-rf, chemical or cryo")
    p.add_argument("--max-risk", type=float, default=0.01, help="largest P(injury) allowed for any critical structure (0-1, default 0.01)")
    p.add_argument("--budget", type=int, help="evaluations in all (default from data/optimize.toml)")
    p.add_argument("--full-solves", type=int, help="of the evaluations, how many are solved in full; the others move a solved field (placement only; default from data/optimize.toml)")
    p.add_argument("--samples", type=int, help="placement samples per evaluation (default from data/optimize.toml)")
    p.add_argument("-o", "--output", metavar="BEST.toml", help="write the best plan as a plan file")
    p.add_argument("--plot", metavar="FILE.png", help="write the trade-off figure: P(block) against the worst P(injury)")
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def run_optimize(args: argparse.Namespace) -> int:
    check_range("--max-risk", args.max_risk, 0.0, 1.0)
    if args.samples is not None and not 8 <= args.samples <= 2000:
        raise ValidationError(f"--samples = {args.samples}: must be a whole number in [8, 2000]")
    for path, flag in ((args.output, "--output"), (args.plot, "--plot")):
        if path:
            check_output_path(path, flag)
    plan = load_plan(args.plan)
    search_space(plan)  # refuses a method without a lesion to place, before any solve

    def progress(k: int, budget: int, e) -> None:
        if not args.quiet:
            print(f"neurolysis: optimize: evaluation {k}/{budget} ({e.solve}): P(block) {e.p_block:.2f}, relief {e.relief_median_months:.1f} months, worst P(injury) {e.worst_p_injury:.3f}", file=sys.stderr)

    result = optimize_plan(plan, max_risk=args.max_risk, budget=args.budget, samples=args.samples, progress=progress, full_solves=args.full_solves)
    if args.output:
        write_text_atomic(plan_toml(plan_from_dict(result["best_plan"])), args.output, "--output")
    if args.plot:
        from neurolysis.report.decision_figures import plot_front  # matplotlib: only when a figure is asked for

        plot_front(result, args.plot)
    if args.json:
        return print_json(result)
    console = Console()
    b, base = result["best"], result["baseline"]
    console.print(f"[bold]optimize[/bold] {args.plan}: {result['n_evaluations']} evaluations ({result['n_full_solves']} solved in full) in {result['wall_time_s']:.0f} s, limit P(injury) <= {result['max_risk']:g}")
    table = Table("", "P(block)", "relief median, months", "worst P(injury)", "settings and placement")
    for label, e in (("plan as given", base), ("best found", b)):
        table.add_row(label, f"{e['p_block']:.3f}", f"{e['relief_median_months']:.1f}", f"{e['worst_p_injury']:.3f}" + (f" ({e['worst_structure']})" if e["worst_structure"] else ""),
                      ", ".join(f"{k} {v:g}" for k, v in e["values"].items()))  # fmt: skip
    console.print(table)
    if not b.get("feasible", True):
        console.print("[bold red]no evaluation met the risk limit[/bold red]: the best shown exceeds it")
    console.print(f"trade-off front: {len(result['front'])} plans" + (f"; best plan written to {args.output}" if args.output else "; -o BEST.toml writes the best plan"))
    console.print(DISCLAIMER)
    return 0
