"""``neurolysis indications [--json] [--template T]``: the indication catalog as a table, or one
JSON object with every line's source and tag."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from neurolysis.about import DISCLAIMER
from neurolysis.anatomy.templates import template_names
from neurolysis.indications import indications_for
from neurolysis.output import print_json
from neurolysis.validation import check_choice


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``neurolysis indications``."""
    parser.add_argument("--json", action="store_true", help="print one JSON object: every line with its source and tag")
    parser.add_argument("--template", metavar="T", help="only the indications simulated on this anatomy template (see `neurolysis templates`)")


def run(args: argparse.Namespace) -> int:
    """``neurolysis indications [--json] [--template T]``: a table, or one JSON object."""
    if args.template is not None:
        check_choice("--template", args.template, template_names())
    found = indications_for(template=args.template)
    if args.json:
        return print_json({"indications": [i.to_dict() for i in found], "disclaimer": DISCLAIMER})
    table = Table("indication", "category", "template", "methods", "not appropriate", "evidence", "coverage")
    table.columns[0].no_wrap = True
    for i in found:
        cells = (i.id, i.category, ", ".join(i.templates) or "none (label map)", ", ".join(i.methods) or "-",
                 ", ".join(i.not_appropriate) or "-", f"{i.evidence_level.text} [{i.evidence_level.tag}]", i.coverage_class)  # fmt: skip
        table.add_row(*(escape(c) for c in cells))
    console = Console()
    console.print(table)
    console.print(escape("lines with sources and tags (treatment, reasons, outcomes, coverage): `neurolysis indications --json`; docs/models/indications.md"))
    console.print(f"[dim]{DISCLAIMER}[/dim]")
    return 0


__all__ = ["add_arguments", "run"]
