"""Electrodes, needle materials and generator limits (catalog in ``data/devices.toml``)."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from neurolysis._catalog import load_catalog
from neurolysis.validation import check_choice

MODES = ("conventional", "cooled", "pulsed")


@dataclass(frozen=True)
class Material:
    """Thermal properties of a needle material (SI)."""

    density_kg_m3: float
    heat_capacity_j_kg_k: float
    thermal_conductivity_w_m_k: float

    @property
    def volumetric_heat_capacity_j_m3_k(self) -> float:
        return self.density_kg_m3 * self.heat_capacity_j_kg_k


@dataclass(frozen=True)
class Generator:
    """Limits of the RF generator: output power (W) and voltage (V), default ramp (s),
    highest settable temperature (C), RF frequency (Hz)."""

    max_power_w: float
    max_voltage_v: float
    ramp_time_s: float
    temp_limit_c: float
    frequency_hz: float


@dataclass(frozen=True)
class Device:
    """A catalogued electrode with its default settings (see ``neurolysis devices``)."""

    id: str
    mode: str
    gauge: int
    tip_mm: float
    description: str
    default_set_temp_c: float | None = None
    default_time_s: float | None = None
    coolant_temp_c: float | None = None
    coolant_flow_ml_min: float | None = None
    lumen_diameter_mm: float | None = None
    pulse_frequency_hz: float | None = None
    pulse_width_ms: float | None = None
    pulse_voltage_v: float | None = None
    pulse_temp_limit_c: float | None = None


def gauge_outer_diameters_mm() -> dict[int, float]:
    """Outer diameter (mm) of each catalogued needle gauge."""
    table = load_catalog("devices")["gauge_outer_diameter_mm"]
    return {int(k): float(v) for k, v in table.items() if k != "sources"}


def outer_radius_m(gauge: int) -> float:
    """Outer radius in metres of a needle of ``gauge`` (validated against the catalog)."""
    diameters = gauge_outer_diameters_mm()
    check_choice("gauge", gauge, sorted(diameters))
    return diameters[gauge] * 0.5e-3


def material(name: str) -> Material:
    entry = load_catalog("devices")["materials"][name]
    return Material(float(entry["density_kg_m3"]), float(entry["heat_capacity_j_kg_k"]), float(entry["thermal_conductivity_w_m_k"]))


def insulation_thickness_m() -> float:
    return float(load_catalog("devices")["materials"]["insulation"]["thickness_mm"]) * 1e-3


def cone_length_over_radius() -> float:
    return float(load_catalog("devices")["tip_geometry"]["cone_length_over_radius"])


def generator() -> Generator:
    entry = load_catalog("devices")["generator"]
    return Generator(*(float(entry[k]) for k in ("max_power_w", "max_voltage_v", "ramp_time_s", "temp_limit_c", "frequency_hz")))


_DEVICE_FIELDS = tuple(Device.__dataclass_fields__)


def all_devices() -> dict[str, Device]:
    """Every catalogued device by id."""
    table = load_catalog("devices")["device"]
    return {
        device_id: Device(id=device_id, **{k: v for k, v in entry.items() if k in _DEVICE_FIELDS and k != "id"})
        for device_id, entry in table.items()
    }


def device_sources(device_id: str) -> MappingProxyType:
    return MappingProxyType(dict(load_catalog("devices")["device"][device_id].get("sources", {})))


def default_device(mode: str) -> Device:
    """The catalog's first device of ``mode`` (the one the CLI uses when none is named)."""
    check_choice("mode", mode, MODES)
    return next(d for d in all_devices().values() if d.mode == mode)


def settings_ranges(table: str = "settings_range") -> dict[str, tuple[float, float, str]]:
    """Accepted (low, high, unit) of each RF setting (``data/devices.toml [settings_range]``;
    ``table="numerics_range"`` for the mesh and time-step settings). A high given as
    ``"generator.<field>"`` is that generator limit."""
    limits = vars(generator())
    out = {}
    for name, (low, high, unit) in load_catalog("devices")[table].items():
        if isinstance(high, str):
            high = limits[high.removeprefix("generator.")]
        out[name] = (float(low), float(high), unit)
    return out
