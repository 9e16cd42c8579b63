"""Tissue properties and their temperature dependence (catalog in ``data/tissues.toml``).

Temperatures are in degrees Celsius throughout the package (an SI derived unit);
every other quantity is in base SI units.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType

import numpy as np

from neurolysis._catalog import load_catalog
from neurolysis.validation import ValidationError, check_choice

REFERENCE_TEMP_C = 37.0
VAPORISATION_START_C = 99.0
VAPORISATION_END_C = 100.0
VAPORISED_CONDUCTIVITY_FACTOR = 1e-4
"""Electrical conductivity falls by four orders of magnitude between 99 and 100 C as
tissue water boils off: the usual model in RF-ablation finite-element studies
(Haemmerich, Berjano; see docs/models/rf.md). It is what limits lesions at high power."""

_NUMERIC_FIELDS = (
    "density_kg_m3",
    "heat_capacity_j_kg_k",
    "thermal_conductivity_w_m_k",
    "thermal_conductivity_coeff_per_k",
    "electrical_conductivity_s_m",
    "electrical_conductivity_coeff_per_k",
    "perfusion_w_m3_k",
)


@dataclass(frozen=True)
class Tissue:
    """A homogeneous tissue with linear temperature coefficients referred to 37 C.

    ``perfusion_w_m3_k`` is the Pennes blood heat-exchange coefficient w_b rho_b c_b.
    """

    id: str
    description: str
    density_kg_m3: float
    heat_capacity_j_kg_k: float
    thermal_conductivity_w_m_k: float
    thermal_conductivity_coeff_per_k: float
    electrical_conductivity_s_m: float
    electrical_conductivity_coeff_per_k: float
    perfusion_w_m3_k: float
    ex_vivo_only: bool = False
    uncertain: tuple[str, ...] = ()
    sources: MappingProxyType = field(default_factory=lambda: MappingProxyType({}), compare=False)

    def __post_init__(self) -> None:
        for name in _NUMERIC_FIELDS:
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValidationError(f"tissue {self.id!r} {name} = {value}: must be finite and >= 0")

    @property
    def volumetric_heat_capacity_j_m3_k(self) -> float:
        return self.density_kg_m3 * self.heat_capacity_j_kg_k

    def electrical_conductivity(self, temp_c: np.ndarray) -> np.ndarray:
        """sigma(T) = sigma_37 (1 + a (T - 37)) up to 99 C, then a drop of 1e4 by 100 C (S/m)."""
        temp = np.minimum(np.asarray(temp_c, float), VAPORISATION_END_C)
        sigma = self.electrical_conductivity_s_m * (1.0 + self.electrical_conductivity_coeff_per_k * (temp - REFERENCE_TEMP_C))
        fraction = np.clip((temp - VAPORISATION_START_C) / (VAPORISATION_END_C - VAPORISATION_START_C), 0.0, 1.0)
        return np.maximum(sigma, 0.0) * (1.0 - fraction * (1.0 - VAPORISED_CONDUCTIVITY_FACTOR))

    def thermal_conductivity(self, temp_c: np.ndarray) -> np.ndarray:
        """k(T) = k_37 (1 + b (T - 37)), held constant above 100 C (W/m/K)."""
        temp = np.minimum(np.asarray(temp_c, float), VAPORISATION_END_C)
        return self.thermal_conductivity_w_m_k * (1.0 + self.thermal_conductivity_coeff_per_k * (temp - REFERENCE_TEMP_C))

    def properties(self) -> dict[str, float]:
        """The numeric properties keyed with their units (as in the catalog)."""
        return {name: getattr(self, name) for name in _NUMERIC_FIELDS}

    def scaled(self, **factors: float) -> Tissue:
        """A copy with numeric properties multiplied, e.g. ``scaled(perfusion_w_m3_k=2)``."""
        unknown = set(factors) - set(_NUMERIC_FIELDS)
        if unknown:
            raise ValidationError(f"tissue property {sorted(unknown)[0]!r}: allowed names are {', '.join(_NUMERIC_FIELDS)}")
        return replace(self, id=f"{self.id} (modified)", **{k: getattr(self, k) * f for k, f in factors.items()})

    def ex_vivo(self) -> Tissue:
        """The same tissue without blood perfusion (excised)."""
        return replace(self, perfusion_w_m3_k=0.0)


def tissue_ids() -> list[str]:
    """Identifiers of the catalogued tissues."""
    return list(load_catalog("tissues")["tissue"])


def load_tissue(tissue_id: str) -> Tissue:
    """The catalogued tissue ``tissue_id`` (see ``neurolysis tissues``)."""
    check_choice("tissue", tissue_id, tissue_ids())
    entry = load_catalog("tissues")["tissue"][tissue_id]
    return Tissue(
        id=tissue_id,
        description=entry.get("description", tissue_id),
        ex_vivo_only=bool(entry.get("ex_vivo_only", False)),
        uncertain=tuple(entry.get("uncertain", ())),
        sources=MappingProxyType(dict(entry.get("sources", {}))),
        **{name: float(entry[name]) for name in _NUMERIC_FIELDS},
    )
