"""A solve's fields tabulated in its needle's frame: what the placement cohort reads for every
moved needle (:mod:`neurolysis.outcome.uncertainty`).

Two grids in the frame of the needle the fields were solved for: the risk model's fields (peak
temperature, Omega, CEM43, agent) over the risk margin at the risk spacing, and the lethal region
on a fine grid (``[limits] lethal_grid_mm`` of ``data/uncertainty.toml``) over its own extent.
A moved needle reads them at the nearest node through its own frame (rigid motion); off the
grid it reads the undisturbed value. :class:`SolvedFields` holds both for one solve, so that a
search reading the same solve for many placements (``optimize``) tabulates it once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurolysis._catalog import load_catalog
from neurolysis.engines.poses import NeedleFrame, pose_frame
from neurolysis.fields import BODY_TEMP_C, NeedlePose
from neurolysis.methods.base import PhysicsResult

FIELDS = ("peak_temp_c", "omega", "cem43_min", "agent_fraction", "agent_mmol_l")

MAX_LETHAL_NODES = 8_000_000
"""The fine lethal grid is coarsened beyond this many nodes (a large bolus)."""


class FieldGrid:
    """Values tabulated at the nodes of a regular grid of the planned needle's frame, padded by
    one node of the undisturbed value so that a clipped index reads "outside"."""

    def __init__(self, lo: np.ndarray, spacing: float, shape: tuple[int, int, int], values: dict[str, np.ndarray], outside: dict[str, float]):
        self.lo, self.spacing, self.shape = lo - spacing, spacing, tuple(n + 2 for n in shape)
        self.values = {}
        for name, table in values.items():
            padded = np.full(self.shape, outside[name], dtype=table.dtype)
            padded[1:-1, 1:-1, 1:-1] = table.reshape(shape)
            self.values[name] = padded.ravel()

    def index(self, frame: NeedleFrame, points_m: np.ndarray) -> np.ndarray:
        """Flat index of the nearest node to each point (n, 3, anatomy frame) read in ``frame``."""
        scaled = np.asarray(points_m, float) @ (frame.rotation / self.spacing)
        scaled += 0.5 - (frame.origin_m @ frame.rotation + self.lo) / self.spacing  # + 0.5: truncation rounds to nearest
        ijk = scaled.T.astype(np.intp)
        return np.ravel_multi_index(ijk, self.shape, mode="clip")  # off the grid: clipped to the padding

    def node_local(self, flat: np.ndarray) -> np.ndarray:
        """Local coordinates of flat node indices."""
        return self.lo + np.column_stack(np.unravel_index(flat, self.shape)) * self.spacing


def _tabulate(physics: PhysicsResult, frame: NeedleFrame, lo: np.ndarray, hi: np.ndarray, spacing: float, names) -> FieldGrid:
    axes = [np.arange(lo[i], hi[i] + 0.5 * spacing, spacing) for i in range(3)]
    local = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    sample = physics.sample(frame.to_world(local))
    values, outside = {}, {}
    for name in names:
        arr = getattr(sample, name)
        values[name] = np.zeros(len(local)) if arr is None else np.nan_to_num(np.asarray(arr, float))
        outside[name] = BODY_TEMP_C if name == "peak_temp_c" else 0.0
    return FieldGrid(lo, spacing, tuple(len(a) for a in axes), values, outside)


def _lethal_grid(physics: PhysicsResult, frame0: NeedleFrame, fields: FieldGrid, spacing: float) -> FieldGrid | None:
    """The lethal region on a fine grid over its extent (from the coarse table, +1 mm)."""
    lethal = np.flatnonzero(fields.values["lethal"] > 0.5)
    if not lethal.size:
        return None
    local = fields.node_local(lethal)
    lo, hi = local.min(axis=0) - fields.spacing - 1e-3, local.max(axis=0) + fields.spacing + 1e-3
    spacing = max(spacing, float(np.prod(hi - lo) / MAX_LETHAL_NODES) ** (1 / 3))
    grid = _tabulate(physics, frame0, lo, hi, spacing, ("lethal", "tubes_destroyed"))
    grid.values["lethal"] = grid.values["lethal"] > 0.5
    grid.values["tubes_destroyed"] = grid.values["tubes_destroyed"] > 0.5
    grid.values["scar_known"] = physics.sample(frame0.to_world(np.zeros((1, 3)))).tubes_destroyed is not None
    return grid


@dataclass(frozen=True, eq=False)
class SolvedFields:
    """One solve's fields tabulated in the frame of the needle it was solved for (``pose``):
    ``fields`` on the risk grid, ``lethal`` on the fine grid (None: no lethal region).
    ``risk_readers`` keeps what a cohort built from them (the critical structures' points near
    the lesion, by the largest needle displacement they cover) for the next cohort."""

    pose: NeedlePose
    frame: NeedleFrame
    fields: FieldGrid
    lethal: FieldGrid | None
    risk_readers: dict = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, physics: PhysicsResult, pose: NeedlePose) -> SolvedFields:
        frame = pose_frame([pose])
        margin = physics.risk_margin_m
        fields = _tabulate(physics, frame, np.full(3, -margin), np.full(3, margin), physics.risk_spacing_m, (*FIELDS, "lethal"))
        spacing = float(load_catalog("uncertainty")["limits"]["lethal_grid_mm"]) * 1e-3
        return cls(pose, frame, fields, _lethal_grid(physics, frame, fields, spacing))
