"""Figures of the decision commands: the optimiser's trade-off front."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from neurolysis.about import DISCLAIMER  # noqa: E402


def plot_front(result: dict, path: str) -> None:
    """P(block) against the worst P(injury) of every evaluation, the non-dominated front,
    the risk limit, the plan as given and the best plan found."""
    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=120)
    ev = result["evaluations"]
    ax.scatter([e["worst_p_injury"] for e in ev], [e["p_block"] for e in ev], s=18, color="0.6", label=f"evaluations ({len(ev)})")
    front = result["front"]
    ax.plot([e["worst_p_injury"] for e in front], [e["p_block"] for e in front], "-o", color="tab:blue", ms=4, label="trade-off front")
    ax.axvline(result["max_risk"], color="tab:red", ls="--", lw=1, label=f"risk limit {result['max_risk']:g}")
    for key, marker, colour, label in (("baseline", "s", "k", "plan as given"), ("best", "*", "tab:green", "best within the limit")):
        e = result[key]
        ax.scatter([e["worst_p_injury"]], [e["p_block"]], marker=marker, s=90, color=colour, zorder=3, label=label)
    ax.set_xlabel("worst P(injury) of any critical structure")
    ax.set_ylabel("P(pain block) over the placement cohort")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(left=-0.005)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("neurolysis optimize: block against risk", fontsize=10)
    fig.text(0.01, 0.005, DISCLAIMER, fontsize=6, color="0.4")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
