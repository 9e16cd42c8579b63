"""The ``neurolysis`` command's entry point, light to start: the top-level help comes from the
registry below without importing the planner; a command runs from :mod:`neurolysis.commands`,
imported only then (as large command lines do).

User errors print one line ``neurolysis: error: <field> = <value>: <allowed>`` to stderr
and exit with status 2, before any computation.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from neurolysis.about import DISCLAIMER

EXIT_USAGE = 2

COMMANDS = {
    "rf": "simulate a radiofrequency lesion around one needle",
    "devices": "list the electrode and probe catalog",
    "tissues": "list the tissue property catalog",
    "fluids": "list the fluids an RF plan can inject before the lesion (--pre-injection)",
    "templates": "list anatomy templates, their target nerves and critical structures",
    "methods": "list the methods a plan can use, their [procedure] fields, defaults and choices",
    "plan": "write plan files",
    "simulate": "simulate a plan: lesion, nerve outcome, relief and critical-structure risk",
    "compare": "every method at one target side by side: P(block), relief, procedures, risk, burden",
    "optimize": "search placement and settings for the best block under a risk limit",
    "indications": "list indications: targets, methods, evidence, coverage (sources and tags with --json)",
    "report": "write one self-contained HTML report of a plan (verdict, figures, risk, uncertainty, comparison, sources)",
    "cases": "the case store: list, show, export or delete saved cases",
    "serve": "the web planner and its HTTP API (FastAPI) on 127.0.0.1:8000",
    "anatomy": "a patient's segmentation: what the planner reads in it",
    "stimulate": "the stimulation test before RF: sensory and motor thresholds (V, mA) against needle offset",
    "sweep": "run a grid or random sweep of a plan's fields on Dask; results to Parquet",
}
"""Every command and its one-line help, in the order ``neurolysis --help`` lists them (the full
parser, :func:`neurolysis.commands.build_parser`, takes its help from here)."""


LIGHT = {"templates": ("neurolysis.listing", "add_arguments", "run_templates")}
"""Commands whose module is light (no solver, no SciPy): run without importing the rest of the
command line. (module, function adding the arguments, runner)."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (no usage block) with exit code 2,
    with the same ``neurolysis: error:`` prefix as every other error."""

    def error(self, message: str):
        command = self.prog.removeprefix("neurolysis").strip()  # "simulate", "plan new", or "" at the top
        self.exit(EXIT_USAGE, f"neurolysis: error: {command + ': ' if command else ''}{message}\n")


def top_level_help() -> str:
    """What ``neurolysis --help`` prints: the commands with their help."""
    width = max(len(name) for name in COMMANDS) + 4
    rows = "\n".join(f"    {name:<{width}}{text}" for name, text in COMMANDS.items())
    return (f"usage: neurolysis [-h] {{{','.join(COMMANDS)}}} ...\n\nNeurolysis Planner ({DISCLAIMER}).\n\n"
            f"positional arguments:\n  {{{','.join(COMMANDS)}}}\n{rows}\n\noptions:\n  -h, --help  show this help message and exit\n\n"
            "`neurolysis COMMAND --help` lists a command's options.\n")  # fmt: skip


def build_parser():
    """The full argument parser (every command and option): :func:`neurolysis.commands.build_parser`."""
    from neurolysis.commands import build_parser as full

    return full()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``neurolysis``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["-h"], ["--help"]):
        sys.stdout.write(top_level_help())
        return 0
    if args and args[0] in LIGHT:
        from neurolysis.validation import ValidationError

        module_name, add, run = LIGHT[args[0]]
        module = importlib.import_module(module_name)
        parser = _Parser(prog=f"neurolysis {args[0]}", description=COMMANDS[args[0]])
        getattr(module, add)(parser)
        try:
            return getattr(module, run)(parser.parse_args(args[1:]))
        except ValidationError as error:
            print(f"neurolysis: error: {error}", file=sys.stderr)
            return EXIT_USAGE
    from neurolysis.commands import main as run_command

    return run_command(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
