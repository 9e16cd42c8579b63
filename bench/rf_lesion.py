"""Benchmark: wall time of the default 90 s conventional RF lesion at its verified mesh,
and the same problem solved with NGSolve at equal accuracy, as a ratio from the same run.

    python bench/rf_lesion.py            # needs the `bench` extra (ngsolve) for the reference
    python bench/rf_lesion.py --repeat 5

Prints the machine, each wall time and the ratio; docs/benchmarks.md records the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy

from neurolysis.engines.rf.engine2d import simulate_rf
from neurolysis.examples import conventional_rf


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"NumPy {np.__version__}, SciPy {scipy.__version__}"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-ngsolve", action="store_true")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    settings = conventional_rf()
    simulate_rf(settings.with_(time_s=5.0))  # warm imports and caches
    times, result = [], None
    for _ in range(args.repeat):
        started = time.perf_counter()
        result = simulate_rf(settings)
        times.append(time.perf_counter() - started)
    ours = statistics.median(times)
    lesion = result.lesion
    print(
        f"neurolysis: default lesion (18 G, 10 mm, 80 C, 90 s) {lesion.width_mm:.3f} x {lesion.length_mm:.3f} mm, "
        f"{result.mesh['nodes']} nodes, {result.mesh['time_steps']} steps: wall {ours:.3f} s (median of {args.repeat}; "
        f"min {min(times):.3f} s); target <= 2 s"
    )
    if args.skip_ngsolve:
        return 0
    try:
        sys.path.insert(0, str(Path(__file__).parent))
        from ngsolve_reference import find_equal_accuracy_maxh, solve_default_lesion_ngsolve
    except ImportError as error:
        print(f"NGSolve reference skipped: {error} (pip install -e '.[bench]')")
        return 0
    converged = simulate_rf(settings.with_(h_fine_mm=0.05)).lesion
    found = find_equal_accuracy_maxh(settings.resolved(), converged.width_mm, converged.length_mm)
    maxh = found["maxh_mm"]
    ng_times = []
    for _ in range(args.repeat):
        ng = solve_default_lesion_ngsolve(settings.resolved(), maxh)
        ng_times.append(ng["wall_s"])
    theirs = statistics.median(ng_times)
    print(
        f"NGSolve: maxh {maxh:g} mm (equal accuracy: width and length within {found['tol_mm']:g} mm of NGSolve's "
        f"converged maxh {found['converged']['maxh_mm']:g} mm), {ng['ndof']} dofs: {ng['width_mm']:.3f} x "
        f"{ng['length_mm']:.3f} mm, wall {theirs:.3f} s (median of {args.repeat}; min {min(ng_times):.3f} s)"
    )
    dw, dl = found["offset_to_reference_mm"]
    print(f"converged NGSolve - converged neurolysis (h 0.05 mm): width {dw:+.3f} mm, length {dl:+.3f} mm")
    print(f"ratio NGSolve / neurolysis wall time: {theirs / ours:.2f} (> 1: neurolysis is faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
