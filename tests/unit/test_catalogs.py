"""Every catalogued number is finite, in SI-sane ranges and carries its source."""

import math

import pytest

from neurolysis import devices
from neurolysis._catalog import load_catalog
from neurolysis.physics.damage import arrhenius, arrhenius_sets, catalog_thresholds, default_arrhenius_name
from neurolysis.tissue import _NUMERIC_FIELDS, load_tissue, tissue_ids

REQUIRED_TISSUES = {"muscle", "fat", "nerve", "liver", "chicken-breast", "egg-white", "blood", "csf", "bone", "spinal-cord"}
SPEC_GAUGES_MM = {16: 1.65, 17: 1.47, 18: 1.27, 20: 0.91, 22: 0.72, 23: 0.64}


def test_required_tissues_present():
    assert REQUIRED_TISSUES <= set(tissue_ids())


@pytest.mark.parametrize("tissue_id", sorted(REQUIRED_TISSUES))
def test_tissue_values_sane_and_sourced(tissue_id):
    t = load_tissue(tissue_id)
    assert 800 <= t.density_kg_m3 <= 2200
    assert 1000 <= t.heat_capacity_j_kg_k <= 4500
    assert 0.1 <= t.thermal_conductivity_w_m_k <= 0.8
    assert 0.005 <= t.electrical_conductivity_s_m <= 2.5
    assert 0 <= t.electrical_conductivity_coeff_per_k <= 0.05
    assert 0 <= t.perfusion_w_m3_k <= 1e6
    for name in _NUMERIC_FIELDS:
        assert t.sources.get(name, "").strip(), f"{tissue_id}.{name} has no source"
    assert set(t.uncertain) <= set(_NUMERIC_FIELDS)


def test_ex_vivo_phantoms_have_no_perfusion():
    for tissue_id in tissue_ids():
        t = load_tissue(tissue_id)
        if t.ex_vivo_only:
            assert t.perfusion_w_m3_k == 0


def test_conductivity_temperature_dependence():
    muscle = load_tissue("muscle")
    s37, s80, s101 = muscle.electrical_conductivity([37.0, 80.0, 101.0])
    assert s37 == pytest.approx(muscle.electrical_conductivity_s_m)
    assert s80 > s37
    assert s101 < 1e-3 * s80  # vaporised


def test_gauges_match_specification():
    assert devices.gauge_outer_diameters_mm() == SPEC_GAUGES_MM


def test_device_catalog_covers_spec():
    catalog = devices.all_devices()
    modes = {d.mode for d in catalog.values()}
    assert modes == set(devices.MODES)
    conventional_tips = {d.tip_mm for d in catalog.values() if d.mode == "conventional"}
    assert {5.0, 6.0, 10.0, 15.0} <= conventional_tips
    cooled = [d for d in catalog.values() if d.mode == "cooled"]
    assert any(d.gauge == 17 and d.tip_mm == 4.0 for d in cooled)
    for d in catalog.values():
        assert d.gauge in SPEC_GAUGES_MM
        sources = devices.device_sources(d.id)
        for key, value in vars(d).items():
            if isinstance(value, float) and key not in ("tip_mm",):
                assert sources.get(key), f"{d.id}.{key} has no source"


def test_generator_limits_sourced():
    table = load_catalog("devices")["generator"]
    g = devices.generator()
    assert 10 <= g.max_power_w <= 200 and 20 <= g.max_voltage_v <= 300
    for key in ("max_power_w", "max_voltage_v", "ramp_time_s", "temp_limit_c", "frequency_hz"):
        assert table["sources"].get(key)


def test_damage_catalog():
    sets = arrhenius_sets()
    assert default_arrhenius_name() in sets
    for params in sets.values():
        assert math.isfinite(params.frequency_factor_per_s) and params.frequency_factor_per_s > 0
        assert 1e5 <= params.activation_energy_j_mol <= 1e6
        assert params.source
    assert arrhenius().name == default_arrhenius_name()
    thresholds = catalog_thresholds()
    assert thresholds.isotherm_c == 50.0 and thresholds.cem43_min > 0
