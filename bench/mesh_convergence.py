"""Mesh and time-step convergence of the default lesion: the table in docs/validation.md.

    python bench/mesh_convergence.py
"""

from __future__ import annotations

from neurolysis.engines.rf.engine2d import simulate_rf
from neurolysis.examples import conventional_rf

CASES = [(0.3, 1.0), (0.2, 1.0), (0.2, 0.5), (0.1, 1.0), (0.1, 0.5), (0.05, 0.5)]


def main() -> None:
    print("| h_fine (mm) | dt (s) | width (mm) | length (mm) | distal (mm) | proximal (mm) | nodes | steps | wall (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for h, dt in CASES:
        r = simulate_rf(conventional_rf().with_(h_fine_mm=h, dt_s=dt))
        les = r.lesion
        print(
            f"| {h:g} | {dt:g} | {les.width_mm:.3f} | {les.length_mm:.3f} | {les.distal_mm:.3f} | {les.proximal_mm:.3f} "
            f"| {r.mesh['nodes']} | {r.mesh['time_steps']} | {r.wall_time_s:.2f} |"
        )
    far = simulate_rf(conventional_rf().with_(domain_mm=120.0))
    print(f"\ndomain 120 mm: width {far.lesion.width_mm:.3f} mm, length {far.lesion.length_mm:.3f} mm, impedance {far.impedance_ohm_start:.1f} ohm")


if __name__ == "__main__":
    main()
