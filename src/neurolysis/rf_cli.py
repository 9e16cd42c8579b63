"""``neurolysis rf``: one RF lesion (or a bipolar pair) in one tissue, from command-line settings
(one option per :class:`~neurolysis.engines.rf.settings.RFSettings` field)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from rich.console import Console
from rich.table import Table

from neurolysis import devices as device_catalog
from neurolysis.about import DISCLAIMER
from neurolysis.console import deliver, progress_bar
from neurolysis.engines.rf.engine2d import RFResult, simulate_rf
from neurolysis.engines.rf.engine3d import DEFAULT_SPACING_MM, bipolar_pair
from neurolysis.engines.rf.settings import RFSettings, setting_types
from neurolysis.validation import ValidationError, check_choice


def add_arguments(p: argparse.ArgumentParser) -> None:
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
        (
            "mesh",
            f"{result.mesh['nodes']} nodes, h = {result.mesh['h_fine_mm']:g} mm" + (f", verified to ±{result.mesh['verified_tolerance_mm']:g} mm" if "verified_tolerance_mm" in result.mesh else ""),
        ),
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


def run(args: argparse.Namespace) -> int:
    """``neurolysis rf``: solve one needle (or a bipolar pair) in one tissue; a table, JSON or a figure."""
    settings = settings_from_args(args)
    settings.resolved()  # device defaults checked before the solve
    bipolar = settings.electrodes == "bipolar"
    if args.spacing_mm is not None and not bipolar:
        raise ValidationError(f"spacing_mm = {args.spacing_mm:g}: only used with --electrodes bipolar")
    if bipolar and args.plot:
        raise ValidationError("plot: the one-tissue figure is drawn for one needle; plot a bipolar pair from a plan (`neurolysis simulate --plot`)")
    spacing_mm = DEFAULT_SPACING_MM if args.spacing_mm is None else args.spacing_mm
    solve = (lambda s, **kw: bipolar_pair(s, spacing_mm, **kw)) if bipolar else simulate_rf
    progress, callback = progress_bar(not args.quiet and sys.stderr.isatty())
    with progress:
        result = solve(settings, progress=callback)
    if not args.quiet:
        print(f"neurolysis: solved in {result.wall_time_s:.2f} s ({result.mesh['nodes']} nodes, {result.mesh['time_steps']} steps)", file=sys.stderr)
    plot = None
    if args.plot:
        from neurolysis.report.figures import plot_rf as plot  # matplotlib: only when a figure is asked for
    return deliver(args, result, plot, _print_table)


__all__ = ["add_arguments", "run", "settings_from_args"]
