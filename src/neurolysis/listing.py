"""The catalogue commands' answer (a table, or JSON with ``--json``) and ``neurolysis templates``,
which runs without the rest of the command line (:data:`neurolysis.cli.LIGHT`): it reads the
template files and nothing of the solvers."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from neurolysis.anatomy.templates import template_names, template_summary
from neurolysis.output import print_json


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
    summaries = [template_summary(name) for name in template_names()]
    rows = [
        (t["name"], ", ".join(t["targets"]), ", ".join(f"{c['name']} ({c['kind']})" for c in t["critical"]), ", ".join(t["approaches"]))
        for t in summaries
    ]
    note = "descriptions, frames and bounds: `neurolysis templates --json`; sources: docs/models/anatomy.md"
    return listing(args, {"templates": summaries}, rows, ("template", "targets", "critical structures (kind)", "approaches"), note)
