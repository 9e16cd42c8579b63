"""Cryoprobes and the default freeze-thaw protocol (catalog in ``data/cryoprobes.toml``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

from neurolysis._catalog import load_catalog
from neurolysis.validation import ValidationError, check_choice, check_range

GASES = ("N2O", "CO2")
MAX_PHASE_S = 1800.0
"""Longest freeze or thaw phase of a protocol (s)."""
MIN_PHASE_S = 1.0
"""Shortest freeze or thaw phase (s): a phase is stepped with at least one Newton-solved
step, and sub-second phases (far below any clinical protocol, 60-120 s freezes,
literature.md E) made the enthalpy solver's line search fail."""


@dataclass(frozen=True)
class Cryoprobe:
    """A catalogued cryoprobe: gas, outer diameter and active (freezing) length in mm at
    the edge, tip temperature while freezing in C and the time constant (s) in which the
    probe cools to it (see ``neurolysis cryoprobes``)."""

    id: str
    gas: str
    outer_diameter_mm: float
    active_length_mm: float
    tip_temp_c: float
    closed_end: bool = True
    description: str = ""
    cooldown_s: float = 0.0  # time constant of the probe surface's approach to tip_temp_c at each freeze


    def __post_init__(self) -> None:
        check_choice(f"cryoprobe {self.id!r} gas", self.gas, GASES)
        check_range(f"cryoprobe {self.id!r} outer_diameter_mm", self.outer_diameter_mm, 0.1, 5.0, unit="mm")
        check_range(f"cryoprobe {self.id!r} active_length_mm", self.active_length_mm, 0.5, 100.0, unit="mm")
        check_range(f"cryoprobe {self.id!r} tip_temp_c", self.tip_temp_c, -200.0, -20.0, unit="C")
        check_range(f"cryoprobe {self.id!r} cooldown_s", self.cooldown_s, 0.0, 60.0, unit="s")

    @property
    def outer_radius_m(self) -> float:
        return 0.5e-3 * self.outer_diameter_mm

    @property
    def active_length_m(self) -> float:
        return 1e-3 * self.active_length_mm


_FIELDS = ("gas", "outer_diameter_mm", "active_length_mm", "tip_temp_c", "closed_end", "description", "cooldown_s")


def all_cryoprobes() -> dict[str, Cryoprobe]:
    """Every catalogued cryoprobe by id (the first is the default)."""
    table = load_catalog("cryoprobes")["probe"]
    return {probe_id: Cryoprobe(id=probe_id, **{k: entry[k] for k in _FIELDS if k in entry}) for probe_id, entry in table.items()}


def cryoprobe(probe_id: str | None = None) -> Cryoprobe:
    """The catalogued probe ``probe_id``, or the default (first) probe."""
    probes = all_cryoprobes()
    if probe_id is None:
        return next(iter(probes.values()))
    check_choice("probe", probe_id, list(probes))
    return probes[probe_id]


def cryoprobe_sources(probe_id: str) -> MappingProxyType:
    check_choice("probe", probe_id, list(all_cryoprobes()))
    return MappingProxyType(dict(load_catalog("cryoprobes")["probe"][probe_id].get("sources", {})))


def gas_boiling_point_c(gas: str) -> float:
    """Normal boiling (N2O) or sublimation (CO2) point at 1 atm (C)."""
    check_choice("gas", gas, GASES)
    return float(load_catalog("cryoprobes")["gas"][gas]["boiling_point_c"])


def default_cycles() -> tuple[tuple[str, float], ...]:
    """The catalogued protocol, e.g. (("freeze", 90.0), ("thaw", 30.0), ("freeze", 90.0))."""
    cycles = tuple((str(kind), float(seconds)) for kind, seconds in load_catalog("cryoprobes")["protocol"]["cycles"])
    for i, (kind, seconds) in enumerate(cycles):
        check_choice(f"cycles[{i}] kind", kind, ("freeze", "thaw"))
        if seconds <= 0:
            raise ValidationError(f"cycles[{i}] duration = {seconds:g} s: must be > 0 s")
    return cycles


def check_cycles(cycles) -> tuple[tuple[str, float], ...]:
    """A freeze-thaw protocol as ((kind, seconds), ...); None gives the catalogued default."""
    if cycles is None:
        return default_cycles()
    if isinstance(cycles, str | bytes) or not isinstance(cycles, Sequence) or len(cycles) == 0:
        raise ValidationError(f"cycles = {cycles!r}: must be a non-empty sequence of (kind, seconds)")
    out = []
    for i, item in enumerate(cycles):
        if not isinstance(item, Sequence) or isinstance(item, str) or len(item) != 2:
            raise ValidationError(f"cycles[{i}] = {item!r}: must be a pair (kind, seconds)")
        kind = check_choice(f"cycles[{i}] kind", item[0], ("freeze", "thaw"))
        seconds = check_range(f"cycles[{i}] duration_s", item[1], MIN_PHASE_S, MAX_PHASE_S, unit="s")
        out.append((kind, seconds))
    if not any(kind == "freeze" for kind, _ in out):
        raise ValidationError(f"cycles = {out!r}: must contain at least one 'freeze' phase")
    return tuple(out)


def minimum_lesion_length_m() -> float:
    """Published minimum frozen length along the nerve (m)."""
    return 1e-3 * float(load_catalog("cryoprobes")["protocol"]["minimum_lesion_length_mm"])
