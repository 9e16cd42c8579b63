"""Figures of a planned procedure: three orthogonal slices through the needle with the
anatomy, the lesion outline and the nerves, and the target nerve's axon map.

Rendered with matplotlib's Agg backend; importing this module is what pulls matplotlib in.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from neurolysis.about import DISCLAIMER  # noqa: E402
from neurolysis.report.colours import OTHER_TISSUE_COLOUR, TISSUE_COLOURS  # noqa: E402

SLICE_POINTS = 161
CT_WINDOW_HU = (-200.0, 400.0)
"""Grey window of a CT under the tissues: soft tissue and bone both readable."""
NERVE_SLAB_M = 1.5e-3
"""Nerve centerline points within this distance of a slice plane are drawn on it."""


def needle_frame(direction: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orthonormal (e1, e2, e3) with e3 along the needle (hub -> tip)."""
    e3 = direction / np.linalg.norm(direction)
    helper = np.array([0.0, 0.0, 1.0]) if abs(e3[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = np.cross(helper, e3)
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(e3, e1), e3


def _plane_points(origin, u, v, su, sv):
    uu, vv = np.meshgrid(su, sv)
    return origin + uu[..., None] * u + vv[..., None] * v


def plot_outcome(outcome, path: str) -> None:
    """Write the slices and the axon map of ``outcome`` to ``path`` (PNG)."""
    scene, pose, physics = outcome.scene, outcome.pose, outcome.physics
    tip_len_m = physics.active_length_m
    e1, e2, e3 = needle_frame(pose.direction)
    centre = pose.tip_m - 0.5 * tip_len_m * e3  # middle of the active tip
    half = physics.view_half_width_m
    s = np.linspace(-half, half, SLICE_POINTS)
    planes = (
        ("along the needle (e1-e3)", e1, e3, e2),
        ("along the needle (e2-e3)", e2, e3, e1),
        ("across the active tip (e1-e2)", e1, e2, e3),
    )
    n_regions = len(scene.region_names)
    cmap = ListedColormap(plt.get_cmap("tab20")(np.arange(n_regions) % 20))
    by_tissue = scene.image_at is not None  # a patient's scan: its image in grey, tissues in colour over it
    if by_tissue:
        tissues = sorted(set(scene.region_tissue))
        cmap = ListedColormap([np.asarray(TISSUE_COLOURS.get(t, OTHER_TISSUE_COLOUR)) / 255.0 for t in tissues])
        tissue_of_region = np.array([tissues.index(t) for t in scene.region_tissue])
        window = _window(scene, centre, physics.view_half_width_m)
    cohort = outcome.uncertainty
    fig, axes = plt.subplots(2, 3 if cohort is not None else 2, figsize=(18 if cohort is not None else 12, 11))
    used = set()
    for ax, (title, u, v, normal) in zip(axes.flat[:3], planes, strict=True):
        pts = _plane_points(centre, u, v, s, s).reshape(-1, 3)
        labels = np.asarray(scene.label_at(pts)).reshape(SLICE_POINTS, SLICE_POINTS)
        extent = (s[0] * 1e3, s[-1] * 1e3, s[0] * 1e3, s[-1] * 1e3)
        if by_tissue:
            labels = tissue_of_region[labels]
            grey = np.asarray(scene.image_at(pts), float).reshape(SLICE_POINTS, SLICE_POINTS)
            ax.imshow(grey, origin="lower", extent=extent, cmap="gray", vmin=window[0], vmax=window[1], interpolation="bilinear")
            ax.imshow(labels, origin="lower", extent=extent, cmap=cmap, vmin=-0.5, vmax=len(tissues) - 0.5, interpolation="nearest", alpha=0.3)
        else:
            ax.imshow(labels, origin="lower", extent=extent, cmap=cmap, vmin=-0.5, vmax=n_regions - 0.5, interpolation="nearest", alpha=0.8)
        used |= set(np.unique(labels).tolist())
        lethal = np.asarray(physics.sample(pts).lethal, float)
        mm = s * 1e3
        if lethal.any():
            ax.contour(mm, mm, lethal.reshape(SLICE_POINTS, SLICE_POINTS), levels=[0.5], colors="black", linewidths=2.0)
        for values_at, level, colour, style, _ in physics.contours:
            values = np.asarray(values_at(pts), float)
            if np.any(values >= level):
                ax.contour(mm, mm, values.reshape(SLICE_POINTS, SLICE_POINTS), levels=[level], colors=colour, linewidths=1.2, linestyles=style)
        for nerve in scene.nerves:
            line = _densify(nerve.centerline_m, 0.2e-3)
            rel = line - centre
            near = np.abs(rel @ normal) <= NERVE_SLAB_M + nerve.radius_m
            if not np.any(near):
                continue
            target = nerve.name == outcome.nerve.name
            ax.plot(np.where(near, rel @ u, np.nan) * 1e3, np.where(near, rel @ v, np.nan) * 1e3,
                    color="gold" if target else "orange", lw=3 if target else 1.5)  # fmt: skip
        if tip_len_m > 0:
            _draw_needle(ax, pose, centre, u, v, tip_len_m)
        else:  # no needle (surgery): the site
            site = pose.tip_m - centre
            ax.plot([site @ u * 1e3], [site @ v * 1e3], "x", color="red", ms=8, mew=2)
        ax.set_xlim(extent[:2])
        ax.set_ylim(extent[2:])
        ax.set_aspect("equal")
        ax.set_title(title)
        ax.set_xlabel("mm")
        ax.set_ylabel("mm")
    names = tissues if by_tissue else scene.region_names
    handles = [Patch(color=cmap(i), label=names[i] + (" (tissue)" if by_tissue else "")) for i in sorted(used)]
    handles += [
        Line2D([], [], color="black", lw=2, label=physics.lethal_label),
        *(Line2D([], [], color=colour, lw=1.2, ls=style, label=label) for _, _, colour, style, label in physics.contours),
        Line2D([], [], color="gold", lw=3, label=f"target: {outcome.nerve.name}"),
        Line2D([], [], color="orange", lw=1.5, label="other nerves"),
        Line2D([], [], color="dimgray", lw=3, label="needle (active tip red)" if tip_len_m > 0 else "surgical site (red x)"),
    ]
    axes[0, 0].legend(handles=handles, loc="upper left", fontsize=7, framealpha=0.85)
    _axon_map(axes.flat[3], outcome)  # after the three planes: [1, 1] of 2 x 2, [1, 0] of 2 x 3
    if cohort is not None:
        cohort_panels(axes[1, 1], axes[1, 2], cohort, outcome.target.pain_block_fraction)
    t = outcome.target
    fig.suptitle(
        f"{outcome.plan.procedure.method} at {outcome.nerve.name} ({scene.name}, {outcome.plan.placement.approach}): "
        f"pain fibres killed {100 * t.pain_fibres_killed_fraction:.0f} %, block {'yes' if t.pain_block else 'no'}\n{DISCLAIMER}",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _window(scene, centre_m: np.ndarray, half_m: float) -> tuple[float, float]:
    """Grey levels of the image: a CT's soft-tissue-and-bone window (-200 to 400 HU), else the 1st-99th
    percentile of the image around the needle (MR has no absolute scale)."""
    if scene.image_modality == "CT" or scene.image_modality is None and _looks_like_ct(scene, centre_m, half_m):
        return CT_WINDOW_HU
    s = np.linspace(-half_m, half_m, 21)
    grid = np.stack(np.meshgrid(s, s, s, indexing="ij"), axis=-1).reshape(-1, 3) + centre_m
    values = np.asarray(scene.image_at(grid), float)
    lo, hi = np.percentile(values, [1, 99])
    return float(lo), float(max(hi, lo + 1e-6))


def _looks_like_ct(scene, centre_m: np.ndarray, half_m: float) -> bool:
    """An image without a modality is taken for CT when its values span Hounsfield units (air near -1000)."""
    s = np.linspace(-3 * half_m, 3 * half_m, 15)
    grid = np.stack(np.meshgrid(s, s, s, indexing="ij"), axis=-1).reshape(-1, 3) + centre_m
    values = np.asarray(scene.image_at(grid), float)
    return bool(values.min() < -500 and values.max() < 5000)


def cohort_panels(relief_ax, killed_ax, cohort, block_fraction: float) -> None:
    """Histograms of relief and of pain fibres killed over the placement cohort, with P(block)."""
    u = cohort.to_dict()
    lo, hi = u["p_block_95ci"]
    title = f"{u['samples']} needle placements: P(block) {100 * u['p_block']:.0f} % (95 % CI {100 * lo:.0f}-{100 * hi:.0f} %)"
    if cohort.relief_months is not None:
        relief_ax.hist(cohort.relief_months, bins=30, color="steelblue")
        relief_ax.set_xlabel("relief (months; failed block = 0)")
    else:
        relief_ax.text(0.5, 0.5, "relief not modelled for this method", ha="center", va="center", transform=relief_ax.transAxes)
    relief_ax.set_ylabel("samples")
    relief_ax.set_title(title, fontsize=10)
    killed_ax.hist(100 * cohort.pain_killed, bins=np.linspace(0, 100, 41), color="darkorange")
    killed_ax.axvline(100 * block_fraction, color="black", ls="--", lw=1, label="block threshold")
    killed_ax.set_xlabel("pain fibres killed (%)")
    killed_ax.set_ylabel("samples")
    killed_ax.legend(fontsize=8)


def _densify(line: np.ndarray, step_m: float) -> np.ndarray:
    seg = np.linalg.norm(np.diff(line, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    s = np.linspace(0.0, arc[-1], max(2, int(arc[-1] / step_m) + 1))
    return np.column_stack([np.interp(s, arc, line[:, i]) for i in range(3)])


def _draw_needle(ax, pose, centre, u, v, tip_len_m: float) -> None:
    tip = pose.tip_m - centre
    hub = tip - 0.1 * pose.direction  # 100 mm of shaft, clipped by the axes
    active = tip - tip_len_m * pose.direction
    if abs(pose.direction @ u) + abs(pose.direction @ v) < 1e-6:  # plane across the needle
        ax.plot([tip @ u * 1e3], [tip @ v * 1e3], "o", color="red", ms=6)
        return
    ax.plot([hub @ u * 1e3, active @ u * 1e3], [hub @ v * 1e3, active @ v * 1e3], color="dimgray", lw=3)
    ax.plot([active @ u * 1e3, tip @ u * 1e3], [active @ v * 1e3, tip @ v * 1e3], color="red", lw=3)


def _axon_map(ax, outcome) -> None:
    """Cross-section of the target nerve: every modelled axon, coloured by survival."""
    axons = outcome.target.axons
    x, y = np.asarray(axons.x_mm), np.asarray(axons.y_mm)
    killed = np.asarray(axons.killed, dtype=bool)
    classes = list(axons.fibre)
    markers = dict(zip(sorted(set(classes)), "o^sDv", strict=False))
    for name, marker in markers.items():
        sel = np.array([c == name for c in classes])
        ax.scatter(x[sel & ~killed], y[sel & ~killed], s=6, marker=marker, color="tab:green", label=f"{name} survives")
        ax.scatter(x[sel & killed], y[sel & killed], s=6, marker=marker, color="tab:red", label=f"{name} killed")
    r_mm = outcome.nerve.radius_m * 1e3
    ax.add_patch(plt.Circle((0, 0), r_mm, fill=False, color="black"))
    ax.set_xlim(-1.2 * r_mm, 1.2 * r_mm)
    ax.set_ylim(-1.2 * r_mm, 1.2 * r_mm)
    ax.set_aspect("equal")
    ax.set_xlabel("mm")
    ax.set_title(f"axons of {outcome.nerve.name}: killed anywhere along the nerve")
    ax.legend(fontsize=6, loc="upper right", ncol=2, markerscale=2)
