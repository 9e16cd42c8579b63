"""Cryoneurolysis in 3D at the lumbar medial branch: wall time, memory, ice ball, frozen nerve.

Default probe and protocol (freeze 90 s, thaw 30 s, freeze 90 s) at the template's
placement on its target nerve. Gate: <= 30 s on 2 cores. Prints the ice-ball (-0.6 C)
and lethal (-20 C) dimensions and the frozen (lethal) nerve length from
``nerve.nerve_outcome(..., "cryo")`` against the published 4 mm minimum.

    .venv/bin/python bench/cryo_plan.py [--placement perpendicular|parallel] [--probe ID] [--json]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # BLAS threads only contend on the short vectors of CG

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

from neurolysis.anatomy.templates import load_template  # noqa: E402
from neurolysis.cryoprobes import minimum_lesion_length_m  # noqa: E402
from neurolysis.engines.cryo import simulate_cryo  # noqa: E402
from neurolysis.outcome.axons import nerve_outcome  # noqa: E402


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB -> GiB


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--placement", default="perpendicular", choices=("perpendicular", "parallel"))
    ap.add_argument("--probe", default=None)
    ap.add_argument("--json", action="store_true", help="print the whole summary as JSON")
    args = ap.parse_args()

    scene = load_template("lumbar-medial-branch")
    pose = scene.placements[(scene.target, args.placement)]
    t0 = time.perf_counter()
    result = simulate_cryo(args.probe, None, pose, scene)
    sim_s = time.perf_counter() - t0
    outcome = nerve_outcome(scene.nerve(scene.target), result.sample, "cryo")
    total_s = time.perf_counter() - t0
    minimum_mm = minimum_lesion_length_m() * 1e3
    d = result.to_dict()
    summary = {
        "placement": args.placement,
        "nerve": scene.target,
        "simulate_wall_time_s": sim_s,
        "total_with_nerve_outcome_s": total_s,
        "peak_memory_gib": peak_gib(),
        "ice_ball": d["ice_ball"],
        "lethal_zone": d["lethal_zone"],
        "energy": d["energy"],
        "frozen_nerve_length_mm": outcome.lesioned_length_mm,
        "minimum_length_mm": minimum_mm,
        "mesh": d["mesh"],
        "warnings": d["warnings"],
        "gate_30s": total_s <= 30.0,
    }
    if args.json:
        print(json.dumps(summary, indent=1, default=str))
        return
    ice, lethal = result.ice_ball, result.lethal_zone
    print(f"probe {result.probe.id}, {args.placement} at {scene.target}, cycles {list(result.cycles)}")
    print(f"ice ball (-0.6 C): width {ice.width_mm:.2f} mm, length {ice.length_mm:.2f} mm, volume {ice.volume_mm3:.0f} mm^3")
    print(f"lethal zone ({result.lethal_isotherm_c:g} C): width {lethal.width_mm:.2f} mm, length {lethal.length_mm:.2f} mm, volume {lethal.volume_mm3:.0f} mm^3")
    print(f"frozen nerve length {outcome.lesioned_length_mm:.2f} mm (published minimum {minimum_mm:g} mm): {'OK' if outcome.lesioned_length_mm >= minimum_mm else 'SHORT'}")
    print(f"heat extracted {d['energy']['heat_extracted_j']:.0f} J, balance error {d['energy']['balance_error_rel']:.1e} (relative)")
    print(f"wall time {sim_s:.1f} s (with nerve outcome {total_s:.1f} s), peak memory {peak_gib():.2f} GiB, "
          f"{d['mesh']['nodes']} nodes, {d['mesh']['time_steps']} steps, tissues {d['mesh']['tissues']}")
    for w in d["warnings"]:
        print("warning:", w)


if __name__ == "__main__":
    main()
