"""Names of a segmentation's labels: the TotalSegmentator class maps, a Slicer colour table
(``.ctbl``), a two-column text table, or the names the file carries itself.

``anatomy.names`` (and ``--names``) is one of:

- ``totalsegmentator`` (the CT task ``total``), ``totalsegmentator-mr`` (``total_mr``), or
  ``totalsegmentator:<task>`` for any task of ``data/totalsegmentator_classes.toml``;
- ``embedded``: the segment names of a Slicer ``.seg.nrrd``, or the file names of a
  TotalSegmentator output folder (also used when ``names`` is left out and the file has them);
- a table file: a Slicer colour table (``label name r g b a`` per line, ``#`` comments) or a
  text/TSV/CSV table of ``label``, ``name`` and an optional third column ``tissue`` (an id of
  ``data/tissues.toml`` that overrides the name rules for that label). A first line whose
  label is not a number is a header.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from neurolysis._catalog import load_catalog
from neurolysis.tissue import tissue_ids
from neurolysis.validation import ValidationError, check_choice

TOTALSEGMENTATOR = "totalsegmentator"
EMBEDDED = "embedded"
BUILT_IN = {TOTALSEGMENTATOR: "total", "totalsegmentator-mr": "total_mr"}
MAX_TABLE_BYTES = 4 * 2**20
MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class LabelNames:
    """Label -> name, with per-label tissue overrides from the table and where the names came from."""

    names: Mapping[int, str]
    tissues: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    source: str = ""
    warnings: tuple[str, ...] = ()


def totalsegmentator_tasks() -> tuple[str, ...]:
    return tuple(load_catalog("totalsegmentator_classes")["task"])


def names_choices() -> tuple[str, ...]:
    """The built-in names sources (besides a table file)."""
    return (*BUILT_IN, *(f"{TOTALSEGMENTATOR}:{t}" for t in totalsegmentator_tasks()), EMBEDDED)


def _built_in(spec: str, where: str) -> dict[int, str] | None:
    if spec in BUILT_IN:
        task = BUILT_IN[spec]
    elif spec.startswith(f"{TOTALSEGMENTATOR}:"):
        task = spec.split(":", 1)[1]
        check_choice(f"{where} task", task, totalsegmentator_tasks())
    else:
        return None
    return {int(k): str(v) for k, v in load_catalog("totalsegmentator_classes")["task"][task].items()}


def _read_text(path: Path, where: str) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_TABLE_BYTES:
            raise ValidationError(f"{where} = {str(path)!r}: {size} bytes; a names table is at most {MAX_TABLE_BYTES} bytes")
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError(f"{where} = {str(path)!r}: cannot be parsed (not UTF-8 text)") from None
    except OSError as exc:
        raise ValidationError(f"{where} = {str(path)!r}: cannot be read ({exc.strerror or type(exc).__name__})") from None


def _rows(text: str, path: Path, where: str) -> list[list[str]]:
    """Rows of a names table: ``.ctbl`` and other text split on whitespace or tabs, ``.csv`` on commas."""
    if path.suffix.lower() == ".csv":
        try:
            return [row for row in csv.reader(io.StringIO(text, newline=""))]
        except csv.Error as exc:
            raise ValidationError(f"{where} = {str(path)!r}: not a readable CSV table ({exc})") from None
    rows = []
    for line in text.splitlines():
        if "\t" in line:
            rows.append([c.strip() for c in line.split("\t")])
        else:
            rows.append(line.split())
    return rows


def _check_name(name: str, where: str, line: int) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise ValidationError(f"{where} line {line}: name {name[:40]!r} must be printable text of 1-{MAX_NAME_LENGTH} characters")
    return name


def read_table(path: Path, where: str) -> LabelNames:
    """A colour table or a text table (module docstring)."""
    text = _read_text(path, where)
    colour_table = path.suffix.lower() == ".ctbl"
    names: dict[int, str] = {}
    tissues: dict[int, str] = {}
    first = True
    for number, row in enumerate(_rows(text, path, where), start=1):
        if not row or not row[0] or row[0].startswith("#"):
            continue
        header, first = first, False
        try:
            label = int(row[0])
        except ValueError:
            if header:
                continue
            raise ValidationError(f"{where} = {str(path)!r} line {number}: label {row[0][:40]!r} is not a whole number (expected: label, name{'' if colour_table else '[, tissue]'})") from None
        if label < 0:
            raise ValidationError(f"{where} = {str(path)!r} line {number}: label {label} is negative")
        if len(row) < 2:
            raise ValidationError(f"{where} = {str(path)!r} line {number}: label {label} has no name")
        if label in names:
            raise ValidationError(f"{where} = {str(path)!r} line {number}: label {label} is named twice ({names[label]!r}, {row[1]!r})")
        names[label] = _check_name(row[1], f"{where} = {str(path)!r}", number)
        if not colour_table and len(row) >= 3 and row[2]:
            check_choice(f"{where} = {str(path)!r} line {number} tissue", row[2], tissue_ids())
            tissues[label] = row[2]
    if not names:
        raise ValidationError(f"{where} = {str(path)!r}: cannot be parsed (no 'label name' lines)")
    return LabelNames(MappingProxyType(names), MappingProxyType(tissues), str(path))


def resolve_names(spec: str | None, embedded: Mapping[int, str], present: Mapping[int, int], where: str = "anatomy.names", base_dir: Path | None = None) -> LabelNames:
    """The names of a segmentation's labels from ``spec`` (module docstring); ``embedded`` are the
    names the file carries, ``present`` its labels (label -> voxels). A table naming labels that
    are not in the volume gives a warning, not an error (a class map names every class)."""
    if spec is None:
        if not embedded:
            raise ValidationError(
                f"{where} = None: the segmentation carries no names; give one of {', '.join(names_choices()[:2])}, {TOTALSEGMENTATOR}:<task>, {EMBEDDED} or a table file (.ctbl, .tsv, .txt, .csv)"
            )
        spec = EMBEDDED
    if not isinstance(spec, str) or not spec.strip():
        raise ValidationError(f"{where} = {spec!r}: must be {', '.join(BUILT_IN)}, {TOTALSEGMENTATOR}:<task>, {EMBEDDED} or a table file")
    if spec == EMBEDDED:
        if not embedded:
            raise ValidationError(f"{where} = 'embedded': the segmentation carries no names (only a Slicer .seg.nrrd or a folder of masks does); give a table or {TOTALSEGMENTATOR}")
        found = LabelNames(MappingProxyType(dict(embedded)), source="embedded in the segmentation")
    elif (table := _built_in(spec, where)) is not None:
        found = LabelNames(MappingProxyType(table), source=f"TotalSegmentator class map, task {BUILT_IN.get(spec, spec.split(':', 1)[-1])} (data/totalsegmentator_classes.toml)")
    else:
        path = Path(spec)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise ValidationError(f"{where} = {spec!r}: neither a names table file nor one of {', '.join(names_choices()[:2])}, {TOTALSEGMENTATOR}:<task>, {EMBEDDED}")
        found = read_table(path, where)
    absent = sorted(set(found.names) - set(present))
    warnings = ()
    if absent and set(found.names) & set(present):
        if spec not in BUILT_IN and not spec.startswith(f"{TOTALSEGMENTATOR}:"):
            warnings = (f"{where}: {len(absent)} label(s) of the table are not in the volume ({', '.join(map(str, absent[:8]))}{', ...' if len(absent) > 8 else ''})",)
    elif absent:
        raise ValidationError(
            f"{where} = {spec!r}: none of its labels ({', '.join(map(str, sorted(found.names)[:8]))}...) is in the volume (labels present: {', '.join(map(str, sorted(present)[:8]))}...); wrong table for this segmentation"
        )
    return LabelNames(found.names, found.tissues, found.source, warnings)


__all__ = ["EMBEDDED", "TOTALSEGMENTATOR", "LabelNames", "names_choices", "read_table", "resolve_names", "totalsegmentator_tasks"]
