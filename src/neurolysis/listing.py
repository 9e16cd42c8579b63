"""The catalogue commands (``devices``, ``tissues``, ``fluids``, ``templates``): a table, or JSON
with ``--json``. They read data files and nothing of the solvers, so they start fast."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from neurolysis import devices as device_catalog
from neurolysis._catalog import load_catalog
from neurolysis.anatomy.templates import template_names, template_summary
from neurolysis.output import print_json
from neurolysis.tissue import load_tissue, tissue_ids


def listing(args: argparse.Namespace, payload: dict, rows: list[tuple[str, ...]], columns: tuple[str, ...], *notes: str) -> int:
    """A catalogue command's answer: ``payload`` as JSON with --json, else a table (first column
    unwrapped) and its notes."""
    if args.json:
        return print_json(payload)
    table = Table(*columns)
    table.columns[0].no_wrap = True
    for row in rows:
        table.add_row(*row)
    console = Console()
    console.print(table)
    for note in notes:
        console.print(note)
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """A catalogue command's one option."""
    p.add_argument("--json", action="store_true", help="print JSON")


def run_templates(args: argparse.Namespace) -> int:
    """``neurolysis templates``: the anatomy templates, their targets and critical structures."""
    summaries = [template_summary(name) for name in template_names()]
    rows = [(t["name"], ", ".join(t["targets"]), ", ".join(f"{c['name']} ({c['kind']})" for c in t["critical"]), ", ".join(t["approaches"])) for t in summaries]
    note = "descriptions, frames and bounds: `neurolysis templates --json`; sources: docs/models/anatomy.md"
    return listing(args, {"templates": summaries}, rows, ("template", "targets", "critical structures (kind)", "approaches"), note)


def run_devices(args: argparse.Namespace) -> int:
    """``neurolysis devices``: the electrode and probe catalog."""
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


def run_tissues(args: argparse.Namespace) -> int:
    """``neurolysis tissues``: the tissue property catalog."""
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


def run_fluids(args: argparse.Namespace) -> int:
    """``neurolysis fluids``: the fluids an RF plan can inject first."""
    table = load_catalog("fluids")["fluid"]
    payload = {fid: dict(entry) for fid, entry in table.items()}
    rows = [(fid, e["name"], f"{e['conductivity_s_m']:g}", e["tag"]) for fid, e in table.items()]
    return listing(args, payload, rows, ("id", "fluid", "σ (S/m, 37 °C)", "tag"), "sources: src/neurolysis/data/fluids.toml, or `neurolysis fluids --json`; model: docs/models/rf3d.md")


__all__ = ["add_arguments", "listing", "run_devices", "run_fluids", "run_templates", "run_tissues"]
