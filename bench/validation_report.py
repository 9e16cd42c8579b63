"""Run every published-data comparison and write its table and figures into docs/validation.md.

    python bench/validation_report.py

The table between the `generated` markers in docs/validation.md is replaced; the
discussion around it is written by hand. Figures go to docs/figures/.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neurolysis import literature  # noqa: E402
from neurolysis.engines.rf.settings import RFSettings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "validation.md"
FIGURES = ROOT / "docs" / "figures"
START, END = "<!-- generated:start -->", "<!-- generated:end -->"


def verdict(c: literature.Comparison) -> str:
    if c.passed is None and c.note.startswith(literature.VERIFICATION):
        return "verification"
    return {True: "**pass**", False: "**MISS**", None: "recorded"}[c.passed]


def table(comparisons) -> str:
    rows = ["| check | published | model | verdict |", "|---|---|---|---|"]
    for c in comparisons:
        note = f" <br>*{c.note}*" if c.note else ""
        rows.append(f"| `{c.id}` | {c.claim} <br>{c.source} [{c.tag}] | {c.model}{note} | {verdict(c)} |")
    return "\n".join(rows)


def figure_growth_and_sweeps(comparisons) -> str:
    by_id = {c.id: c for c in comparisons}
    growth = by_id["provenzano-2015-growth"].values
    sweeps = by_id["cosman-2014-scaling"].values["sweeps"]
    fig, axes = plt.subplots(1, 5, figsize=(17, 3.6), layout="constrained")
    ax = axes[0]
    ax.plot(growth["time_s"], growth["volume_mm3"], "o-", ms=3)
    ax.axvspan(150, 180, color="tab:green", alpha=0.15, label="still growing (Provenzano 2015)")
    ax.set(xlabel="time (s)", ylabel="Arrhenius lesion volume (mm³)", title="growth to 180 s")
    ax.legend(fontsize=8)
    titles = {"gauge": "gauge (G)", "tip_mm": "active tip (mm)", "set_temp_c": "set temperature (°C)", "time_s": "time (s)"}
    for ax, (key, label) in zip(axes[1:], titles.items(), strict=True):
        data = sweeps[key]
        x = data["levels"]
        ax.plot(x, data["width_mm"], "o-", label="width")
        ax.plot(x, data["length_mm"], "s--", label="length")
        if key == "gauge":
            ax.invert_xaxis()
        ax.set(xlabel=label, ylabel="mm", title=f"vs {label.split(' (')[0]}")
        ax.legend(fontsize=8)
    fig.suptitle("Chicken breast ex vivo (21 C), 18 G, 10 mm, 80 C, 90 s unless varied. Growth (verification): Ω ≥ 1 volume; sweeps (Cosman 2014): visible coagulation (peak ≥ 53 °C)")
    path = FIGURES / "validation_growth_and_scaling.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.name


def figure_cooled_vs_standard() -> str:
    from matplotlib.tri import Triangulation

    runs = {
        "standard 18 G 10 mm, 80 °C 90 s": literature.run(RFSettings(gauge=18, tip_mm=10.0, set_temp_c=80.0, time_s=90.0, **literature.CHICKEN)),
        "cooled 17 G 4 mm, 60 °C 150 s": literature.run(RFSettings(mode="cooled", gauge=17, tip_mm=4.0, set_temp_c=60.0, time_s=150.0, **literature.CHICKEN)),
    }
    fig, axes = plt.subplots(1, 2, figsize=(9, 5), layout="constrained", sharey=True)
    for ax, (label, result) in zip(axes, runs.items(), strict=True):
        mesh = result.fields.needle_mesh
        n = mesh.mesh.p.shape[1]
        tri = mesh.mesh.t.T[mesh.tissue]
        x = np.concatenate([mesh.r, -mesh.r]) * 1e3
        y = np.concatenate([mesh.z, mesh.z]) * 1e3
        triangulation = Triangulation(x, y, np.vstack([tri, tri + n]))
        tmax = np.concatenate([result.fields.max_temp_c] * 2)
        omega = np.concatenate([result.fields.omega] * 2)
        cs = ax.tricontourf(triangulation, tmax, levels=np.arange(20, 101, 5), cmap="inferno")
        ax.tricontour(triangulation, omega, levels=[1.0], colors="white", linewidths=1.8)
        ax.tricontour(triangulation, tmax, levels=[result.coagulation.threshold], colors="cyan", linewidths=1.2, linestyles="--")
        g = mesh.geometry
        a, L = g.radius_m * 1e3, g.tip_length_m * 1e3
        ax.fill([0, a, a, -a, -a], [0, 2 * a, 30, 30, 2 * a], color="silver", ec="k")
        ax.plot([-a, a], [L, L], "k-", lw=2)
        ax.set(xlim=(-10, 10), ylim=(-8, 16), aspect="equal", xlabel="mm", title=f"{label}\ncoagulation {result.coagulation.width_mm:.1f} × {result.coagulation.length_mm:.1f} mm")
    axes[0].set_ylabel("mm along needle")
    fig.colorbar(cs, ax=axes, label="peak temperature (°C); white: Ω = 1; cyan: coagulation (53 °C)")
    path = FIGURES / "validation_cooled_vs_standard.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.name


def main() -> int:
    FIGURES.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    comparisons = []
    for check in literature.ALL:
        t0 = time.perf_counter()
        comparisons.append(check())
        print(f"{comparisons[-1].id}: {verdict(comparisons[-1])} ({time.perf_counter() - t0:.1f} s)  {comparisons[-1].model}", file=sys.stderr)
    names = [figure_growth_and_sweeps(comparisons), figure_cooled_vs_standard()]
    passed = sum(c.passed is True for c in comparisons)
    missed = sum(c.passed is False for c in comparisons)
    verified = sum(verdict(c) == "verification" for c in comparisons)
    recorded = sum(verdict(c) == "recorded" for c in comparisons)
    body = "\n".join(
        [
            START,
            f"*Generated by `python bench/validation_report.py` in {time.perf_counter() - started:.0f} s: "
            f"{passed} pass, {missed} miss, {verified} verification (the code guarantees the outcome), {recorded} recorded without a gate.*",
            "",
            table(comparisons),
            "",
            *[f"![{n}](figures/{n})" for n in names],
            END,
        ]
    )
    text = DOC.read_text() if DOC.exists() else f"# Validation\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(head + body + tail)
    print(f"wrote {DOC} and {len(names)} figures", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
