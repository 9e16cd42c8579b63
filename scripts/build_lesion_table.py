"""Build the instant-lesion table (data/lesion_table.toml) from the verified axisymmetric engine,
and measure its error at points it was not built from (data/lesion_table_check.toml).

    .venv/bin/python scripts/build_lesion_table.py               # the table (about 10 min on 2 cores)
    .venv/bin/python scripts/build_lesion_table.py --check 40    # 40 held-out random points

Rebuild after any change to the RF engine, the tissues or the damage model: tests compare a few
table entries with fresh solves (tests/verification/test_lesion_table.py).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import itertools  # noqa: E402
import multiprocessing  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "src" / "neurolysis" / "data"
GAUGES = (16, 18, 20, 22)
GRID = {"tip_mm": (5.0, 10.0, 15.0), "set_temp_c": (60.0, 70.0, 80.0, 90.0), "time_s": (60.0, 90.0, 120.0, 180.0)}
TABLES = (("conventional", "muscle"), ("conventional", "fat"))
OUTPUTS = ("width_mm", "length_mm", "distal_mm", "proximal_mm", "volume_mm3")


def _solve(job) -> tuple:
    from neurolysis.engines.rf.engine2d import simulate_rf
    from neurolysis.engines.rf.settings import RFSettings

    mode, tissue, gauge, tip, temp, seconds, margin_mm = job
    lesion = simulate_rf(RFSettings(mode=mode, tissue=tissue, gauge=gauge, tip_mm=tip, set_temp_c=temp, time_s=seconds, fine_margin_mm=margin_mm)).lesion
    return job, tuple(float(getattr(lesion, k)) for k in OUTPUTS)


def _run(jobs, processes: int) -> dict:
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        return dict(pool.imap_unordered(_solve, jobs, chunksize=2))


def build(processes: int) -> None:
    """The table's solves keep the fixed fine region (FINE_MARGIN_DEFAULT_MM): the solver's own
    default follows the lesion this table expects, so it cannot be what builds the table."""
    from neurolysis import devices as catalog
    from neurolysis.engines.rf.engine2d import FINE_MARGIN_DEFAULT_MM

    started = time.perf_counter()
    jobs = [(mode, tissue, g, tip, temp, t, FINE_MARGIN_DEFAULT_MM) for mode, tissue in TABLES for g in GAUGES
            for tip, temp, t in itertools.product(*GRID.values())]  # fmt: skip
    results = _run(jobs, processes)
    lines = [
        "# The instant RF lesion: Arrhenius lesions of the verified axisymmetric engine (default mesh with",
        f"# its fixed {FINE_MARGIN_DEFAULT_MM:g} mm fine region, default time step, in vivo, monopolar, generator",
        "# defaults for ramp and power) on a grid, built by",
        f"# scripts/build_lesion_table.py ({len(jobs)} solves, {time.perf_counter() - started:.0f} s on {processes} processes).",
        "# Values are row-major over (outer_diameter_mm, tip_mm, set_temp_c, time_s). A model output.",
        "",
        "[meta]",
        f"gauges = {list(GAUGES)}",
        "defaults = { ramp = \"generator\", max_power = \"generator\", damage_model = \"default\" }",
        "",
    ]
    for mode, tissue in TABLES:
        lines += ["[[table]]", f'mode = "{mode}"', f'tissue = "{tissue}"',
                  f"outer_diameter_mm = {[round(catalog.outer_radius_m(g) * 2e3, 4) for g in GAUGES]}",
                  *(f"{k} = {list(v)}" for k, v in GRID.items())]  # fmt: skip
        for i, key in enumerate(OUTPUTS):
            values = [results[(mode, tissue, g, tip, temp, t, FINE_MARGIN_DEFAULT_MM)][i] for g in GAUGES for tip, temp, t in itertools.product(*GRID.values())]
            lines.append(f"{key} = [{', '.join(f'{v:.4g}' for v in values)}]")
        lines.append("")
    (DATA / "lesion_table.toml").write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {DATA / 'lesion_table.toml'} in {time.perf_counter() - started:.0f} s")


def check(points: int, processes: int, seed: int = 20) -> None:
    """Random settings inside the table's span (never a grid point), table against the full solve a user
    gets (its fine region fitted to the expected lesion)."""
    from neurolysis.engines.rf.lesion_table import instant_lesion
    from neurolysis.engines.rf.settings import RFSettings

    rng = np.random.default_rng(seed)
    jobs = []
    for k in range(points):
        mode, tissue = TABLES[k % len(TABLES)]
        jobs.append((mode, tissue, int(rng.choice((17, 18, 20, 22, 16))), round(float(rng.uniform(5, 15)), 2), round(float(rng.uniform(60, 90)), 1),
                     round(float(rng.uniform(60, 180)), 0), None))  # fmt: skip
    results = _run(jobs, processes)
    lines = ["# The instant lesion against full axisymmetric solves at held-out random points",
             f"# (scripts/build_lesion_table.py --check {points}, seed {seed}). Errors: table - full.", ""]
    rows = []
    for job in jobs:
        mode, tissue, g, tip, temp, t, _ = job
        table = instant_lesion(RFSettings(mode=mode, tissue=tissue, gauge=g, tip_mm=tip, set_temp_c=temp, time_s=t))
        full = dict(zip(OUTPUTS, results[job], strict=True))
        if not table.in_range:
            rows.append((job, None, full, table.reason))
            continue
        rows.append((job, {k: getattr(table, k) for k in OUTPUTS}, full, ""))
    answered = [r for r in rows if r[1] is not None]
    err = {k: np.array([r[1][k] - r[2][k] for r in answered]) for k in ("width_mm", "length_mm")}
    vol = np.array([(r[1]["volume_mm3"] - r[2]["volume_mm3"]) / max(r[2]["volume_mm3"], 1e-9) for r in answered])
    lines += ["[summary]", f"points = {len(rows)}", f"answered = {len(answered)}",
              f"width_abs_error_mm_max = {np.abs(err['width_mm']).max():.4f}", f"width_abs_error_mm_p95 = {np.percentile(np.abs(err['width_mm']), 95):.4f}",
              f"length_abs_error_mm_max = {np.abs(err['length_mm']).max():.4f}", f"length_abs_error_mm_p95 = {np.percentile(np.abs(err['length_mm']), 95):.4f}",
              f"volume_rel_error_max = {np.abs(vol).max():.4f}", f"volume_rel_error_p95 = {np.percentile(np.abs(vol), 95):.4f}", ""]  # fmt: skip
    for job, table, full, reason in rows:
        mode, tissue, g, tip, temp, t, _ = job
        lines += ["[[point]]", f'mode = "{mode}"', f'tissue = "{tissue}"', f"gauge = {g}", f"tip_mm = {tip}", f"set_temp_c = {temp}", f"time_s = {t}",
                  "full = { " + ", ".join(f"{k} = {v:.4g}" for k, v in full.items()) + " }"]  # fmt: skip
        lines.append("table = { " + ", ".join(f"{k} = {v:.4g}" for k, v in table.items()) + " }" if table else f'outside = "{reason}"')
        lines.append("")
    (DATA / "lesion_table_check.toml").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines[3:13]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", type=int, metavar="N", help="measure the error at N held-out points instead")
    ap.add_argument("--processes", type=int, default=2)
    args = ap.parse_args(argv)
    if args.check:
        check(args.check, args.processes)
    else:
        build(args.processes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
