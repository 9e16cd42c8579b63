"""Benchmark: wall time and peak memory of the default plan (lumbar medial branch, 18 G,
10 mm tip, 80 C, 90 s, parallel placement) end to end: anatomy, 3D RF solve, nerve outcome
and critical-structure risk. The axisymmetric default lesion is timed in the same process
as a reference (ratio printed).

    python bench/anatomy_plan.py [--repeat 3] [--template lumbar-medial-branch]

Issue 4 targets: <= 30 s and <= 4 GiB on the 2-core machine. Peak memory is the process's
maximum resident set size (getrusage), i.e. an upper bound for the plan alone.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time

from neurolysis.engines.rf.engine2d import simulate_rf
from neurolysis.examples import conventional_rf
from neurolysis.planning.plan import new_plan
from neurolysis.planning.simulate import simulate

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from rf_lesion import machine  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--template", default="lumbar-medial-branch")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    reference = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        simulate_rf(conventional_rf())
        reference.append(time.perf_counter() - started)
    plan = new_plan(args.template)
    times, outcome = [], None
    for _ in range(args.repeat):
        started = time.perf_counter()
        outcome = simulate(plan)
        times.append(time.perf_counter() - started)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: kB
    ref, med = statistics.median(reference), statistics.median(times)
    mesh = outcome.physics.engine.to_dict()["mesh"]
    print(f"axisymmetric default lesion (reference): median {ref:.2f} s of {args.repeat}")
    print(f"plan {args.template}: median {med:.1f} s of {args.repeat} (all: {', '.join(f'{t:.1f}' for t in times)}); ratio to reference {med / ref:.1f}")
    print(f"3D mesh: {mesh}")
    print(f"peak resident memory of the process: {peak_gib:.2f} GiB")
    t = outcome.target
    print(f"lesion {outcome.physics.engine.lesion.width_mm:.2f} x {outcome.physics.engine.lesion.length_mm:.2f} mm; pain fibres killed {t.pain_fibres_killed_fraction:.3f}; block {t.pain_block}")
    print(f"targets: {'met' if med <= 30 and peak_gib <= 4 else 'MISSED'} (<= 30 s, <= 4 GiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
