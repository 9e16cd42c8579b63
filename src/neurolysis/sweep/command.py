"""The ``neurolysis sweep`` command (argparse and the standard library at import; Dask, pyarrow
and the store are imported when it runs).

Everything is checked before a cluster starts: the options, the sweep file, every point's plan,
the output folder and the store. Exit status 0, 1 if a point failed at run time, 2 for bad input.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path

from neurolysis.output import check_output_path, print_json
from neurolysis.store.case import check_tags
from neurolysis.store.command import add_store_argument, store_from_args
from neurolysis.sweep.spec import load_sweep
from neurolysis.validation import ValidationError, check_range

DEFAULT_WORKERS = 2
MAX_WORKERS = 256
SWEEP_EXTRA_MODULES = ("distributed", "pyarrow")
SCHEDULER_FORM = re.compile(r"(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep", help='sweep file (TOML): base = "plan.toml", [vary] lists per plan field, optional [random] (docs/sweep.md)')
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run on this Dask scheduler's workers (default: a local cluster)")
    parser.add_argument("--workers", type=int, metavar="N", help=f"worker processes of the local cluster, one thread each (default {DEFAULT_WORKERS})")
    parser.add_argument("--out", metavar="DIR", help="results folder (default: <sweep file stem>-results beside the sweep file); a rerun skips finished points")
    parser.add_argument("--save", action="store_true", help="store every point as a case (tagged sweep:<sweep file stem>)")
    parser.add_argument("--tag", action="append", default=[], metavar="T", help="with --save: tag every case (repeatable)")
    add_store_argument(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON summary object to stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")


def _check_options(args: argparse.Namespace):
    if args.scheduler is not None:
        match = SCHEDULER_FORM.fullmatch(args.scheduler)
        if match is None or not 1 <= int(match.group(3)) <= 65535:
            raise ValidationError(f"scheduler = {args.scheduler!r}: allowed form is tcp://HOST:PORT (port 1-65535), e.g. tcp://127.0.0.1:8786")
        if args.workers is not None:
            raise ValidationError(f"workers = {args.workers}: only for the local cluster; with --scheduler the scheduler's own workers run the points")
    if args.workers is not None:
        check_range("workers", args.workers, 1, MAX_WORKERS)
    if not args.save:
        if args.tag:
            raise ValidationError(f"tag = {args.tag[0]!r}: only used with --save")
        if args.store is not None:
            raise ValidationError(f"store = {args.store!r}: only used with --save")


def _check_extra() -> None:
    """Dask and pyarrow are installed (the ``sweep`` extra), else one line saying how to get them."""

    missing = [name for name in SWEEP_EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ValidationError(f"the sweep command needs the sweep extra: pip install 'neurolysis[sweep]' (missing: {', '.join(missing)})")


def _out_dir(given: str | None, default: Path) -> Path:
    out = Path(given) if given is not None else default
    if out.exists() and not out.is_dir():
        raise ValidationError(f"out = {str(out)!r}: is a file; give a folder")
    if not out.exists() and not out.absolute().parent.is_dir():
        raise ValidationError(f"out = {str(out)!r}: folder {str(out.absolute().parent)!r} does not exist")
    return out


class _Saver:
    """``--save``: the store, opened before any computation, and each point's case as it comes
    (``CaseStore.save``: the point's plan as TOML, its settings and outcome; no report)."""

    def __init__(self, args: argparse.Namespace, sweep) -> None:
        self.tags = check_tags((*args.tag, f"sweep:{sweep.stem}"))
        self.store = store_from_args(args)
        self.case_ids: dict[int, str] = {}

    def __call__(self, point, record: dict) -> None:
        case = self.store.save(plan_toml=point.plan_text, settings=record["outcome"]["settings"], outcome=record["outcome"], tags=self.tags)
        self.case_ids[point.index] = case.id

    def summary(self) -> dict:
        return {"store": self.store.url, "case_ids": {str(i): self.case_ids[i] for i in sorted(self.case_ids)}}


def run(args: argparse.Namespace) -> int:
    _check_options(args)
    _check_extra()
    sweep = load_sweep(args.sweep)  # every point loaded and prepared: bad input stops here
    out_dir = _out_dir(args.out, sweep.default_out_dir)
    check_output_path(out_dir / "results.parquet" if out_dir.is_dir() else out_dir, "out")  # writable; made once the cluster is up
    saver = _Saver(args, sweep) if args.save else None
    from neurolysis.sweep.run import run_sweep  # dask and pyarrow: only now

    try:
        done = run_sweep(sweep, out_dir, scheduler=args.scheduler, workers=args.workers or DEFAULT_WORKERS, progress=not args.quiet and sys.stderr.isatty(), save=saver)
    finally:
        if saver is not None:
            saver.store.close()
    points = {p.index: p for p in sweep.points}
    for index, error in done.failed:
        print(f"neurolysis: sweep point {index} ({points[index].describe()}) failed: {error}", file=sys.stderr)
    if args.json:
        print_json(done.to_dict() | (saver.summary() if saver is not None else {}))
    else:
        print(f"neurolysis: sweep {sweep.path.name}: {len(sweep.points)} points: {done.computed} computed, {done.skipped} skipped (done before), "
              f"{len(done.failed)} failed; {done.wall_time_s:.1f} s " + (f"on {done.cluster}" if done.workers else "(nothing to compute: no cluster started)"))  # fmt: skip
        print(f"results: {done.results} (one row per point); each point: {out_dir / 'points'}/<key>.json")
        if saver is not None:
            print(f"{done.saved} cases in {saver.store.url} (new ones stored, stored ones tagged: {', '.join(saver.tags)})")
    return 1 if done.failed else 0
