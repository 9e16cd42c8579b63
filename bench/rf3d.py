"""3D RF engine: default lesion (18 G, 10 mm, 80 C, 90 s, muscle) against the axisymmetric
engine, at the default mesh and one refinement; wall time, peak memory, node count.

Issue 4 gates: width and length within 5 % of the axisymmetric solve; change under
refinement < 0.2 mm; a whole default plan <= 30 s and <= 4 GiB on 2 cores.

    .venv/bin/python bench/rf3d.py [--factor 1.5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path

import numpy as np

from neurolysis.engines.rf.engine2d import simulate_rf
from neurolysis.engines.rf.engine3d import DEFAULT_MESH, simulate_rf3d
from neurolysis.engines.rf.settings import RFSettings
from neurolysis.fields import NeedlePose

OUT = Path(__file__).parent / "results" / "rf3d.json"


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB -> GiB


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--factor", type=float, default=1.5, help="refinement factor (h / factor, sectors x factor)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    pose = [NeedlePose(np.zeros(3), np.array([0.0, 0.0, -1.0]))]
    t0 = time.perf_counter()
    ref = simulate_rf(RFSettings()).lesion
    t2d = time.perf_counter() - t0
    times, result = [], None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        result = simulate_rf3d(RFSettings(), pose)
        times.append(time.perf_counter() - t0)
    mem_default = peak_gib()
    fine_spec = DEFAULT_MESH.refined(args.factor)
    t0 = time.perf_counter()
    fine = simulate_rf3d(RFSettings(), pose, mesh=fine_spec)
    t_fine = time.perf_counter() - t0
    dt1 = simulate_rf3d(RFSettings(), pose, dt_s=1.0)
    out = {
        "axisymmetric": {"width_mm": ref.width_mm, "length_mm": ref.length_mm, "volume_mm3": ref.volume_mm3, "wall_time_s": t2d},
        "default": {
            "nodes": result.mesh["nodes"], "tets": result.mesh["elements"], "width_mm": result.lesion.width_mm,
            "length_mm": result.lesion.length_mm, "volume_mm3": result.lesion.volume_mm3,
            "wall_time_s_median": statistics.median(times), "wall_time_s_all": times, "peak_memory_gib": mem_default,
            "cg_iterations_per_solve": result.mesh["cg_iterations_per_solve"], "setup_s": result.mesh["setup_s"],
            "width_vs_2d_percent": 100 * (result.lesion.width_mm / ref.width_mm - 1),
            "length_vs_2d_percent": 100 * (result.lesion.length_mm / ref.length_mm - 1),
            "ratio_to_2d_time": statistics.median(times) / t2d,
            "energy_imbalance": result.energy.imbalance_relative,
        },
        "refined": {
            "factor": args.factor, "nodes": fine.mesh["nodes"], "width_mm": fine.lesion.width_mm, "length_mm": fine.lesion.length_mm,
            "wall_time_s": t_fine, "peak_memory_gib": peak_gib(),
            "width_change_mm": result.lesion.width_mm - fine.lesion.width_mm,
            "length_change_mm": result.lesion.length_mm - fine.lesion.length_mm,
            "width_vs_2d_percent": 100 * (fine.lesion.width_mm / ref.width_mm - 1),
            "length_vs_2d_percent": 100 * (fine.lesion.length_mm / ref.length_mm - 1),
        },
        "dt_1s": {"width_change_mm": result.lesion.width_mm - dt1.lesion.width_mm, "length_change_mm": result.lesion.length_mm - dt1.lesion.length_mm},
    }
    print(json.dumps(out, indent=1))
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
