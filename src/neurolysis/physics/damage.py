"""Thermal damage: Arrhenius integral, cumulative equivalent minutes at 43 C, peak temperature.

Arrhenius (Henriques and Moritz 1947):  Omega(t) = integral_0^t A exp(-Ea / (R T(s))) ds,
with T in kelvin; Omega = 1 is the usual lesion edge (1 - exp(-1) = 63 % of cells damaged).

CEM43 (Sapareto and Dewey 1984):  CEM43(t) = integral_0^t R^(43 - T(s)) ds / 60  [minutes],
R = 0.5 above 43 C and 0.25 below.

Both are integrated over a time step with the trapezoid rule on the rates at the start
and end temperatures; for a constant temperature that is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurolysis._catalog import load_catalog
from neurolysis.validation import check_choice

GAS_CONSTANT_J_MOL_K = 8.314462618
KELVIN_OFFSET = 273.15


@dataclass(frozen=True)
class ArrheniusParameters:
    """Frequency factor A (1/s) and activation energy Ea (J/mol) of a damage process."""

    name: str
    frequency_factor_per_s: float
    activation_energy_j_mol: float
    source: str = ""

    def rate(self, temp_c: np.ndarray) -> np.ndarray:
        """dOmega/dt = A exp(-Ea / (R T)) in 1/s, T in Celsius converted to kelvin.

        Evaluated as exp(ln A - Ea/RT) so that A ~ 1e100 does not overflow.
        """
        temp_k = np.asarray(temp_c, float) + KELVIN_OFFSET
        return np.exp(np.log(self.frequency_factor_per_s) - self.activation_energy_j_mol / (GAS_CONSTANT_J_MOL_K * temp_k))

    def time_to_threshold_s(self, temp_c: float, omega: float = 1.0) -> float:
        """Time at constant ``temp_c`` for Omega to reach ``omega``: omega / rate."""
        return float(omega / self.rate(temp_c))


def cem43_rate_per_s(temp_c: np.ndarray, r_above: float = 0.5, r_below: float = 0.25) -> np.ndarray:
    """d CEM43 / dt in equivalent minutes per second: R^(43 - T) / 60."""
    temp = np.asarray(temp_c, float)
    base = np.where(temp >= 43.0, r_above, r_below)
    return base ** (43.0 - temp) / 60.0


def arrhenius_sets() -> dict[str, ArrheniusParameters]:
    """Catalogued Arrhenius parameter sets by name (``data/damage.toml``)."""
    table = load_catalog("damage")["arrhenius"]
    return {
        name: ArrheniusParameters(name, float(e["frequency_factor_per_s"]), float(e["activation_energy_j_mol"]), e.get("source", ""))
        for name, e in table.items()
    }


def default_arrhenius_name() -> str:
    return str(load_catalog("damage")["default_arrhenius"])


def arrhenius(name: str | None = None) -> ArrheniusParameters:
    """The named parameter set, or the catalog default."""
    sets = arrhenius_sets()
    name = default_arrhenius_name() if name is None else name
    check_choice("damage_model", name, sorted(sets))
    return sets[name]


@dataclass(frozen=True)
class DamageThresholds:
    """Lesion edges: Omega (dimensionless), CEM43 (min), isotherm (C)."""

    omega: float = 1.0
    cem43_min: float = 240.0
    isotherm_c: float = 50.0


def catalog_thresholds() -> DamageThresholds:
    cat = load_catalog("damage")
    return DamageThresholds(1.0, float(cat["cem43"]["lesion_threshold_min"]), float(cat["isotherm"]["lesion_edge_c"]))


class DamageAccumulator:
    """Running Omega, CEM43 and peak temperature at every node."""

    def __init__(self, temp_c: np.ndarray, parameters: ArrheniusParameters):
        self.parameters = parameters
        self.omega = np.zeros_like(temp_c, dtype=float)
        self.cem43_min = np.zeros_like(temp_c, dtype=float)
        self.max_temp_c = np.array(temp_c, dtype=float)
        self._rate = parameters.rate(temp_c)
        self._cem_rate = cem43_rate_per_s(temp_c)

    def advance(self, temp_c: np.ndarray, dt_s: float) -> None:
        """Add a step of length ``dt_s`` that ends at ``temp_c``."""
        rate, cem_rate = self.parameters.rate(temp_c), cem43_rate_per_s(temp_c)
        self.omega += 0.5 * dt_s * (self._rate + rate)
        self.cem43_min += 0.5 * dt_s * (self._cem_rate + cem_rate)
        np.maximum(self.max_temp_c, temp_c, out=self.max_temp_c)
        self._rate, self._cem_rate = rate, cem_rate
