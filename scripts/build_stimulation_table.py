"""Build the fibre-threshold table the stimulation test reads, from PyFibers on NEURON.

Needs the optional extra (GPLv2 for non-commercial use, see docs/models/stimulation.md):

    pip install -e '.[fibers]' && pyfibers_compile
    python scripts/build_stimulation_table.py            # the table (about 25 min on 2 cores)
    python scripts/build_stimulation_table.py --check    # the surrogate's error against direct runs

The table holds, for each model fibre and pulse width, the threshold current of a monophasic
cathodic point source at distance d over the fibre's central node in an isotropic medium
(sigma = 0.2 S/m), and the peak extracellular potential that current gives at the fibre,
Ve = I / (4 pi sigma d). The planner reads thresholds as that peak potential for a field of the
same width (neurolysis.engines.stimulation), so the medium's conductivity drops out.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import sys
import time
import warnings
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "src" / "neurolysis" / "data"
TABLE = DATA / "stimulation_thresholds.toml"
CHECK = DATA / "stimulation_surrogate_check.toml"
SIGMA_S_PER_M = 0.2
DT_MS = 0.005
PULSE_START_MS = 0.1

# (fibre key, PyFibers model, diameter um, pulse widths ms, distances mm, tstop ms)
GRID = [
    *[(f"myelinated-{d:g}um", "MRG_INTERPOLATION", d, (0.1, 0.3, 1.0),
       (0.25, 0.5, 1.0, 2.0, 4.0, 8.0), 5.0) for d in (6.0, 9.0, 12.0, 15.0)],
    *[(f"small-myelinated-{d:g}um", "SMALL_MRG_INTERPOLATION", d, (0.1, 1.0),
       (0.25, 0.5, 1.0, 2.0, 4.0), 5.0) for d in (2.0, 4.0)],
    ("unmyelinated-0.8um", "SUNDT", 0.8, (1.0,), (0.25, 0.5, 1.0, 2.0), 25.0),
]
# The model our own cable solver implements, for its check against PyFibers (same equations).
SWEENEY_CHECK = [("SWEENEY", 10.0, pw, d, 5.0) for pw in (0.1, 1.0) for d in (0.5, 1.0, 2.0)]


def _fibre(model: str, diameter_um: float, length_um: float):
    from pyfibers import FiberModel, build_fiber

    return build_fiber(getattr(FiberModel, model), diameter=diameter_um, length=length_um)


def _threshold_ma(fibre, potentials_mv: np.ndarray, pulse_ms: float, tstop_ms: float,
                  first_guess_ma: float) -> float:
    """Cathodic activation threshold (mA, positive) for a unit-source potential profile.

    The bounds are searched upward from below: a large first amplitude can sit past the
    virtual-anode block window and bracket the second, higher threshold.
    """
    from pyfibers import ScaledStim
    from scipy.interpolate import interp1d

    fibre.potentials = potentials_mv
    waveform = interp1d([0.0, PULSE_START_MS, PULSE_START_MS + pulse_ms, tstop_ms],
                        [0.0, 1.0, 0.0, 0.0], kind="previous")
    stim = ScaledStim(waveform=waveform, dt=DT_MS, tstop=tstop_ms)
    low = first_guess_ma
    while stim.run_sim(-low, fibre)[0] > 0:
        low /= 2.0
    high = low * 1.5
    while stim.run_sim(-high, fibre)[0] == 0:
        low, high = high, high * 1.5
    amp, _ = stim.find_threshold(fibre, stimamp_top=-high, stimamp_bottom=-low,
                                 termination_tolerance=1)
    return abs(float(amp))


def _point_source_job(job):
    model, diameter_um, pulse_ms, distance_mm, tstop_ms = job
    warnings.filterwarnings("ignore")
    length_um = max(20e3, 15e3 * distance_mm) if model != "SUNDT" else max(8e3, 8e3 * distance_mm)
    fibre = _fibre(model, diameter_um, length_um)
    z = fibre.longitudinal_coordinates
    centre = z[int(np.argmin(np.abs(z - z[-1] / 2)))] if model == "SUNDT" else _central_node(fibre)
    potentials = fibre.point_source_potentials(distance_mm * 1e3, 0.0, centre, 1.0, SIGMA_S_PER_M)
    started = time.perf_counter()
    guess = 0.002 * (distance_mm / 0.25) ** 1.5 * (10.0 / diameter_um)
    threshold = _threshold_ma(fibre, potentials, pulse_ms, tstop_ms, guess)
    return job, threshold, time.perf_counter() - started


def _central_node(fibre) -> float:
    """Arc length (um) of the node of Ranvier nearest the fibre's middle."""
    index = fibre.loc_index(0.5, target="nodes")
    return float(fibre.longitudinal_coordinates[fibre.sections.index(fibre.nodes[index])])


def _peak_potential_mv(threshold_ma: float, distance_mm: float) -> float:
    return threshold_ma * 1e-3 / (4 * math.pi * SIGMA_S_PER_M * distance_mm * 1e-3) * 1e3


def _versions() -> str:
    import neuron
    import pyfibers

    return f"PyFibers {pyfibers.__version__}, NEURON {neuron.__version__}"


def build_table(processes: int) -> None:
    jobs = [(model, diam, pw, d, tstop) for _, model, diam, pws, ds, tstop in GRID
            for pw in pws for d in ds]
    jobs += SWEENEY_CHECK
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = {}
        for job, threshold, seconds in pool.imap_unordered(_point_source_job, jobs):
            results[job] = (threshold, seconds)
            print(f"{job}: {threshold:.4g} mA in {seconds:.1f} s", flush=True)
    lines = [
        "# Fibre activation thresholds for the stimulation test, COMPUTED (a model output, never a",
        "# check of itself) by scripts/build_stimulation_table.py with " + _versions() + ".",
        "# Set-up: monophasic cathodic square pulse starting at 0.1 ms; dt 5 us; 37 C; point source",
        "# over the fibre's central node (the middle section for the unmyelinated fibre) in an",
        f"# isotropic medium, sigma {SIGMA_S_PER_M} S/m; bisection to 1 %, bounds searched upward so",
        "# the virtual-anode block window is not bracketed. threshold_ma[i][j] is for pulse_ms[i] and",
        "# distance_mm[j]; peak_ve_mv is the extracellular potential at the fibre at threshold,",
        "# I / (4 pi sigma d), which is what the planner reads (conductivity-free).",
        "# Models: MRG_INTERPOLATION (McIntyre-Richardson-Grill 2002, interpolated 2-16 um),",
        "# SMALL_MRG_INTERPOLATION (Pena et al. 2024 small myelinated), SUNDT (Sundt et al. 2015 C fibre).",
        f"# Whole build: {time.perf_counter() - started:.0f} s wall on {processes} processes.",
        "",
        "[meta]",
        f'versions = "{_versions()}"',
        f"sigma_s_per_m = {SIGMA_S_PER_M}",
        f"dt_ms = {DT_MS}",
        "temperature_c = 37.0",
        "",
    ]
    for key, model, diam, pws, ds, tstop in GRID:
        thresholds = [[results[(model, diam, pw, d, tstop)][0] for d in ds] for pw in pws]
        seconds = [results[(model, diam, pw, d, tstop)][1] for pw in pws for d in ds]
        lines += [
            f'[fibre."{key}"]',
            f'model = "{model}"',
            f"myelinated = {'false' if model == 'SUNDT' else 'true'}",
            f"diameter_um = {diam}",
            f"pulse_ms = {list(pws)}",
            f"distance_mm = {list(ds)}",
            f"threshold_ma = {_rows(thresholds)}",
            f"peak_ve_mv = {_rows([[_peak_potential_mv(t, d) for t, d in zip(row, ds)] for row in thresholds])}",
            f"seconds_per_threshold = [{min(seconds):.1f}, {max(seconds):.1f}]",
            "",
        ]
    lines += ["# PyFibers' SWEENEY model, for the check of our own cable solver (same equations).",
              "[sweeney_check]", "diameter_um = 10.0", "pulse_ms = [0.1, 1.0]",
              "distance_mm = [0.5, 1.0, 2.0]",
              "threshold_ma = " + _rows([[results[("SWEENEY", 10.0, pw, d, 5.0)][0]
                                          for d in (0.5, 1.0, 2.0)] for pw in (0.1, 1.0)]), ""]
    TABLE.write_text("\n".join(lines))
    print(f"wrote {TABLE}")


def _rows(rows) -> str:
    return "[" + ", ".join("[" + ", ".join(f"{v:.5g}" for v in row) + "]" for row in rows) + "]"


def _profile_job(job):
    """Direct PyFibers threshold for a potential profile (per mA, mV) centred on the fibre's middle node."""
    name, model, diameter_um, pulse_ms, arc_mm, ve_mv = job
    warnings.filterwarnings("ignore")
    arc_mm, ve_mv = np.asarray(arc_mm), np.asarray(ve_mv)
    fibre = _fibre(model, diameter_um, (arc_mm[-1] - arc_mm[0]) * 1e3)
    sampled = np.interp(fibre.longitudinal_coordinates - _central_node(fibre), arc_mm * 1e3, ve_mv)
    started = time.perf_counter()
    threshold = _threshold_ma(fibre, -sampled, pulse_ms, 5.0, 5.0 / float(np.max(np.abs(sampled))))
    return name, threshold, time.perf_counter() - started


def check_surrogate(processes: int) -> None:
    """Surrogate against direct PyFibers runs on fields that are not a point source."""
    from neurolysis.engines.stimulation import surrogate_threshold
    from neurolysis.engines.stimulation_profiles import check_profiles

    cases = check_profiles()
    jobs = [(c.name, c.model, c.diameter_um, c.pulse_ms, c.arc_mm.tolist(), c.ve_mv.tolist())
            for c in cases]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        direct = {name: (t, s) for name, t, s in pool.imap_unordered(_profile_job, jobs)}
    lines = ["# The stimulation surrogate (neurolysis.engines.stimulation) against direct",
             f"# {_versions()} thresholds on potential profiles that are not a point source:",
             "# scripts/build_stimulation_table.py --check. Ratio = surrogate / direct.", ""]
    ratios = []
    for case in cases:
        predicted = surrogate_threshold(case.arc_mm, case.ve_mv, case.fibre_key, case.pulse_ms)
        ratio = predicted / direct[case.name][0]
        ratios.append(ratio)
        print(f"{case.name}: direct {direct[case.name][0]:.4g}, surrogate {predicted:.4g}, x{ratio:.3f}")
        lines += [f'[case."{case.name}"]', f'fibre = "{case.fibre_key}"', f"pulse_ms = {case.pulse_ms}",
                  f"direct = {direct[case.name][0]:.5g}", f"surrogate = {predicted:.5g}",
                  f"ratio = {ratio:.4f}", ""]
    errors = [abs(math.log(r)) for r in ratios]
    lines[3:3] = ["[summary]", f"cases = {len(ratios)}",
                  f"worst_ratio = {ratios[int(np.argmax(errors))]:.4f}",
                  f"median_abs_error_percent = {100 * (math.exp(float(np.median(errors))) - 1):.1f}", ""]
    CHECK.write_text("\n".join(lines))
    print(f"wrote {CHECK}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="measure the surrogate's error instead")
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args(argv)
    (check_surrogate if args.check else build_table)(args.processes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
