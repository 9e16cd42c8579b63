"""Figure of ``neurolysis stimulate``: sensory and motor thresholds against the tip's distance to the nerve."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from neurolysis.about import DISCLAIMER


def plot_offsets(scan: dict, path: str) -> None:
    """Thresholds (V, left; mA, right) per offset, the sensory cut-off and the motor floor at the planned pose."""
    rows = [r for r in scan["offsets"] if not r.get("in_bone") and r.get("distance_mm") is not None]
    fig, (volts, milliamps) = plt.subplots(1, 2, figsize=(10, 4.2))
    for axis, unit in ((volts, "v"), (milliamps, "ma")):
        rows_sorted = sorted(rows, key=lambda r: r["distance_mm"])
        distance = [r["distance_mm"] for r in rows_sorted]
        axis.plot(distance, [r[f"sensory_threshold_{unit}"] for r in rows_sorted], "o-", color="tab:blue", label=f"sensory ({scan['target_nerve']})")
        motor = [(r["distance_mm"], r[f"motor_threshold_{unit}"]) for r in rows_sorted if r[f"motor_threshold_{unit}"] is not None]
        if motor:
            axis.plot(*zip(*motor, strict=True), "s--", color="tab:red", label=f"motor ({rows_sorted[0]['motor_nerve']})")
        axis.set_yscale("log")
        axis.set_xlabel("tip to the nerve's surface (mm)")
        axis.set_ylabel("threshold (V)" if unit == "v" else "threshold (mA)")
        axis.grid(True, which="both", alpha=0.3)
    volts.axhline(scan["sensory_cutoff_v"], color="tab:blue", ls=":", label=f"sensory cut-off {scan['sensory_cutoff_v']:g} V")
    volts.legend(fontsize=8)
    fig.suptitle(f"Stimulation test, {scan['pulse_ms']:g} ms pulses — Neurolysis Planner — {DISCLAIMER}", fontsize=9, color="0.3")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
