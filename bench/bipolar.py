"""Bipolar RF: largest needle spacing at which the two lesions still join, per gauge.

Wondra JP et al. (Pain Pract 2024): 18/20/22 G, 10 mm tips, 80 C for 105 s with a 15 s
ramp; a secondary teaching note gives the largest joining distance as < 12 / < 10 / < 8 mm
(literature.md A3, READ-2nd). Here: ex vivo chicken breast at physiological start
temperature (37 C), parallel needles side by side, spacing between needle axes stepped by
2 mm from (published gap - 2 mm), up while the lethal region (Omega >= 1) covers the
segment between the active-tip midpoints, down while it does not. Writes bench/results/bipolar.json.

    .venv/bin/python bench/bipolar.py [--gauges 18 20 22] [--step 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np

from neurolysis.engines.rf.engine3d import simulate_rf3d
from neurolysis.engines.rf.settings import RFSettings
from neurolysis.fields import NeedlePose
from neurolysis.physics.mesh3d import Mesh3DSpec

OUT = Path(__file__).parent / "results" / "bipolar.json"
PUBLISHED_MM = {18: 12.0, 20: 10.0, 22: 8.0}
MESH = Mesh3DSpec(h_fine_m=0.5e-3, fine_margin_m=5e-3)
"""Coarser than the monopolar default (bipolar meshes are 2-4x larger); see docs/models/rf3d.md."""


def settings(gauge: int) -> RFSettings:
    return RFSettings(gauge=gauge, tip_mm=10.0, set_temp_c=80.0, time_s=105.0, ramp_s=15.0, tissue="chicken-breast", ex_vivo=True, initial_temp_c=37.0)


def run(gauge: int, spacing_mm: float):
    down = np.array([0.0, 0.0, -1.0])
    poses = [NeedlePose(np.zeros(3), down), NeedlePose(np.array([spacing_mm * 1e-3, 0.0, 0.0]), down)]
    return simulate_rf3d(settings(gauge), poses, bipolar=True, mesh=MESH)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gauges", type=int, nargs="+", default=[18, 20, 22])
    parser.add_argument("--start", type=float, default=None, help="first spacing (default: published gap - step)")
    parser.add_argument("--step", type=float, default=2.0)
    parser.add_argument("--stop", type=float, default=18.0)
    args = parser.parse_args()
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    for gauge in args.gauges:
        rows = results.setdefault(str(gauge), {})
        spacing = PUBLISHED_MM[gauge] - args.step if args.start is None else args.start
        while spacing <= args.stop + 1e-9:
            key = f"{spacing:g}"
            if key not in rows:
                t0 = time.perf_counter()
                r = run(gauge, spacing)
                rows[key] = {
                    "joined": r.joined,
                    "lesion": r.lesion.as_dict(),
                    "mean_power_w": r.mean_power_w,
                    "impedance_ohm_start": r.impedance_ohm_start,
                    "nodes": r.mesh["nodes"],
                    "wall_time_s": time.perf_counter() - t0,
                    "warnings": list(r.warnings),
                }
                OUT.parent.mkdir(exist_ok=True)
                OUT.write_text(json.dumps(results, indent=1))
            row = rows[key]
            print(f"{gauge} G spacing {spacing:g} mm: joined={row['joined']} width {row['lesion']['width_mm']:.1f} mm "
                  f"power {row['mean_power_w']:.1f} W nodes {row['nodes']} {row['wall_time_s']:.0f} s", flush=True)
            joined_here = row["joined"]
            smaller = f"{spacing - args.step:g}"
            if joined_here:
                spacing += args.step
            elif smaller in rows or spacing - args.step < 2.5:
                break
            else:
                spacing -= args.step
        joined = [float(k) for k, v in rows.items() if v["joined"]]
        print(f"{gauge} G: largest joining spacing {max(joined) if joined else 'none'} mm")
    print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")


if __name__ == "__main__":
    main()
