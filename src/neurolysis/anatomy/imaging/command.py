"""``neurolysis anatomy inspect SEG [SEG ...] [--names N ...] [--image IMG] [--tissue NAME=TISSUE ...] [--json]``:
what the planner reads in a segmentation (grid, structures and their tissues, unmapped names, the
image) and the target nerves its landmarks support, with the rule that places each."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from neurolysis.about import DISCLAIMER
from neurolysis.output import print_json
from neurolysis.tissue import tissue_ids
from neurolysis.validation import ValidationError, check_choice

from .landmarks import supported_targets
from .load import load_anatomy


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``anatomy``'s ``inspect`` subcommand."""
    group = parser.add_subparsers(dest="anatomy_command", required=True, parser_class=type(parser))
    p = group.add_parser("inspect", help="grid, structures with their tissues, unmapped names, image, and the target nerves its landmarks support")
    p.add_argument("segmentation", nargs="+", metavar="SEG", help="a label map (NIfTI, NRRD, .seg.nrrd) or a TotalSegmentator folder; more files add label layers")
    p.add_argument("--names", nargs="+", metavar="N", help="totalsegmentator | totalsegmentator-mr | totalsegmentator:<task> | embedded | a table file (.ctbl, .tsv, .txt, .csv); one, or one per file")
    p.add_argument("--image", metavar="IMG", help="the CT or MR (NIfTI, NRRD or a DICOM series folder)")
    p.add_argument("--tissue", action="append", default=[], metavar="NAME=TISSUE", help="give structure NAME the tissue TISSUE (repeatable; overrides the name rules)")
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")


def _tissues(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, tissue = pair.partition("=")
        if not sep or not name or not tissue:
            raise ValidationError(f"--tissue {pair!r}: must be NAME=TISSUE, e.g. kidney_cyst_left=csf")
        out[name] = tissue
    return out


def inspect_summary(segmentation, names=None, image=None, tissues=None) -> dict:
    """The ``anatomy inspect --json`` object."""
    for name, tissue in (tissues or {}).items():
        check_choice(f"--tissue {name}", tissue, tissue_ids())
    anatomy = load_anatomy(segmentation, names, image, tissues)
    return anatomy.summary() | {"targets": [c.summary() for c in supported_targets(anatomy)], "disclaimer": DISCLAIMER}


def run(args: argparse.Namespace, console: Console | None = None) -> int:
    """Print the summary as tables, or one JSON object with ``--json``."""
    console = console or Console()
    found = inspect_summary(args.segmentation, args.names, args.image, _tissues(args.tissue))
    if args.json:
        return print_json(found)

    g = found["grid"]
    console.print(f"[bold]{', '.join(found['segmentation'])}[/bold] ({', '.join(found['names'])})")
    console.print(f"grid {' x '.join(map(str, g['shape']))} voxels of {' x '.join(f'{s:g}' for s in g['spacing_mm'])} mm, orientation {g['orientation']}, "
                  f"coordinates {g['frame']} (mm), extent {g['extent_mm'][0]} to {g['extent_mm'][1]} mm")  # fmt: skip
    if found["image"]:
        i = found["image"]
        console.print(f"image {i['source']}: {' x '.join(map(str, i['shape']))} voxels of {' x '.join(f'{s:g}' for s in i['spacing_mm'])} mm, modality {i['modality'] or 'not stated'}")
    table = Table("label", "name", "kind", "tissue", "critical", "voxels", "volume (mL)")
    for s in found["structures"]:
        table.add_row(str(s["label"]), s["name"], s["kind"], s["tissue"], s["critical"] or "", str(s["voxels"]), f"{s['volume_ml']:.2f}")
    console.print(table)
    if found["unmapped"]:
        console.print(f"[yellow]unmapped (default tissue):[/yellow] {', '.join(found['unmapped'])}")
    targets = Table("target nerve", "sides", "landmark rule")
    for t in found["targets"]:
        targets.add_row(t["target"], ", ".join(t["sides"]) or "-", t["rule"])
    console.print(targets if found["targets"] else "no target nerve: the landmarks of no rule are in this segmentation")
    for rule, description in {t["rule"]: t["description"] for t in found["targets"]}.items():
        console.print(f"[bold]{rule}[/bold]: {description}")
    for w in found["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {w}")
    console.print(DISCLAIMER)
    return 0


__all__ = ["add_arguments", "inspect_summary", "run"]
