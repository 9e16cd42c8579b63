"""Sensitivity of the default lesion to the uncertain inputs (docs/validation.md section 4).

    python bench/sensitivity.py

Each row changes one input of the default case (18 G, 10 mm, 80 C, 90 s, muscle) and
prints the change of Arrhenius width and length and of mean power.
"""

from __future__ import annotations

from neurolysis.engines.rf.engine2d import simulate_rf
from neurolysis.examples import conventional_rf
from neurolysis.tissue import load_tissue

MUSCLE = load_tissue("muscle")
CASES = [
    ("thermal conductivity x 0.8", {"thermal_conductivity_w_m_k": 0.8}, {}),
    ("thermal conductivity x 1.2", {"thermal_conductivity_w_m_k": 1.2}, {}),
    ("heat capacity x 0.9", {"heat_capacity_j_kg_k": 0.9}, {}),
    ("heat capacity x 1.1", {"heat_capacity_j_kg_k": 1.1}, {}),
    ("perfusion x 0.5", {"perfusion_w_m3_k": 0.5}, {}),
    ("perfusion x 4 (hyperthermic)", {"perfusion_w_m3_k": 4.0}, {}),
    ("dsigma/dT 1 %/K (x 2/3)", {"electrical_conductivity_coeff_per_k": 2 / 3}, {}),
    ("dsigma/dT 2 %/K (x 4/3)", {"electrical_conductivity_coeff_per_k": 4 / 3}, {}),
    ("sigma x 0.5", {"electrical_conductivity_s_m": 0.5}, {}),
    ("ramp 10 s", {}, {"ramp_s": 10.0}),
    ("ramp 30 s", {}, {"ramp_s": 30.0}),
]


def main() -> None:
    base = simulate_rf(conventional_rf())
    print(f"default: width {base.lesion.width_mm:.2f} mm, length {base.lesion.length_mm:.2f} mm, power {base.mean_power_w:.2f} W\n")
    print("| change | width (mm) | length (mm) | mean power (W) |")
    print("|---|---|---|---|")
    for label, factors, settings in CASES:
        r = simulate_rf(conventional_rf().with_(**settings), tissue_override=MUSCLE.scaled(**factors) if factors else None)
        print(
            f"| {label} | {r.lesion.width_mm - base.lesion.width_mm:+.2f} | {r.lesion.length_mm - base.lesion.length_mm:+.2f} "
            f"| {r.mean_power_w - base.mean_power_w:+.2f} |"
        )


if __name__ == "__main__":
    main()
