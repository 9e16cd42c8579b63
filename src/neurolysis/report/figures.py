"""Figures of an RF lesion: temperature field, lesion outlines, needle and generator traces.

Rendered with matplotlib's Agg backend; importing this module is what pulls matplotlib in.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Polygon  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from matplotlib.tri import Triangulation  # noqa: E402

from neurolysis.about import DISCLAIMER  # noqa: E402
from neurolysis.engines.rf.engine2d import RFResult  # noqa: E402

OUTLINES = (
    ("omega", "lesion", "Arrhenius $\\Omega \\geq 1$", "white", "-"),
    ("max_temp_c", "isotherm50", "50 °C isotherm (peak)", "cyan", "--"),
    ("cem43_min", "cem43", "CEM43 ≥ threshold", "magenta", ":"),
)


def _mirrored_triangulation(result: RFResult) -> tuple[Triangulation, np.ndarray]:
    """Triangulation of the (r, z) half-plane mirrored to -r, in mm, and the node index map."""
    mesh = result.fields.needle_mesh
    n = mesh.mesh.p.shape[1]
    r, z = mesh.r * 1e3, mesh.z * 1e3
    x = np.concatenate([r, -r])
    y = np.concatenate([z, z])
    tri = mesh.mesh.t.T
    tissue = mesh.tissue
    triangles = np.vstack([tri[tissue], tri[tissue] + n])
    return Triangulation(x, y, triangles), np.concatenate([np.arange(n), np.arange(n)])


def _needle_outline(result: RFResult) -> tuple[np.ndarray, np.ndarray]:
    """Polygons (mm) of the active tip and the insulated shaft in the (x, z) plane."""
    g = result.fields.needle_mesh.geometry
    a, hc, L = g.radius_m * 1e3, g.cone_length_m * 1e3, g.tip_length_m * 1e3
    top = result.fields.needle_mesh.z_lines[-1] * 1e3
    active = np.array([[0, 0], [a, hc], [a, L], [-a, L], [-a, hc]])
    shaft = np.array([[a, L], [a, top], [-a, top], [-a, L]])
    return active, shaft


def plot_rf(result: RFResult, path: str, view_mm: float | None = None) -> None:
    """Write a PNG with the end-of-run temperature, lesion outlines, needle and traces."""
    if result.fields is None:
        raise ValueError("result has no field snapshot to plot")
    f = result.fields
    s = result.settings
    tri, index = _mirrored_triangulation(result)
    fig = plt.figure(figsize=(12, 6.5), layout="constrained")
    grid = fig.add_gridspec(3, 2, width_ratios=[1.25, 1])
    ax = fig.add_subplot(grid[:, 0])
    reach = result.isotherm50
    extent = view_mm or max(6.0, reach.width_mm / 2 + 3.0)
    L = s.tip_mm
    temp = f.temp_c[index]
    levels = MaxNLocator(nbins=20).tick_values(min(temp.min(), s.start_temp_c), max(temp.max(), s.start_temp_c + 1.0))
    cs = ax.tricontourf(tri, temp, levels=levels, cmap="inferno")
    fig.colorbar(cs, ax=ax, label="temperature at end of run (°C)", shrink=0.8)
    handles = []
    for field_name, shape_name, label, color, style in OUTLINES:
        shape = getattr(result, shape_name)
        values = getattr(f, field_name)[index]
        if shape.volume_mm3 > 0:
            ax.tricontour(tri, values, levels=[shape.threshold], colors=color, linestyles=style, linewidths=1.6)
            handles.append(Line2D([], [], color=color, linestyle=style, label=f"{label}: {shape.width_mm:.1f} × {shape.length_mm:.1f} mm"))
    active, shaft = _needle_outline(result)
    ax.add_patch(Polygon(shaft, closed=True, facecolor="0.55", edgecolor="k", hatch="///", label="insulated shaft"))
    ax.add_patch(Polygon(active, closed=True, facecolor="silver", edgecolor="k", label="active tip"))
    handles += [
        Polygon([[0, 0]], facecolor="silver", edgecolor="k", label=f"active tip ({s.gauge} G, {L:g} mm)"),
        Polygon([[0, 0]], facecolor="0.55", edgecolor="k", hatch="///", label="insulated shaft"),
    ]
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-max(reach.distal_mm, 0) - 3.0, L + max(reach.proximal_mm, 0) + 3.0)
    ax.set_aspect("equal")
    ax.set_xlabel("distance from needle axis (mm)")
    ax.set_ylabel("distance along needle from apex (mm)")
    title = {"conventional": "Conventional RF", "cooled": "Cooled RF", "pulsed": "Pulsed RF"}[s.mode]
    detail = f"{s.pulse_voltage_v:g} V pulses" if s.mode == "pulsed" else f"set {s.set_temp_c:g} °C"
    ax.set_title(f"{title}: {detail}, {s.time_s:g} s, {s.tissue}{' (ex vivo)' if s.ex_vivo else ''}")
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=2, fontsize=8, frameon=False)

    traces = result.traces
    panels = (
        ("tip_temp_c", "tip temperature (°C)", "tab:red"),
        ("power_w", "power (W)", "tab:blue"),
        ("voltage_v", "voltage (V)", "tab:green"),
    )
    for row, (name, label, color) in enumerate(panels):
        tax = fig.add_subplot(grid[row, 1])
        tax.plot(traces.time_s, getattr(traces, name), color=color, lw=1.2)
        tax.set_ylabel(label)
        tax.grid(alpha=0.3)
        if name == "power_w":
            zax = tax.twinx()
            zax.plot(traces.time_s, traces.impedance_ohm, color="0.4", lw=1.0, ls="--")
            zax.set_ylabel("impedance (Ω)", color="0.4")
        if row == len(panels) - 1:
            tax.set_xlabel("time (s)")
    fig.suptitle(f"Neurolysis Planner — {DISCLAIMER}", fontsize=9, color="0.3")
    fig.savefig(path, dpi=110)
    plt.close(fig)
