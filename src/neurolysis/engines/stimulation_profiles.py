"""Potential profiles along a fibre that are not a point source's, for measuring the stimulation
surrogate's error against direct PyFibers runs (``scripts/build_stimulation_table.py --check``).

Closed forms in an isotropic medium (sigma = 0.2 S/m, 1 mA):
- a line source of length L parallel to the fibre at distance d (an RF needle's active tip)::

      V(z) = I / (4 pi sigma L) [asinh((L/2 - z) / d) + asinh((L/2 + z) / d)]

- a point source seen through the nerve sheath: V smoothed by the core cable of length constant
  lambda (:func:`neurolysis.engines.stimulation.core_potential`), as the planner does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from neurolysis.engines.stimulation import core_potential

SIGMA_S_M = 0.2
ARC_STEP_MM = 0.05


@dataclass(frozen=True, eq=False)
class CheckProfile:
    name: str
    fibre_key: str  # a table fibre (data/stimulation_thresholds.toml)
    model: str  # its PyFibers model
    diameter_um: float
    pulse_ms: float
    arc_mm: np.ndarray  # centred on the profile's peak
    ve_mv: np.ndarray  # per mA, cathodic sign (negative)


def line_source_mv(z_mm: np.ndarray, length_mm: float, distance_mm: float) -> np.ndarray:
    half = length_mm / 2.0
    scale = 1e-3 / (4 * math.pi * SIGMA_S_M * length_mm * 1e-3) * 1e3
    return scale * (np.arcsinh((half - z_mm) / distance_mm) + np.arcsinh((half + z_mm) / distance_mm))


def point_source_mv(z_mm: np.ndarray, distance_mm: float) -> np.ndarray:
    return 1e-3 / (4 * math.pi * SIGMA_S_M * np.sqrt(distance_mm**2 + z_mm**2) * 1e-3) * 1e3


FIBRES = (
    ("myelinated-9um", "MRG_INTERPOLATION", 9.0, 1.0),
    ("myelinated-12um", "MRG_INTERPOLATION", 12.0, 0.1),
    ("small-myelinated-4um", "SMALL_MRG_INTERPOLATION", 4.0, 1.0),
)


def check_profiles(half_length_mm: float = 30.0) -> list[CheckProfile]:
    """Line sources of 5 and 10 mm parallel at 1 and 2 mm; point sources at 0.6 and 1.5 mm through sheaths
    of lambda 1 and 2 mm; for three table fibres."""
    z = np.arange(-half_length_mm, half_length_mm + ARC_STEP_MM / 2, ARC_STEP_MM)
    shapes = []
    for length in (5.0, 10.0):
        for d in (1.0, 2.0):
            shapes.append((f"line {length:g} mm at {d:g} mm", line_source_mv(z, length, d)))
    for d in (0.6, 1.5):
        for lam in (1.0, 2.0):
            shapes.append((f"point at {d:g} mm through a {lam:g} mm sheath", core_potential(ARC_STEP_MM * 1e-3, point_source_mv(z, d), lam * 1e-3)))
    return [CheckProfile(f"{name}, {key} {pulse:g} ms", key, model, diameter, pulse, z, -profile)
            for key, model, diameter, pulse in FIBRES for name, profile in shapes]
