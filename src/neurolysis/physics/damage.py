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


# ------------------------------------------------------------------ visible coagulation


@dataclass(frozen=True)
class CoagulationCriterion:
    """Where a medium visibly coagulates (``data/coagulation.toml``): peak temperature >= threshold
    (C), or Omega of the medium's own Arrhenius set >= threshold. ``proxy`` names the medium
    whose data stand in when the tissue has none."""

    medium: str
    kind: str
    threshold: float
    arrhenius: ArrheniusParameters | None = None
    proxy: str | None = None
    source: str = ""
    tag: str = ""

    @property
    def rule(self) -> str:
        return f"peak >= {self.threshold:g} C" if self.kind == "peak_temperature" else f"Omega >= {self.threshold:.3g} ({self.arrhenius.name})"

    @property
    def medium_label(self) -> str:
        return f"{self.medium} as {self.proxy}" if self.proxy else self.medium

    @property
    def label(self) -> str:
        return f"coagulation ({self.medium_label}: {self.rule})"


def coagulation_criterion(tissue_id: str) -> CoagulationCriterion:
    """The visible-coagulation criterion of a tissue, or the catalogued proxy's when it has none."""
    cat = load_catalog("coagulation")
    proxy = None if tissue_id in cat["medium"] else str(cat["default"]["proxy"])
    e = cat["medium"][proxy or tissue_id]
    if e["kind"] == "arrhenius":
        params = ArrheniusParameters(f"coagulation-{proxy or tissue_id}", float(e["frequency_factor_per_s"]), float(e["activation_energy_j_mol"]), e["source"])
        return CoagulationCriterion(tissue_id, "arrhenius", float(e["omega"]), params, proxy, e["source"], e["tag"])
    return CoagulationCriterion(tissue_id, "peak_temperature", float(e["threshold_c"]), None, proxy, e["source"], e["tag"])


class CoagulationTracker:
    """The visible-coagulation field at every node, by the criterion of the tissue around it.

    ``node_tissues`` maps a tissue id to the mask of nodes that touch it. With one criterion
    the field is the raw one (peak temperature or the medium's Omega) at its own threshold;
    with several (anatomy) it is the largest ratio value / threshold over the tissues a node
    touches, at threshold 1 (a node coagulates if any tissue around it does; within one
    tissue the edge is the same, the ratio being linear in the field).
    """

    def __init__(self, node_tissues: dict[str, np.ndarray], temp_c: np.ndarray):
        self.criteria = {tid: coagulation_criterion(tid) for tid in node_tissues}
        self.masks = node_tissues
        self.omega = {tid: np.zeros_like(temp_c, dtype=float) for tid, c in self.criteria.items() if c.kind == "arrhenius"}
        self._rate = {tid: self.criteria[tid].arrhenius.rate(temp_c) for tid in self.omega}

    def advance(self, temp_c: np.ndarray, dt_s: float) -> None:
        """Add a step of length ``dt_s`` ending at ``temp_c`` (trapezoid rule, as DamageAccumulator)."""
        for tid, omega in self.omega.items():
            rate = self.criteria[tid].arrhenius.rate(temp_c)
            omega += 0.5 * dt_s * (self._rate[tid] + rate)
            self._rate[tid] = rate

    def field(self, max_temp_c: np.ndarray) -> tuple[np.ndarray, float, str]:
        """(nodal field, threshold, criterion label) for the lesion measurer."""
        def raw(tid):
            return self.omega.get(tid, max_temp_c)

        media = ", ".join(c.medium_label for c in self.criteria.values())
        if len({c.rule for c in self.criteria.values()}) == 1:
            tid, c = next(iter(self.criteria.items()))
            return raw(tid), c.threshold, f"coagulation ({media}: {c.rule})"
        index = np.zeros_like(max_temp_c, dtype=float)
        for tid, c in self.criteria.items():
            mask = self.masks[tid]
            index[mask] = np.maximum(index[mask], raw(tid)[mask] / c.threshold)
        rules = "; ".join(f"{c.medium_label}: {c.rule}" for c in self.criteria.values())
        return index, 1.0, f"coagulation (field / own threshold >= 1; {rules})"
