"""The instant RF lesion: verified axisymmetric solves tabulated ahead and interpolated.

``data/lesion_table.toml`` holds the Arrhenius lesion (width, length, distal and proximal
extent, volume) of the axisymmetric engine (:func:`~neurolysis.engines.rf.engine2d.simulate_rf`,
its verified default mesh) on a grid of needle outer diameter (from the gauge), active tip
length, set temperature and time, per generator mode and tissue, in vivo. It is built by
``scripts/build_lesion_table.py``; its error against full solves at points it was not built
from is in ``data/lesion_table_check.toml`` (docs/models/rf.md, "The instant lesion").

:func:`instant_lesion` interpolates multilinearly (scipy's ``RegularGridInterpolator``) and
says whether the settings lie inside the table: the mode and tissue tabulated, every axis within
its span, and no setting the table does not vary (ramp, power limit, coolant, pre-injection,
damage model) away from its default. Outside, the caller runs the full solver.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy.interpolate import RegularGridInterpolator

from neurolysis import devices as catalog
from neurolysis._catalog import load_catalog
from neurolysis.engines.rf.settings import RFSettings

OUTPUTS = ("width_mm", "length_mm", "distal_mm", "proximal_mm", "volume_mm3")
AXES = ("outer_diameter_mm", "tip_mm", "set_temp_c", "time_s")
UNTABULATED = ("ramp_s", "max_power_w", "coolant_temp_c", "coolant_flow_ml_min", "pre_injection", "damage_model")
"""Settings the table holds at their defaults: any other value sends the answer to the full solver."""


@dataclass(frozen=True, eq=False)
class _Table:
    mode: str
    tissue: str
    axes: tuple[np.ndarray, ...]
    interpolators: dict


@dataclass(frozen=True)
class InstantLesion:
    """An interpolated lesion (mm, mm^3); ``in_range`` False means: not answered, run the full solver (``reason``)."""

    in_range: bool
    reason: str
    width_mm: float | None = None
    length_mm: float | None = None
    distal_mm: float | None = None
    proximal_mm: float | None = None
    volume_mm3: float | None = None

    def as_dict(self) -> dict:
        out = {"in_range": self.in_range, "reason": self.reason, "criterion": "arrhenius"}
        return out | {k: None if getattr(self, k) is None else round(getattr(self, k), 3) for k in OUTPUTS}


@cache
def _tables() -> tuple[_Table, ...]:
    out = []
    for t in load_catalog("lesion_table")["table"]:
        axes = [np.array(t[a], float) for a in AXES]
        shape = tuple(len(a) for a in axes)
        values = {k: np.array(t[k], float).reshape(shape) for k in OUTPUTS}
        for i, axis in enumerate(axes):  # the gauges list the outer diameters largest first
            if axis[0] > axis[-1]:
                axes[i] = axis[::-1]
                values = {k: np.flip(v, axis=i) for k, v in values.items()}
        axes = tuple(axes)
        interps = {k: RegularGridInterpolator(axes, v) for k, v in values.items()}
        out.append(_Table(t["mode"], t["tissue"], axes, interps))
    return tuple(out)


def table_defaults() -> dict:
    return dict(load_catalog("lesion_table")["meta"]["defaults"])


def instant_lesion(settings: RFSettings) -> InstantLesion:
    """The tabulated lesion for ``settings`` (unresolved or resolved), or why it is not in the table."""
    s = settings.resolved()
    if s.electrodes != "monopolar" or s.ex_vivo:
        return InstantLesion(False, "only one needle in vivo is tabulated")
    table = next((t for t in _tables() if t.mode == s.mode and t.tissue == s.tissue), None)
    if table is None:
        return InstantLesion(False, f"mode {s.mode!r} in {s.tissue!r} is not tabulated")
    defaults = RFSettings(mode=s.mode, gauge=s.gauge, tip_mm=s.tip_mm, tissue=s.tissue).resolved()
    changed = [name for name in UNTABULATED if getattr(s, name) != getattr(defaults, name)]
    if changed:
        return InstantLesion(False, f"{', '.join(changed)} differ from the tabulated defaults")
    point = np.array([catalog.outer_radius_m(s.gauge) * 2e3, s.tip_mm, s.set_temp_c, s.time_s])
    for name, value, axis in zip(AXES, point, table.axes, strict=True):
        if not axis[0] - 1e-9 <= value <= axis[-1] + 1e-9:
            return InstantLesion(False, f"{name} = {value:g} outside the table's {axis[0]:g}-{axis[-1]:g}")
    values = {k: float(table.interpolators[k](point)[0]) for k in OUTPUTS}
    return InstantLesion(True, "interpolated in the table of verified axisymmetric solves", **values)
