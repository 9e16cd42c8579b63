"""The ``neurolysis`` command's entry point, light to start: the top-level help comes from the
registry below without importing the planner, and a command imports its own module only when it
runs (as large command lines do), so that those modules keep their imports at the top.

User errors print one line ``neurolysis: error: <field> = <value>: <allowed>`` to stderr
and exit with status 2, before any computation.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from neurolysis.about import DISCLAIMER
from neurolysis.validation import ValidationError

EXIT_USAGE = 2


@dataclass(frozen=True)
class Command:
    """A command of the registry: its one-line help and where it lives (``module``, the function
    that adds its arguments to a parser, the function that runs it on the parsed arguments)."""

    help: str
    module: str
    add_arguments: str = "add_arguments"
    run: str = "run"

    def load(self) -> tuple[Callable, Callable]:
        """(add_arguments, run), importing the command's module now."""
        module = importlib.import_module(self.module)
        return getattr(module, self.add_arguments), getattr(module, self.run)


REGISTRY = {
    "rf": Command("simulate a radiofrequency lesion around one needle", "neurolysis.rf_cli"),
    "devices": Command("list the electrode and probe catalog", "neurolysis.listing", run="run_devices"),
    "tissues": Command("list the tissue property catalog", "neurolysis.listing", run="run_tissues"),
    "fluids": Command("list the fluids an RF plan can inject before the lesion (--pre-injection)", "neurolysis.listing", run="run_fluids"),
    "templates": Command("list anatomy templates, their target nerves and critical structures", "neurolysis.listing", run="run_templates"),
    "methods": Command("list the methods a plan can use, their [procedure] fields, defaults and choices", "neurolysis.methods_cli"),
    "plan": Command("write plan files", "neurolysis.plan_cli", "add_plan_arguments", "run_plan"),
    "simulate": Command("simulate a plan: lesion, nerve outcome, relief and critical-structure risk", "neurolysis.plan_cli", "add_simulate_arguments", "run_simulate"),
    "compare": Command("every method at one target side by side: P(block), relief, procedures, risk, burden", "neurolysis.decide_cli", "add_compare_arguments", "run_compare"),
    "optimize": Command("search placement and settings for the best block under a risk limit", "neurolysis.decide_cli", "add_optimize_arguments", "run_optimize"),
    "indications": Command("list indications: targets, methods, evidence, coverage (sources and tags with --json)", "neurolysis.indications_cli"),
    "report": Command("write one self-contained HTML report of a plan (verdict, figures, risk, uncertainty, comparison, sources)", "neurolysis.report.command"),
    "cases": Command("the case store: list, show, export or delete saved cases", "neurolysis.store.command"),
    "serve": Command("the web planner and its HTTP API (FastAPI) on 127.0.0.1:8000", "neurolysis.web.command"),
    "anatomy": Command("a patient's segmentation: what the planner reads in it", "neurolysis.anatomy.imaging.command"),
    "stimulate": Command("the stimulation test before RF: sensory and motor thresholds (V, mA) against needle offset", "neurolysis.stimulate_cli"),
    "sweep": Command("run a grid or random sweep of a plan's fields on Dask; results to Parquet", "neurolysis.sweep.command"),
}
"""Every command, in the order ``neurolysis --help`` lists them; only the module of the command
that runs is imported."""

COMMANDS = {name: command.help for name, command in REGISTRY.items()}
"""Every command's one-line help."""


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


def _parser_with_commands() -> tuple[_Parser, dict[str, _Parser]]:
    """The top-level parser and each command's (still empty) parser, without importing any command."""
    parser = _Parser(prog="neurolysis", description=f"Neurolysis Planner ({DISCLAIMER}).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    return parser, {name: sub.add_parser(name, help=command.help) for name, command in REGISTRY.items()}


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, every command and option (imports every command's module: for
    tests and documentation; :func:`main` builds only the parser of the command that runs)."""
    parser, commands = _parser_with_commands()
    for name, command_parser in commands.items():
        add, _ = REGISTRY[name].load()
        add(command_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``neurolysis``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["-h"], ["--help"]):
        sys.stdout.write(top_level_help())
        return 0
    if not args or args[0] not in REGISTRY:  # argparse's own message: a missing or unknown command
        _parser_with_commands()[0].parse_args(args)
    name, rest = args[0], args[1:]
    command = REGISTRY[name]
    add, run = command.load()
    parser = _Parser(prog=f"neurolysis {name}", description=command.help)
    add(parser)
    parsed = parser.parse_args(rest)
    parsed.command = name
    try:
        return run(parsed)
    except ValidationError as error:
        print(f"neurolysis: error: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
