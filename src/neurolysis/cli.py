"""The ``neurolysis`` command: parses arguments, calls the library, formats the answer.

User errors print one line ``neurolysis: error: <field> = <value>: <allowed>`` to stderr
and exit with status 2, before any computation.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from neurolysis import devices as device_catalog
from neurolysis.modalities.rf import DISCLAIMER, RFResult, RFSettings, simulate_rf
from neurolysis.tissue import load_tissue, tissue_ids
from neurolysis.validation import ValidationError, check_choice

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (no usage block) with exit code 2."""

    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _rf_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", choices=device_catalog.MODES, help="conventional (default), cooled or pulsed")
    p.add_argument("--device", help="a catalog device id (see `neurolysis devices`); sets mode, gauge and tip")
    p.add_argument("--gauge", type=int, help="needle gauge (16, 17, 18, 20, 22, 23)")
    p.add_argument("--tip-mm", type=float, help="active (uninsulated) tip length, mm")
    p.add_argument("--set-temp-c", type=float, help="generator set temperature, C (not pulsed)")
    p.add_argument("--time-s", type=float, help="lesion time at set temperature, s (including ramp)")
    p.add_argument("--ramp-s", type=float, help="ramp time to the set temperature, s")
    p.add_argument("--tissue", default="muscle", help="tissue id (see `neurolysis tissues`); default muscle")
    p.add_argument("--ex-vivo", action="store_true", help="excised tissue: no perfusion, bath temperature --initial-temp-c")
    p.add_argument("--initial-temp-c", type=float, help="ex vivo tissue and bath temperature, C (default 21)")
    p.add_argument("--damage-model", help="Arrhenius parameter set (see data/damage.toml)")
    p.add_argument("--coolant-temp-c", type=float, help="cooled mode: coolant inlet temperature, C")
    p.add_argument("--coolant-flow-ml-min", type=float, help="cooled mode: coolant flow, mL/min")
    p.add_argument("--voltage-v", type=float, dest="pulse_voltage_v", help="pulsed mode: pulse voltage, V")
    p.add_argument("--pulse-frequency-hz", type=float, help="pulsed mode: pulse repetition rate, Hz")
    p.add_argument("--pulse-width-ms", type=float, help="pulsed mode: pulse width, ms")
    p.add_argument("--temp-limit-c", type=float, dest="pulse_temp_limit_c", help="pulsed mode: generator temperature limit, C")
    p.add_argument("--max-power-w", type=float, help="generator power limit, W")
    p.add_argument("--h-fine-mm", type=float, help="mesh size where the lesion forms, mm (default verified 0.2)")
    p.add_argument("--dt-s", type=float, help="time step, s (default verified 1.0)")
    p.add_argument("--domain-mm", type=float, help="distance to the far boundary, mm")
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    p.add_argument("--plot", metavar="FILE.png", help="write a figure of the field, lesion outlines and traces")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="neurolysis", description=f"Neurolysis Planner ({DISCLAIMER}).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _rf_arguments(sub.add_parser("rf", help="simulate a radiofrequency lesion around one needle"))
    for name, what in (
        ("devices", "the electrode and probe catalog"),
        ("tissues", "the tissue property catalog"),
        ("templates", "anatomy templates, their target nerves and critical structures"),
        ("methods", "the methods a plan can use, their [procedure] fields, defaults and choices"),
    ):
        p = sub.add_parser(name, help=f"list {what}")
        p.add_argument("--json", action="store_true", help="print JSON")
    plan = sub.add_parser("plan", help="write plan files").add_subparsers(dest="plan_command", required=True, parser_class=_Parser)
    new = plan.add_parser("new", help="print a plan with the template's recommended placement (TOML, to stdout)")
    new.add_argument("--template", required=True, help="anatomy template (see `neurolysis templates`)")
    new.add_argument("--target", help="target nerve (default: the template's target)")
    new.add_argument("--approach", default="parallel", help="parallel (default) or perpendicular")
    new.add_argument("--method", default="rf", help="rf (default), cooled-rf, pulsed-rf, chemical, cryo, surgical or block")
    sim = sub.add_parser("simulate", help="simulate a plan: lesion, nerve outcome, relief and critical-structure risk")
    sim.add_argument("plan", help="plan file (TOML)")
    sim.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE", help="override a plan field, e.g. placement.offset_mm=[3,0,0] (repeatable)")
    sim.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    sim.add_argument("--plot", metavar="FILE.png", help="write slices through the needle with anatomy, lesion and nerves, and the axon map")
    sim.add_argument("--quiet", action="store_true", help="no progress on stderr")
    sim.add_argument("--override-max-dose", action="store_true", help="block: simulate a dose over the agent's maximum (warned in every output)")
    sim.add_argument("--check", action="store_true", help="validate the plan (fields, anatomy, target, placement) and print the resolved plan, without solving")
    return parser


_SETTING_FIELDS = (
    "mode", "gauge", "tip_mm", "set_temp_c", "time_s", "ramp_s", "tissue", "ex_vivo", "initial_temp_c",
    "damage_model", "coolant_temp_c", "coolant_flow_ml_min", "pulse_voltage_v", "pulse_frequency_hz",
    "pulse_width_ms", "pulse_temp_limit_c", "max_power_w", "h_fine_mm", "dt_s", "domain_mm",
)  # fmt: skip


def settings_from_args(args: argparse.Namespace) -> RFSettings:
    """Validated settings from parsed arguments (raises ValidationError)."""
    values = {name: getattr(args, name) for name in _SETTING_FIELDS if getattr(args, name) is not None}
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
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("simulating"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
        console=Console(stderr=True), transient=True,
    )  # fmt: skip
    task = progress.add_task("rf", total=1.0)
    return progress, lambda fraction: progress.update(task, completed=fraction)


def _print_table(result: RFResult) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    s = result.settings
    console.print(f"[bold]RF lesion[/bold] ({s.mode}, {s.gauge} G, {s.tip_mm:g} mm tip, {s.time_s:g} s, {s.tissue}{', ex vivo' if s.ex_vivo else ''})")
    table = Table("criterion", "width (mm)", "length (mm)", "distal (mm)", "proximal (mm)", "area (mm²)", "volume (mm³)")
    for shape in (result.lesion, result.isotherm50, result.cem43):
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
        ("mesh", f"{result.mesh['nodes']} nodes, h = {result.mesh['h_fine_mm']:g} mm, verified to ±{result.mesh['verified_tolerance_mm']:g} mm"),
    ]
    if result.pulsed:
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
    progress, callback = _progress(not args.quiet and sys.stderr.isatty())
    if progress is not None:
        with progress:
            result = simulate_rf(settings, progress=callback)
    else:
        result = simulate_rf(settings)
    if not args.quiet:
        print(f"neurolysis: solved in {result.wall_time_s:.2f} s ({result.mesh['nodes']} nodes, {result.mesh['time_steps']} steps)", file=sys.stderr)
    if args.plot:
        from neurolysis.report.figures import plot_rf as plot
    return _deliver(args, result, plot if args.plot else None, _print_table)


def _deliver(args: argparse.Namespace, result, plot, print_table) -> int:
    """The common tail of a solve: optional figure, then JSON or a table on stdout."""
    if plot is not None:
        plot(result, args.plot)
        if not args.quiet:
            print(f"neurolysis: figure written to {args.plot}", file=sys.stderr)
    if args.json:
        return _print_json(result.to_dict())
    print_table(result)
    return 0


def _print_json(obj) -> int:
    """One JSON object on stdout (the machine-readable output of every command)."""
    json.dump(obj, sys.stdout)
    sys.stdout.write("\n")
    return 0


def _run_devices(args: argparse.Namespace) -> int:
    catalog = device_catalog.all_devices()
    diameters = device_catalog.gauge_outer_diameters_mm()
    if args.json:
        return _print_json({"devices": {k: vars(d) for k, d in catalog.items()}, "gauge_outer_diameter_mm": diameters, "generator": vars(device_catalog.generator())})
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "mode", "gauge", "OD (mm)", "tip (mm)", "defaults", "description")
    for d in catalog.values():
        if d.mode == "pulsed":
            defaults = f"{d.pulse_voltage_v:g} V, {d.pulse_frequency_hz:g} Hz × {d.pulse_width_ms:g} ms, {d.default_time_s:g} s"
        else:
            defaults = f"{d.default_set_temp_c:g} °C, {d.default_time_s:g} s"
        table.add_row(d.id, d.mode, str(d.gauge), f"{diameters[d.gauge]:.2f}", f"{d.tip_mm:g}", defaults, d.description)
    console = Console()
    console.print(table)
    g = device_catalog.generator()
    console.print(f"generator limits: {g.max_power_w:g} W, {g.max_voltage_v:g} V, set temperature up to {g.temp_limit_c:g} °C, default ramp {g.ramp_time_s:g} s")
    return 0


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
    if args.json:
        out = {t.id: {k: v for k, v in vars(t).items() if k != "sources"} | {"sources": dict(t.sources)} for t in tissues}
        return _print_json(out)
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "ρ (kg/m³)", "c (J/kg/K)", "k (W/m/K)", "σ (S/m)", "dσ/dT (%/K)", "perfusion (W/m³/K)", "uncertain")
    for t in tissues:
        table.add_row(
            t.id, f"{t.density_kg_m3:g}", f"{t.heat_capacity_j_kg_k:g}", f"{t.thermal_conductivity_w_m_k:g}",
            f"{t.electrical_conductivity_s_m:g}", f"{100 * t.electrical_conductivity_coeff_per_k:g}",
            f"{t.perfusion_w_m3_k:g}", ", ".join(_SYMBOLS.get(u, u) for u in t.uncertain) or "-",
        )  # fmt: skip
    console = Console()
    console.print(table)
    console.print("sources: src/neurolysis/data/tissues.toml, or `neurolysis tissues --json`")
    return 0


def _run_templates(args: argparse.Namespace) -> int:
    from neurolysis.anatomy.templates import template_names, template_summary

    summaries = [template_summary(name) for name in template_names()]
    if args.json:
        return _print_json({"templates": summaries})
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table("template", "targets", "critical structures (kind)", "approaches")
    table.columns[0].no_wrap = True
    for t in summaries:
        targets = ", ".join(t["targets"])
        critical = ", ".join(f"{c['name']} ({c['kind']})" for c in t["critical"])
        table.add_row(t["name"], targets, critical, ", ".join(t["approaches"]))
    console.print(table)
    console.print("descriptions, frames and bounds: `neurolysis templates --json`; sources: docs/models/anatomy.md")
    return 0


def _run_methods(args: argparse.Namespace) -> int:
    from neurolysis.planning.methods import method_names, method_summary

    summaries = [method_summary(name) for name in method_names()]
    if args.json:
        return _print_json({"methods": summaries})
    from rich.console import Console
    from rich.table import Table

    table = Table("method", "what", "\\[procedure] fields (default)", "choices")
    table.columns[0].no_wrap = True
    for m in summaries:
        fields = ", ".join(f"{f} ({json.dumps(m['defaults'][f])})" if f in m["defaults"] else f for f in m["fields"])
        table.add_row(m["method"], m["description"], fields if m["section"] != "rf" else "device settings: see `neurolysis devices`", "; ".join(f"{k}: {', '.join(v)}" for k, v in m["choices"].items()))
    Console().print(table)
    return 0


def _run_plan(args: argparse.Namespace) -> int:
    from neurolysis.planning.plan import new_plan, plan_toml

    sys.stdout.write(plan_toml(new_plan(args.template, args.target, args.approach, args.method)))
    return 0


def _run_simulate(args: argparse.Namespace) -> int:
    from neurolysis.planning.plan import load_plan
    from neurolysis.planning.simulate import prepare, simulate

    plan = load_plan(args.plan, [*args.set, *(["procedure.override_max_dose=true"] if args.override_max_dose else [])])
    prepare(plan)  # anatomy, target and placement checked before the solve
    if args.check:
        if args.json:
            return _print_json({"valid": True, "settings": plan.as_dict(), "disclaimer": DISCLAIMER})
        print(f"neurolysis: plan {args.plan} is valid (method {plan.procedure.method}); not solved (--check)")
        return 0
    progress, callback = _progress(not args.quiet and sys.stderr.isatty())
    if progress is not None:
        with progress:
            outcome = simulate(plan, progress=callback)
    else:
        outcome = simulate(plan)
    if not args.quiet:
        print(f"neurolysis: solved in {outcome.wall_time_s:.1f} s", file=sys.stderr)
        for warning in outcome.warnings:
            print(f"neurolysis: warning: {warning}", file=sys.stderr)
    if args.plot:
        from neurolysis.report.anatomy_figures import plot_outcome as plot
    from neurolysis.report.outcome_table import print_outcome

    return _deliver(args, outcome, plot if args.plot else None, print_outcome)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``neurolysis``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    runners = {
        "rf": _run_rf, "devices": _run_devices, "tissues": _run_tissues,
        "templates": _run_templates, "methods": _run_methods, "plan": _run_plan, "simulate": _run_simulate,
    }  # fmt: skip
    runner = runners[args.command]
    try:
        return runner(args)
    except ValidationError as error:
        print(f"neurolysis: error: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
