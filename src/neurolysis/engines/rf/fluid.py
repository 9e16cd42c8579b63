"""Fluid injected through the needle before an RF lesion (issue 19, part 2).

The injected volume V fills the accessible (interstitial) fraction phi of the tissue nearest
the needle apex, as the chemical bolus does (:func:`neurolysis.physics.bolus.fill_bolus`: a
sphere r_b = (3 V / (4 pi phi))^(1/3) in homogeneous tissue, bounded by barriers in anatomy).
Where it lies the tissue's electrical conductivity becomes the volume-weighted mix

    sigma = (1 - phi f) sigma_tissue(T) + phi f sigma_fluid (T / 37 C scaling of the tissue kept)

as a factor on the tissue's own sigma(T) (``data/fluids.toml [model]``: an assumption, the
parallel upper bound of a two-phase mixture; the fluid's heat capacity and its movement
during the lesion are neglected). Saline (2 S/m) raises the conductivity around the tip,
water and dextrose lower it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurolysis._catalog import load_catalog
from neurolysis.engines.chemical import BARRIER_TISSUES, TRANSPORT_STAND_IN
from neurolysis.physics.bolus import face_adjacency, fill_bolus
from neurolysis.physics.transport import ML_TO_M3, bolus_radius_m
from neurolysis.tissue import load_tissue
from neurolysis.validation import ValidationError, check_choice, check_range


@dataclass(frozen=True)
class PreInjection:
    """A fluid (catalog id) and its volume (mL), injected through the needle before heating."""

    fluid: str
    volume_ml: float

    def __post_init__(self) -> None:
        check_choice("pre_injection", self.fluid, fluid_ids())
        check_range("pre_injection_ml", self.volume_ml, *pre_injection_limits_ml(), unit="mL")

    @property
    def conductivity_s_m(self) -> float:
        return float(load_catalog("fluids")["fluid"][self.fluid]["conductivity_s_m"])


def pre_injection_limits_ml() -> tuple[float, float]:
    """The accepted pre-injection volume (mL), ``data/fluids.toml [limits]``."""
    low, high = load_catalog("fluids")["limits"]["volume_ml"]
    return float(low), float(high)


def fluid_ids() -> list[str]:
    """The catalogued fluids (``neurolysis fluids``)."""
    return list(load_catalog("fluids")["fluid"])


def accessible_fraction(tissue: str) -> float:
    """The fraction phi of ``tissue`` an injection fills (``data/agents.toml [transport_tissue]``,
    with its stand-ins); 0 for the tissues an injection does not enter (``[spread] barrier_tissues``)."""
    if tissue in BARRIER_TISSUES:
        return 0.0
    table = load_catalog("agents")["transport_tissue"]
    key = tissue if tissue in table else TRANSPORT_STAND_IN.get(tissue)
    if key is None:
        raise ValidationError(f"pre_injection: no accessible fraction for tissue {tissue!r} (data/agents.toml [transport_tissue]); known: {', '.join(sorted((set(table) | set(TRANSPORT_STAND_IN)) - {'sources'}))}")
    return float(table[key]["volume_fraction"])


def conductivity_factor(injection: PreInjection, tissue_of: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """Per element: the factor on the tissue's conductivity where the share ``filled`` (0..1) of
    its accessible fraction holds the fluid: 1 - phi f + phi f sigma_fluid / sigma_tissue(37 C)."""
    factor = np.ones(len(tissue_of))
    for tid in set(tissue_of[filled > 0]):
        sel = (tissue_of == tid) & (filled > 0)
        phi = accessible_fraction(tid)
        sigma = load_tissue(tid).electrical_conductivity(np.array([37.0]))[0]
        factor[sel] = 1.0 - phi * filled[sel] + phi * filled[sel] * injection.conductivity_s_m / sigma
    return factor


def filled_3d(injection: PreInjection, centroids_m: np.ndarray, volume_m3: np.ndarray, tets: np.ndarray, tissue_of: np.ndarray, is_tissue: np.ndarray,
              apexes_m: np.ndarray) -> tuple[np.ndarray, float]:  # fmt: skip
    """(filled share per element, largest reach in m) of ``injection`` through each needle, its apex at
    ``apexes_m`` (k, 3, mesh frame), on a tet mesh; where two fills overlap the larger share counts."""
    phi = np.zeros(len(tissue_of))
    for tid in set(tissue_of[is_tissue]):
        phi[is_tissue & (tissue_of == tid)] = accessible_fraction(tid)
    if not (phi > 0).any():
        raise ValidationError("pre_injection: the tissue around the needle tip takes no injection (bone, vessel, ...)")
    adjacency = face_adjacency(tets)
    fills = [fill_bolus(np.linalg.norm(centroids_m - apex, axis=1), phi * volume_m3, phi > 0, adjacency, injection.volume_ml * ML_TO_M3) for apex in np.atleast_2d(apexes_m)]
    return np.max([f.fraction for f in fills], axis=0), max(f.reach_m for f in fills)


def filled_sphere(injection: PreInjection, distance_m: np.ndarray, tissue: str) -> tuple[np.ndarray, float]:
    """(filled share per element, radius in m) in homogeneous ``tissue``: the sphere r_b around the apex."""
    phi = accessible_fraction(tissue)
    if phi <= 0:
        raise ValidationError(f"pre_injection: tissue {tissue!r} takes no injection")
    radius = bolus_radius_m(injection.volume_ml, phi)
    return (np.asarray(distance_m) <= radius).astype(float), radius


def summary(injection: PreInjection, reach_m: float) -> dict:
    """The ``pre_injection`` JSON block of an RF result."""
    return {"fluid": injection.fluid, "volume_ml": injection.volume_ml, "conductivity_s_m": injection.conductivity_s_m, "reach_mm": reach_m * 1e3}


__all__ = ["PreInjection", "accessible_fraction", "conductivity_factor", "filled_3d", "filled_sphere", "fluid_ids", "pre_injection_limits_ml", "summary"]
