"""What the commands show on a terminal while they solve: a progress bar on stderr, then the
figure, JSON or table of the answer."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from neurolysis.output import print_json


def progress_bar(enabled: bool) -> tuple[contextlib.AbstractContextManager, Callable[[float], None] | None]:
    """A rich progress bar on stderr (a context manager) and its ``progress(fraction)``; when not
    ``enabled``, a context that does nothing and None."""
    if not enabled:
        return contextlib.nullcontext(), None
    progress = Progress(
        TextColumn("simulating"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
        console=Console(stderr=True), transient=True,
    )  # fmt: skip
    task = progress.add_task("rf", total=1.0)
    return progress, lambda fraction: progress.update(task, completed=fraction)


def deliver(args: argparse.Namespace, result, plot, print_table) -> int:
    """The common tail of a solve: optional figure, then JSON or a table on stdout."""
    if plot is not None:
        plot(result, args.plot)
        if not args.quiet:
            print(f"neurolysis: figure written to {args.plot}", file=sys.stderr)
    if args.json:
        return print_json(result.to_dict())
    print_table(result)
    return 0


__all__ = ["deliver", "progress_bar"]
