"""The ``neurolysis`` commands: parses arguments, calls the library, formats the answer
(:mod:`neurolysis.cli` is the entry point; it imports this module only when a command runs).

User errors print one line ``neurolysis: error: <field> = <value>: <allowed>`` to stderr
and exit with status 2, before any computation.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from neurolysis import decide_cli, indications, stimulate_cli
from neurolysis import devices as device_catalog
from neurolysis._catalog import load_catalog
from neurolysis.about import DISCLAIMER
from neurolysis.anatomy.imaging import command as anatomy_command
from neurolysis.cli import COMMANDS, EXIT_USAGE, _Parser
from neurolysis.engines.rf.engine2d import RFResult, simulate_rf
from neurolysis.engines.rf.engine3d import DEFAULT_SPACING_MM, bipolar_pair
from neurolysis.engines.rf.settings import RFSettings, setting_types
from neurolysis.listing import add_arguments as listing_arguments
from neurolysis.listing import listing, run_templates
from neurolysis.methods import method_names, method_summary
from neurolysis.output import print_json
from neurolysis.planning.plan import load_plan, new_plan, new_segmentation_plan, plan_toml
from neurolysis.planning.simulate import prepare, solve
from neurolysis.report import command as report_command
from neurolysis.report.outcome_table import print_outcome
from neurolysis.store import command as store_command
from neurolysis.sweep import command as sweep_command
from neurolysis.tissue import load_tissue, tissue_ids
from neurolysis.validation import ValidationError, check_choice
from neurolysis.web import command as web_command


def _rf_arguments(p: argparse.ArgumentParser) -> None:
    """One option per RF setting (names, types and help from ``RFSettings``), then the outputs."""
    types = setting_types()
    for f in fields(RFSettings):
        flag = f.metadata["flag"] or "--" + f.name.replace("_", "-")
        kind = types[f.name]
        if kind is bool:
            p.add_argument(flag, action="store_true", dest=f.name, help=f.metadata["help"])
        else:
            p.add_argument(flag, type=kind, dest=f.name, choices=device_catalog.MODES if f.name == "mode" else None, help=f.metadata["help"])
        if f.name == "mode":
            p.add_argument("--device", help="a catalog device id (see `neurolysis devices`); sets mode, gauge and tip")
    p.add_argument("--spacing-mm", type=float, dest="spacing_mm", help=f"bipolar: distance between the two parallel needles' axes, mm (default {DEFAULT_SPACING_MM:g})")
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    p.add_argument("--plot", metavar="FILE.png", help="write a figure of the field, lesion outlines and traces")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="neurolysis", description=f"Neurolysis Planner ({DISCLAIMER}).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _rf_arguments(sub.add_parser("rf", help=COMMANDS["rf"]))
    for name in ("devices", "tissues", "fluids", "templates", "methods"):
        listing_arguments(sub.add_parser(name, help=COMMANDS[name]))
    plan = sub.add_parser("plan", help=COMMANDS["plan"]).add_subparsers(dest="plan_command", required=True, parser_class=_Parser)
    new = plan.add_parser("new", help="print a plan with the recommended placement on a template or a patient's segmentation (TOML, to stdout)")
    where = new.add_mutually_exclusive_group(required=True)
    where.add_argument("--template", help="anatomy template (see `neurolysis templates`)")
    where.add_argument("--segmentation", nargs="+", metavar="SEG", help="a patient's label map (NIfTI, NRRD, .seg.nrrd) or TotalSegmentator folder; more files add label layers (see `neurolysis anatomy inspect`)")
    new.add_argument("--names", nargs="+", metavar="N", help="with --segmentation: totalsegmentator | totalsegmentator-mr | totalsegmentator:<task> | embedded | a table file; one, or one per file")
    new.add_argument("--image", metavar="IMG", help="with --segmentation: the CT or MR (NIfTI, NRRD or a DICOM folder) for figures and the viewer")
    new.add_argument("--side", choices=("left", "right"), help="with --segmentation: the side of the target nerve, where it matters")
    new.add_argument("--target", action="append", help="target nerve (default: the template's targets, one needle each; required with --segmentation); repeat for several needles")
    new.add_argument("--approach", default="parallel", help="parallel (default) or perpendicular")
    new.add_argument("--method", default="rf", help="rf (default), cooled-rf, pulsed-rf, chemical, cryo, surgical or block")
    sim = sub.add_parser("simulate", help=COMMANDS["simulate"])
    sim.add_argument("plan", help="plan file (TOML)")
    sim.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE", help="override a plan field, e.g. placement.offset_mm=[3,0,0] (repeatable)")
    sim.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    sim.add_argument("--plot", metavar="FILE.png", help="write slices through the needle with anatomy, lesion and nerves, and the axon map")
    sim.add_argument("--quiet", action="store_true", help="no progress on stderr")
    sim.add_argument("--override-max-dose", action="store_true", help="block: simulate a dose over the agent's maximum (warned in every output)")
    sim.add_argument("--monte-carlo", type=int, metavar="N", help="add an uncertainty section: N needle poses drawn from the published placement accuracy (sets uncertainty.samples)")
    sim.add_argument("--check", action="store_true", help="validate the plan (fields, anatomy, target, placement) and print the resolved plan, without solving")
    store_command.add_save_arguments(sim)
    decide_cli.add_compare_arguments(sub.add_parser("compare", help=COMMANDS["compare"]))
    decide_cli.add_optimize_arguments(sub.add_parser("optimize", help=COMMANDS["optimize"]))
    indications.add_arguments(sub.add_parser("indications", help=COMMANDS["indications"]))
    report_command.add_arguments(sub.add_parser("report", help=COMMANDS["report"]))
    store_command.add_arguments(sub.add_parser("cases", help=COMMANDS["cases"]))
    web_command.add_arguments(sub.add_parser("serve", help=COMMANDS["serve"]))
    anatomy_command.add_parsers(sub)
    stimulate_cli.add_arguments(sub.add_parser("stimulate", help=COMMANDS["stimulate"]))
    sweep_command.add_arguments(sub.add_parser("sweep", help=COMMANDS["sweep"]))
    return parser


def settings_from_args(args: argparse.Namespace) -> RFSettings:
    """Validated settings from parsed arguments (raises ValidationError)."""
    values = {f.name: getattr(args, f.name) for f in fields(RFSettings) if getattr(args, f.name, None) is not None}
    if args.device is not None:
        catalog = device_catalog.all_devices()
        check_choice("device", args.device, sorted(catalog))
        device = catalog[args.device]
        if args.mode is not None and args.mode != device.mode:
            raise ValidationError(f"mode = {args.mode!r}: device {device.id!r} is a {device.mode} device")
        values = {"mode": device.mode, "gauge": device.gauge, "tip_mm": device.tip_mm} | values
    return RFSettings(**values)


def _progress(enabled: bool):
    """A rich progress bar on stderr, or nothing."""
    if not enabled:
        return None, None
    progress = Progress(
        TextColumn("simulating"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
        console=Console(stderr=True), transient=True,
    )  # fmt: skip
    task = progress.add_task("rf", total=1.0)
    return progress, lambda fraction: progress.update(task, completed=fraction)


def _print_table(result: RFResult) -> None:
    console = Console()
    s = result.settings
    pair = getattr(result, "strip", None)
    what = f"bipolar pair {pair.spacing_mm:g} mm apart, " if pair is not None else ""
    console.print(f"[bold]RF lesion[/bold] ({what}{s.mode}, {s.gauge} G, {s.tip_mm:g} mm tip, {s.time_s:g} s, {s.tissue}{', ex vivo' if s.ex_vivo else ''})")
    table = Table("criterion", "width (mm)", "length (mm)", "distal (mm)", "proximal (mm)", "area (mm²)", "volume (mm³)")
    for shape in (result.lesion, result.isotherm50, result.cem43, result.coagulation):
        table.add_row(
            shape.criterion, f"{shape.width_mm:.2f}", f"{shape.length_mm:.2f}", f"{shape.distal_mm:.2f}",
            f"{shape.proximal_mm:.2f}", f"{shape.area_mm2:.1f}", f"{shape.volume_mm3:.1f}",
        )  # fmt: skip
    console.print(table)
    rows = [
        ("peak tissue temperature", f"{result.max_tissue_temp_c:.1f} °C"),
        ("tip temperature at end", f"{result.tip_temp_c_final:.1f} °C"),
        ("mean power", f"{result.mean_power_w:.2f} W"),
        ("impedance start / end", f"{result.impedance_ohm_start:.0f} / {result.impedance_ohm_end:.0f} Ω"),
        ("energy delivered", f"{result.energy.delivered_j:.0f} J (balance error {result.energy.imbalance_relative:.1e})"),
        ("mesh", f"{result.mesh['nodes']} nodes, h = {result.mesh['h_fine_mm']:g} mm" + (f", verified to ±{result.mesh['verified_tolerance_mm']:g} mm" if "verified_tolerance_mm" in result.mesh else "")),
    ]
    if pair is not None:
        rows += [
            ("bipolar: lesions joined", f"{'yes' if pair.joined else 'no'} (gap {pair.gap_mm:.2f} mm)"),
            ("bipolar: strip width / length", f"{pair.strip_width_mm:.2f} / {pair.strip_length_mm:.2f} mm"),
        ]
    if getattr(result, "pulsed", None):
        p = result.pulsed
        rows += [
            ("pulsed: spike at electrode edge / hottest time-mean", f"{p['peak_tissue_temp_c']:.1f} / {p['mean_tissue_temp_c']:.1f} °C"),
            ("pulsed: peak temp at 0.5 / 1 / 2 mm (lateral)", " / ".join(f"{p['probe_temp_c'][f'lateral_{d}mm']['peak_c']:.1f}" for d in ("0.5", "1", "2")) + " °C"),
            ("pulsed: field at 0.5 / 1 / 2 mm (lateral)", " / ".join(f"{p['electric_field_v_per_m'][f'lateral_{d}mm']:.3g}" for d in ("0.5", "1", "2")) + " V/m"),
            ("pulsed: verdict", p["verdict"]),
        ]
    info = Table(show_header=False, box=None)
    for key, value in rows:
        info.add_row(key, value)
    console.print(info)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    console.print(f"[dim]{DISCLAIMER}[/dim]")


def _run_rf(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    settings.resolved()  # device defaults checked before the solve
    bipolar = settings.electrodes == "bipolar"
    if args.spacing_mm is not None and not bipolar:
        raise ValidationError(f"spacing_mm = {args.spacing_mm:g}: only used with --electrodes bipolar")
    if bipolar and args.plot:
        raise ValidationError("plot: the one-tissue figure is drawn for one needle; plot a bipolar pair from a plan (`neurolysis simulate --plot`)")
    spacing_mm = DEFAULT_SPACING_MM if args.spacing_mm is None else args.spacing_mm
    solve = (lambda s, **kw: bipolar_pair(s, spacing_mm, **kw)) if bipolar else simulate_rf
    progress, callback = _progress(not args.quiet and sys.stderr.isatty())
    if progress is not None:
        with progress:
            result = solve(settings, progress=callback)
    else:
        result = solve(settings)
    if not args.quiet:
        print(f"neurolysis: solved in {result.wall_time_s:.2f} s ({result.mesh['nodes']} nodes, {result.mesh['time_steps']} steps)", file=sys.stderr)
    plot = None
    if args.plot:
        from neurolysis.report.figures import plot_rf as plot  # matplotlib: imported only when a figure is asked for
    return _deliver(args, result, plot, _print_table)


def _deliver(args: argparse.Namespace, result, plot, print_table) -> int:
    """The common tail of a solve: optional figure, then JSON or a table on stdout."""
    if plot is not None:
        plot(result, args.plot)
        if not args.quiet:
            print(f"neurolysis: figure written to {args.plot}", file=sys.stderr)
    if args.json:
        return print_json(result.to_dict())
    print_table(result)
    return 0


def _run_devices(args: argparse.Namespace) -> int:
    catalog = device_catalog.all_devices()
    diameters = device_catalog.gauge_outer_diameters_mm()
    g = device_catalog.generator()
    rows = []
    for d in catalog.values():
        if d.mode == "pulsed":
            defaults = f"{d.pulse_voltage_v:g} V, {d.pulse_frequency_hz:g} Hz × {d.pulse_width_ms:g} ms, {d.default_time_s:g} s"
        else:
            defaults = f"{d.default_set_temp_c:g} °C, {d.default_time_s:g} s"
        rows.append((d.id, d.mode, str(d.gauge), f"{diameters[d.gauge]:.2f}", f"{d.tip_mm:g}", defaults, d.description))
    payload = {"devices": {k: vars(d) for k, d in catalog.items()}, "gauge_outer_diameter_mm": diameters, "generator": vars(g)}
    limits = f"generator limits: {g.max_power_w:g} W, {g.max_voltage_v:g} V, set temperature up to {g.temp_limit_c:g} °C, default ramp {g.ramp_time_s:g} s"
    return listing(args, payload, rows, ("id", "mode", "gauge", "OD (mm)", "tip (mm)", "defaults", "description"), limits)


_SYMBOLS = {
    "density_kg_m3": "ρ",
    "heat_capacity_j_kg_k": "c",
    "thermal_conductivity_w_m_k": "k",
    "thermal_conductivity_coeff_per_k": "dk/dT",
    "electrical_conductivity_s_m": "σ",
    "electrical_conductivity_coeff_per_k": "dσ/dT",
    "perfusion_w_m3_k": "perfusion",
}


def _run_tissues(args: argparse.Namespace) -> int:
    tissues = [load_tissue(t) for t in tissue_ids()]
    payload = {t.id: {k: v for k, v in vars(t).items() if k != "sources"} | {"sources": dict(t.sources)} for t in tissues}
    rows = [
        (t.id, f"{t.density_kg_m3:g}", f"{t.heat_capacity_j_kg_k:g}", f"{t.thermal_conductivity_w_m_k:g}",
         f"{t.electrical_conductivity_s_m:g}", f"{100 * t.electrical_conductivity_coeff_per_k:g}",
         f"{t.perfusion_w_m3_k:g}", ", ".join(_SYMBOLS.get(u, u) for u in t.uncertain) or "-")
        for t in tissues
    ]  # fmt: skip
    columns = ("id", "ρ (kg/m³)", "c (J/kg/K)", "k (W/m/K)", "σ (S/m)", "dσ/dT (%/K)", "perfusion (W/m³/K)", "uncertain")
    return listing(args, payload, rows, columns, "sources: src/neurolysis/data/tissues.toml, or `neurolysis tissues --json`")


def _run_fluids(args: argparse.Namespace) -> int:
    table = load_catalog("fluids")["fluid"]
    payload = {fid: dict(entry) for fid, entry in table.items()}
    rows = [(fid, e["name"], f"{e['conductivity_s_m']:g}", e["tag"]) for fid, e in table.items()]
    return listing(args, payload, rows, ("id", "fluid", "σ (S/m, 37 °C)", "tag"), "sources: src/neurolysis/data/fluids.toml, or `neurolysis fluids --json`; model: docs/models/rf3d.md")


def _run_methods(args: argparse.Namespace) -> int:
    summaries = [method_summary(name) for name in method_names()]
    rows = []
    for m in summaries:
        fields = ", ".join(f"{f} ({json.dumps(m['defaults'][f])})" if f in m["defaults"] else f for f in m["fields"])
        shown = fields if m["section"] != "rf" else "device settings: see `neurolysis devices`"
        rows.append((m["method"], m["description"], shown, "; ".join(f"{k}: {', '.join(v)}" for k, v in m["choices"].items())))
    return listing(args, {"methods": summaries}, rows, ("method", "what", "\\[procedure] fields (default)", "choices"))


def _run_plan(args: argparse.Namespace) -> int:
    if args.segmentation is None:
        for option in ("names", "image", "side"):
            if getattr(args, option) is not None:
                raise ValidationError(f"plan new --{option}: only used with --segmentation")
        plan = new_plan(args.template, args.target, args.approach, args.method)
    else:
        plan = new_segmentation_plan(args.segmentation, args.names, args.image, args.side, args.target, args.approach, args.method)
    sys.stdout.write(plan_toml(plan))
    return 0


def _run_simulate(args: argparse.Namespace) -> int:
    extra = [*(["procedure.override_max_dose=true"] if args.override_max_dose else []), *([f"uncertainty.samples={args.monte_carlo}"] if args.monte_carlo is not None else [])]
    plan = load_plan(args.plan, [*args.set, *extra])
    progress, callback = _progress(not args.quiet and sys.stderr.isatty())
    context = prepare(plan, progress=callback)  # anatomy, target and placement checked before the solve
    store_command.check_save(args)  # --save: the store opens and holds --parent, before the solve
    if args.check:
        if args.json:
            return print_json({"valid": True, "settings": plan.as_dict(), "disclaimer": DISCLAIMER})
        print(f"neurolysis: plan {args.plan} is valid (method {plan.procedure.method}); not solved (--check)")
        return 0
    if progress is not None:
        with progress:
            outcome = solve(context)
    else:
        outcome = solve(context)
    if not args.quiet:
        print(f"neurolysis: solved in {outcome.wall_time_s:.1f} s", file=sys.stderr)
        for warning in outcome.warnings:
            print(f"neurolysis: warning: {warning}", file=sys.stderr)
    plot = None
    if args.plot:
        from neurolysis.report.anatomy_figures import plot_outcome as plot  # matplotlib: imported only when a figure is asked for

    status = _deliver(args, outcome, plot, print_outcome)
    if getattr(args, "save", False):
        store_command.save_simulated(args, Path(args.plan).read_text(encoding="utf-8"), outcome)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``neurolysis``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    runners = {
        "rf": _run_rf, "devices": _run_devices, "tissues": _run_tissues, "fluids": _run_fluids,
        "templates": run_templates, "methods": _run_methods, "plan": _run_plan, "simulate": _run_simulate,
        "compare": decide_cli.run_compare, "optimize": decide_cli.run_optimize, "report": report_command.run, "indications": indications.run,
        "cases": store_command.run, "serve": web_command.run, "sweep": sweep_command.run, "stimulate": stimulate_cli.run, "anatomy": lambda a: anatomy_command.run(a, Console()),
    }  # fmt: skip
    runner = runners[args.command]
    try:
        return runner(args)
    except ValidationError as error:
        print(f"neurolysis: error: {error}", file=sys.stderr)
        return EXIT_USAGE


