"""``neurolysis cases list|show|export|delete|tag|note`` and ``simulate --save [--tag T] [--note TEXT]
[--parent ID] [--store PATH_OR_URL]``.

Only argparse and the standard library at import (with the store's stdlib-only checks):
SQLAlchemy is imported when a command opens the store. Locations, ids and tags are checked
while the arguments are parsed, so a bad one fails in one line (exit 2) before any solve.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from neurolysis.output import check_output_path, print_json, write_text_atomic
from neurolysis.report.outcome_table import print_outcome
from neurolysis.store.case import Case, check_case_ref, check_notes, check_tag
from neurolysis.store.location import ENVIRONMENT_VARIABLE, STORE_EXTRA_MISSING, store_url
from neurolysis.validation import ValidationError

_EXTRA_MODULES = {"sqlalchemy", "alembic", "psycopg", "psycopg_binary", "platformdirs"}


def _parsed_by(check, name: str):
    """An argparse ``type`` from a one-line check: its ValidationError becomes argparse's message."""

    def convert(text: str):
        try:
            check(text)
        except ValidationError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        return text.strip() if check is check_case_ref else text

    convert.__name__ = name
    return convert


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"limit = {text!r}: allowed: a whole number >= 1")
    return value


_LOCATION = _parsed_by(store_url, "store")
_CASE_ID = _parsed_by(check_case_ref, "case id")
_PARENT_ID = _parsed_by(lambda text: check_case_ref(text, "parent_id"), "parent id")
_TAG = _parsed_by(check_tag, "tag")
_NOTES = _parsed_by(check_notes, "note")


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    """``--store PATH_OR_URL`` (default: $NEUROLYSIS_STORE, else the user data folder's SQLite file)."""
    parser.add_argument(
        "--store",
        metavar="PATH_OR_URL",
        type=_LOCATION,
        help=f"case store: a file path, sqlite:///..., or postgresql+psycopg://... (default: ${ENVIRONMENT_VARIABLE}, else cases.db in the user data folder)",
    )


def store_from_args(args: argparse.Namespace):
    """The :class:`~neurolysis.store.CaseStore` at ``args.store`` (None: the default location); a
    missing ``store`` extra is a ValidationError (one line from the CLI)."""
    try:
        from neurolysis.store.casestore import open_store
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] in _EXTRA_MODULES:
            raise ValidationError(STORE_EXTRA_MISSING) from None
        raise
    return open_store(getattr(args, "store", None))


def add_save_arguments(parser: argparse.ArgumentParser) -> None:
    """``simulate``'s ``--save [--tag T]... [--note TEXT] [--parent ID] [--store ...]``."""
    parser.add_argument("--save", action="store_true", help="save the plan, its settings, outcome and HTML report as a case in the store (see `neurolysis cases`)")
    parser.add_argument("--tag", action="append", default=[], type=_TAG, metavar="T", help="with --save: tag the case (repeatable)")
    parser.add_argument("--note", type=_NOTES, metavar="TEXT", help="with --save: a free-text note on the case")
    parser.add_argument("--parent", type=_PARENT_ID, metavar="ID", help="with --save: the stored case this plan was changed from (id or unique prefix)")
    add_store_argument(parser)


def check_save(args: argparse.Namespace) -> None:
    """Before the solve (``cli._run_simulate`` may call it after ``prepare``): --tag, --note and
    --parent need --save; the store opens (created or migrated: $NEUROLYSIS_STORE is checked
    too) and holds ``--parent``. So these fail in one line before any computation."""
    if not getattr(args, "save", False):
        given = [flag for flag, value in (("--tag", args.tag), ("--note", args.note), ("--parent", args.parent)) if value]
        if given:
            raise ValidationError(f"{given[0]} = {getattr(args, given[0][2:])!r}: allowed only with --save")
        return
    with store_from_args(args) as store:
        if args.parent is not None:
            store.resolve_id(args.parent, field="parent_id")


def save_simulated(args: argparse.Namespace, plan_toml: str, outcome) -> None:
    """Store a simulated plan (after the outcome is delivered) with its HTML report; prints the
    case id to stderr (stdout keeps the outcome, one JSON object with --json)."""
    from neurolysis.store.casestore import save_outcome

    with store_from_args(args) as store:
        if args.parent is not None:
            store.resolve_id(args.parent, field="parent_id")  # an unknown parent fails before the report is built
        from neurolysis.report.html import build_report  # Jinja2 and matplotlib: only when a case is saved

        case = save_outcome(store, outcome, plan_toml, report_html=build_report(outcome), tags=args.tag, notes=args.note or "", parent_id=args.parent)
        print(f"neurolysis: saved case {case.id} to {store.url}", file=sys.stderr)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``neurolysis cases list|show|export|delete|tag|note``."""
    sub = parser.add_subparsers(dest="cases_command", required=True, metavar="{list,show,export,delete,tag,note}")

    def command(name: str, help: str, *, with_id: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        if with_id:
            p.add_argument("id", type=_CASE_ID, help="case id, or a unique prefix of at least 6 hex digits")
        add_store_argument(p)
        p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
        return p

    listing = command("list", "saved cases, newest first: id, date, method, target, verdict, relief, tags, parent", with_id=False)
    listing.add_argument("--tag", type=_TAG, help="only cases with this tag")
    listing.add_argument("--limit", type=_positive_int, metavar="N", help="at most N cases")
    command("show", "one case: metadata, the plan as written and the outcome")
    export = command("export", "write plan.toml (as written), settings.json, outcome.json, report.html and case.json to a new folder")
    export.add_argument("-o", "--output", metavar="DIR", help="the folder to create (default case-<id>); it must not exist or be empty")
    command("delete", "delete a case with its report and tags")
    tag = command("tag", "add tags to a case (annotations: the content never changes)")
    tag.add_argument("tags", nargs="+", type=_TAG, metavar="T")
    note = command("note", "replace a case's notes (annotations: the content never changes)")
    note.add_argument("text", type=_NOTES, metavar="TEXT")


def _relief(months) -> str:
    if not isinstance(months, int | float):
        return "-"
    return f"{months:.1f}" if months >= 1 else f"{months:.2g}"


def _verdict(summary: dict) -> str:
    if summary["pain_block"] is None:
        return "-"
    if not summary["pain_block"]:
        return "no"
    return "temporary" if summary["method"] == "block" else "yes"


def _list(args, store) -> int:
    cases = store.list(tag=args.tag, limit=args.limit)
    if args.json:
        return print_json({"store": store.url, "cases": [c.to_dict() for c in cases]})

    table = Table(
        "id", "created (UTC)", "method", "template / target", "pain blocked", "relief (months)", "parent", "tags", title=f"{len(cases)} case(s) in {store.url}", box=box.SIMPLE_HEAD, pad_edge=False
    )
    for column in (table.columns[0], table.columns[6]):
        column.no_wrap = True  # ids are copied from here: never cut
    for c in cases:
        s = c.summary()
        where = "\n".join(str(x) for x in (s["anatomy"], s["target"]) if x) or "-"
        table.add_row(c.id, c.created_at.strftime("%Y-%m-%d %H:%M"), str(s["method"] or "-"), where, _verdict(s), _relief(s["relief_months_median"]), (c.parent_id or "")[:8], ", ".join(c.tags))
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # a file or a pipe: one case a line, nothing cut
    console.print(table)
    return 0


class _StoredOutcome:
    """A stored outcome JSON where the terminal report expects an Outcome (it reads ``to_dict()`` only)."""

    def __init__(self, outcome: dict):
        self._outcome = outcome

    def to_dict(self) -> dict:
        return self._outcome


def _print_case(case: Case, store_url_shown: str) -> None:
    console = Console()
    info = Table(show_header=False, box=None)
    rows = [
        ("case", case.id), ("store", store_url_shown), ("created (UTC)", case.created_at.strftime("%Y-%m-%d %H:%M:%S")),
        ("neurolysis version", case.version), ("content hash (sha256)", case.content_hash), ("tags", ", ".join(case.tags) or "-"),
        ("parent", case.parent_id or "-"), ("report", "stored (cases export)" if case.has_report else "none"), ("notes", case.notes or "-"),
    ]  # fmt: skip
    for key, value in rows:
        info.add_row(key, value)
    console.print(info)
    console.rule("plan (as written)")
    sys.stdout.write(case.plan_toml if case.plan_toml.endswith("\n") else case.plan_toml + "\n")  # as written: no wrapping, no markup
    sys.stdout.flush()
    console.rule("outcome")

    try:
        print_outcome(_StoredOutcome(case.outcome))
    except (KeyError, TypeError, AttributeError):  # an outcome saved through the API in another shape
        console.print("the outcome is not in the form of `simulate --json`: see `neurolysis cases show ID --json`")


def _export(args, store) -> int:
    case = store.get(args.id)
    target = Path(args.output or f"case-{case.id}")
    if target.exists() and not (target.is_dir() and not any(target.iterdir())):
        raise ValidationError(f"output = {str(target)!r}: exists and is not an empty folder; give a new folder")
    if not target.exists():
        check_output_path(target)  # its parent exists and is writable
    files = {
        "plan.toml": case.plan_toml,
        "settings.json": json.dumps(case.settings, indent=2) + "\n",
        "outcome.json": json.dumps(case.outcome, indent=2) + "\n",
        **({"report.html": case.report_html} if case.report_html is not None else {}),
    }
    metadata = {k: v for k, v in case.to_dict().items() if k not in ("plan_toml", "settings", "outcome")} | {"files": [*files, "case.json"]}
    files["case.json"] = json.dumps(metadata, indent=2) + "\n"
    staging = Path(tempfile.mkdtemp(dir=target.absolute().parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        for name, text in files.items():
            write_text_atomic(text, staging / name)
        staging.chmod(0o755)
        staging.rename(target)  # all files appear at once; an empty folder is replaced
    except OSError as error:
        raise ValidationError(f"output = {str(target)!r}: cannot write ({error.strerror or error})") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)
    if args.json:
        return print_json({"case": case.id, "directory": str(target), "files": sorted(files)})
    print(f"neurolysis: case {case.id} exported to {target}/ ({', '.join(sorted(files))})")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run one ``cases`` subcommand; 0 on success (errors are ValidationError: one line, exit 2)."""
    with store_from_args(args) as store:
        command = args.cases_command
        if command == "list":
            return _list(args, store)
        if command == "export":
            return _export(args, store)
        if command == "delete":
            case_id = store.resolve_id(args.id)
            store.delete(case_id)
            if args.json:
                return print_json({"deleted": case_id, "store": store.url})
            print(f"neurolysis: deleted case {case_id} from {store.url}")
            return 0
        if command == "tag":
            case = store.add_tags(args.id, args.tags)
        elif command == "note":
            case = store.set_notes(args.id, args.text)
        else:
            case = store.get(args.id)
        if args.json:
            return print_json(case.to_dict())
        _print_case(case, store.url)
        return 0


__all__ = ["add_arguments", "add_save_arguments", "add_store_argument", "check_save", "run", "save_simulated", "store_from_args"]
