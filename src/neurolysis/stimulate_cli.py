"""The ``neurolysis stimulate`` command: the stimulation test of a plan's needle against its offset.

Every input is checked (one line, exit 2) before any solve, including that a figure can be written.
"""

from __future__ import annotations

import argparse
import sys
import time

from rich.console import Console
from rich.table import Table

from neurolysis.about import DISCLAIMER
from neurolysis.engines.stimulation import test_settings
from neurolysis.output import check_output_path, print_json
from neurolysis.planning.plan import load_plan
from neurolysis.planning.simulate import prepare
from neurolysis.planning.stimulate import check_pulse_ms, offset_scan, parse_offsets
from neurolysis.validation import ValidationError, check_range

DEFAULT_ALONG_MM = "0"
DEFAULT_ACROSS_MM = "0,1,2,3,5,7"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("plan", help="plan file (TOML) of an RF method (rf, cooled-rf, pulsed-rf)")
    p.add_argument("--pulse-ms", type=float, help="test pulse width, ms (default: data/stimulation.toml, 1 ms)")
    p.add_argument("--frequency-hz", type=float, help="reported with the thresholds (50 Hz sensory, 2 Hz motor by default); one pulse is modelled, so it does not change them")
    p.add_argument("--along-mm", default=DEFAULT_ALONG_MM, help=f"needle offsets along the nerve, mm, comma-separated (default {DEFAULT_ALONG_MM})")
    p.add_argument("--across-mm", default=DEFAULT_ACROSS_MM, help=f"needle offsets away from the nerve, mm, comma-separated (default {DEFAULT_ACROSS_MM})")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE", help="override a plan field (repeatable)")
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    p.add_argument("--plot", metavar="FILE.png", help="write thresholds against distance to the nerve")
    p.add_argument("--quiet", action="store_true", help="no messages on stderr")


def run(args: argparse.Namespace) -> int:
    pulse = check_pulse_ms(args.pulse_ms) if args.pulse_ms is not None else test_settings()["pulse_ms"]
    if args.frequency_hz is not None:
        check_range("frequency_hz", args.frequency_hz, 0.5, 200.0, unit="Hz")
    along, across = parse_offsets("along_mm", args.along_mm), parse_offsets("across_mm", args.across_mm)
    if args.plot:
        check_output_path("plot", args.plot)
    plan = load_plan(args.plan, args.set)
    if plan.procedure.method not in ("rf", "cooled-rf", "pulsed-rf"):
        raise ValidationError(f"procedure.method = {plan.procedure.method!r}: the stimulation test is modelled for the RF needles (rf, cooled-rf, pulsed-rf)")
    ctx = prepare(plan)
    if ctx.lesions:
        raise ValidationError("needles: the stimulation scan takes a plan with one needle; split a plan of several needles into one per needle")
    started = time.perf_counter()
    rows = offset_scan(ctx, along, across, pulse)
    t = test_settings()
    out = {
        "plan": args.plan,
        "target_nerve": ctx.nerve.name,
        "pulse_ms": pulse,
        "sensory_frequency_hz": args.frequency_hz or t["sensory_frequency_hz"],
        "motor_frequency_hz": args.frequency_hz or t["motor_frequency_hz"],
        "sensory_cutoff_v": t["sensory_cutoff_v"],
        "motor_multiple": t["motor_multiple"],
        "offsets": [r.as_dict() for r in rows],
        "model": "docs/models/stimulation.md: RF-engine field at 37 C, nerve sheath as a leaky cable, PyFibers thresholds computed ahead; no electrode-interface drop (volts are tissue-only)",
        "wall_time_s": round(time.perf_counter() - started, 3),
        "disclaimer": DISCLAIMER,
    }
    if args.plot:
        from neurolysis.report.stimulation_figure import plot_offsets  # matplotlib: only when a figure is asked for

        plot_offsets(out, args.plot)
    if args.json:
        return print_json(out)
    _print_table(out)
    return 0


def _print_table(out: dict) -> None:
    console = Console()
    table = Table(title=f"stimulation test at {out['target_nerve']} ({out['pulse_ms']:g} ms pulses; sensory cut-off {out['sensory_cutoff_v']:g} V)")
    for column in ("along mm", "across mm", "to nerve mm", "sensory V", "sensory mA", "motor V", "motor mA", "motor nerve", "verdict"):
        table.add_column(column, justify="right" if "mm" in column or column.endswith(("V", "mA")) else "left")
    for r in out["offsets"]:
        if r.get("in_bone"):
            table.add_row(f"{r['along_mm']:g}", f"{r['across_mm']:g}", "-", "-", "-", "-", "-", "-", "tip in bone")
            continue

        def fmt(v, digits=2):
            return "-" if v is None else f"{v:.{digits}f}"

        verdict = ("felt" if r["sensory_ok"] else "not felt below cut-off") + ("" if r["motor_ok"] else "; MOTOR twitch")
        table.add_row(f"{r['along_mm']:g}", f"{r['across_mm']:g}", fmt(r["distance_mm"], 1), fmt(r["sensory_threshold_v"]), fmt(r["sensory_threshold_ma"]),
                      fmt(r["motor_threshold_v"]), fmt(r["motor_threshold_ma"]), r["motor_nerve"] or "-", verdict)  # fmt: skip
    console.print(table)
    print(f"solved in {out['wall_time_s']:.1f} s. {DISCLAIMER}", file=sys.stderr)
