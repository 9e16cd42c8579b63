"""Bipolar RF: where two lesions stop joining, against Wondra 2024, and what a bipolar plan costs.

1. Validation (held out, nothing fitted to it): Wondra JP et al. (Pain Pract 2024): 18/20/22 G,
   10 mm tips, 80 C for 105 s with a 15 s ramp; a secondary teaching note gives the largest
   joining distance as < 12 / < 10 / < 8 mm (literature.md A3, READ-2nd). Chicken breast ex vivo
   at physiological start temperature (37 C), needles side by side, spacing between the axes
   from 4 mm in 2 mm steps until the lesions no longer join (``BipolarStrip.joined``).
2. The same pair in perfused muscle (in vivo, 37 C), 4 to 12 mm: where a plan's pair joins.
3. Cost: the sacroiliac template with one needle (monopolar) and with one bipolar pair 8 mm apart
   (examples/plans/sacroiliac-bipolar-pair.toml), in this process: the ratio.

Writes bench/results/bipolar.json.

    .venv/bin/python bench/bipolar.py [--gauges 18 20 22] [--skip-plans]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
import tomllib
from pathlib import Path

import numpy as np
import scipy

from neurolysis.engines.rf.engine3d import BIPOLAR_DT_S, BIPOLAR_MESH, bipolar_pair
from neurolysis.engines.rf.settings import RFSettings
from neurolysis.literature import reference
from neurolysis.planning.plan import plan_from_dict
from neurolysis.planning.simulate import simulate

OUT = Path(__file__).parent / "results" / "bipolar.json"
WONDRA = {"tip_mm": 10.0, "set_temp_c": 80.0, "time_s": 105.0, "ramp_s": 15.0}
PAIR_PLAN = Path(__file__).resolve().parents[1] / "examples" / "plans" / "sacroiliac-bipolar-pair.toml"


def sweep(settings: RFSettings, start: float, stop: float, step: float, stop_when_split: bool) -> dict:
    rows = {}
    spacing = start
    while spacing <= stop + 1e-9:
        t0 = time.perf_counter()
        r = bipolar_pair(settings, spacing)
        rows[f"{spacing:g}"] = r.strip.as_dict() | {"mean_power_w": r.mean_power_w, "nodes": r.mesh["nodes"], "wall_time_s": time.perf_counter() - t0}
        row = rows[f"{spacing:g}"]
        print(f"  {spacing:4.1f} mm: joined={row['joined']!s:5} gap {row['gap_mm']:.2f} mm, strip {row['strip_width_mm']:.2f} x {row['strip_length_mm']:.2f} mm, "
              f"{row['mean_power_w']:.1f} W, {row['nodes']} nodes, {row['wall_time_s']:.1f} s", flush=True)  # fmt: skip
        if stop_when_split and not row["joined"]:
            break
        spacing += step
    joined = [float(k) for k, v in rows.items() if v["joined"]]
    split = [float(k) for k, v in rows.items() if not v["joined"]]
    return {"rows": rows, "largest_joined_mm": max(joined) if joined else None, "smallest_split_mm": min(split) if split else None}


def plan_times() -> dict:
    pair = tomllib.loads(PAIR_PLAN.read_text(encoding="utf-8"))
    mono = json.loads(json.dumps(pair))
    mono["procedure"].pop("electrodes")
    mono["needles"] = mono["needles"][:1]
    out = {}
    for name, data in (("monopolar", mono), ("bipolar", pair)):
        t0 = time.perf_counter()
        d = simulate(plan_from_dict(data)).to_dict()
        out[name] = {"wall_time_s": time.perf_counter() - t0, "nodes": d["rf"]["mesh"]["nodes"], "pain_block": d["target"]["pain_block"], "bipolar": d["rf"]["bipolar"]}
        print(f"  {name} plan: {out[name]['wall_time_s']:.1f} s, {out[name]['nodes']} nodes, block {out[name]['pain_block']}, strip {out[name]['bipolar']}", flush=True)
    out["ratio"] = out["bipolar"]["wall_time_s"] / out["monopolar"]["wall_time_s"]
    print(f"  bipolar / monopolar plan time: x{out['ratio']:.2f} (goal <= 3)", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gauges", type=int, nargs="+", default=[18, 20, 22])
    parser.add_argument("--skip-plans", action="store_true")
    args = parser.parse_args()
    published = {int(g): float(v) for g, v in reference("wondra-2024-bipolar-gap")["gap_mm"].items()}
    results = {
        "machine": f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, NumPy {np.__version__}, SciPy {scipy.__version__}",
        "mesh": BIPOLAR_MESH.as_dict() | {"dt_s": BIPOLAR_DT_S},
        "chicken_ex_vivo_37c": {},
        "muscle_in_vivo": {},
    }
    for gauge in args.gauges:
        print(f"chicken ex vivo from 37 C, {gauge} G (published: joined below {published[gauge]:g} mm)", flush=True)
        s = RFSettings(gauge=gauge, tissue="chicken-breast", ex_vivo=True, initial_temp_c=37.0, **WONDRA)
        found = sweep(s, 4.0, 20.0, 2.0, stop_when_split=True)
        found["published_below_mm"] = published[gauge]
        found["pass"] = found["largest_joined_mm"] is not None and found["largest_joined_mm"] < published[gauge] and found["smallest_split_mm"] is not None and found["smallest_split_mm"] <= published[gauge]
        results["chicken_ex_vivo_37c"][str(gauge)] = found
        print(f"  largest joined {found['largest_joined_mm']} mm, first split {found['smallest_split_mm']} mm: {'pass' if found['pass'] else 'MISS'}", flush=True)
    for gauge in args.gauges:
        print(f"muscle in vivo, {gauge} G", flush=True)
        results["muscle_in_vivo"][str(gauge)] = sweep(RFSettings(gauge=gauge, **WONDRA), 4.0, 12.0, 2.0, stop_when_split=False)
    if not args.skip_plans:
        print("plans on the sacroiliac template (S1 lateral branch), 18 G 10 mm 80 C 90 s", flush=True)
        results["plans"] = plan_times()
    results["peak_memory_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(f"peak memory {results['peak_memory_gib']:.2f} GiB; written {OUT}")


if __name__ == "__main__":
    main()
