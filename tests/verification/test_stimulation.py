"""The stimulation test's parts against closed forms and against PyFibers (docs/models/stimulation.md).

- our own McNeal-Sweeney cable (physics/fibre.py) against PyFibers' SWEENEY model on the same point
  source (the same published equations: an independent check of the cable solver and of how the
  table was built);
- the sheath's core cable against its closed form for a cosine, with second-order convergence;
- the surrogate's width reading and table lookup against the point sources it was built from.
"""

import math

import numpy as np
import pytest

from neurolysis._catalog import load_catalog
from neurolysis.engines.stimulation import FWHM_PER_DISTANCE, core_potential, equivalent_width_mm, fibre_tables, sheath_length_constant_m, surrogate_threshold, table_peak_ve_mv
from neurolysis.engines.stimulation_profiles import point_source_mv
from neurolysis.physics.fibre import SweeneyAxon, point_source_potential_v, threshold_scale


def _own_sweeney_ma(distance_mm: float, pulse_ms: float) -> float:
    axon = SweeneyAxon(10e-6, 21)  # 20 mm of fibre, as the table's runs
    ve = point_source_potential_v(axon, -1e-3, distance_mm * 1e-3, 0.2)
    return threshold_scale(axon, ve, pulse_ms * 1e-3)


@pytest.mark.parametrize("pulse_index, distance_index", [(0, 0), (0, 2), (1, 1), (1, 2)])
def test_own_cable_matches_pyfibers_sweeney(pulse_index, distance_index):
    """Same equations, two solvers: within 3 % (PyFibers bisects to 1 %; its upper bound is reported)."""
    check = load_catalog("stimulation_thresholds")["sweeney_check"]
    pulse, distance = check["pulse_ms"][pulse_index], check["distance_mm"][distance_index]
    pyfibers = check["threshold_ma"][pulse_index][distance_index]
    assert _own_sweeney_ma(distance, pulse) == pytest.approx(pyfibers, rel=0.03)


def test_own_cable_thresholds_rise_with_distance_and_fall_with_pulse_width():
    near, far = _own_sweeney_ma(0.5, 1.0), _own_sweeney_ma(2.0, 1.0)
    assert far > 3 * near
    assert _own_sweeney_ma(1.0, 0.1) > _own_sweeney_ma(1.0, 1.0)


def test_core_cable_against_its_closed_form_with_second_order_convergence():
    """lambda^2 V'' - V = -cos(kz) has V = cos(kz) / (1 + lambda^2 k^2); sealed ends sit at antinodes."""
    lam, k = 1.5e-3, 2 * math.pi / 4e-3
    errors = []
    for n in (40, 80, 160):
        length = 8e-3  # two wavelengths: the ends are antinodes, where the exact solution has zero slope
        step = length / n
        z = (np.arange(n) + 0.5) * step
        exact = np.cos(k * z) / (1 + lam**2 * k**2)
        errors.append(np.max(np.abs(core_potential(step, np.cos(k * z), lam) - exact)))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert orders.min() > 1.8, orders


def test_core_cable_keeps_a_uniform_potential_and_the_length_constant_is_the_formula():
    assert core_potential(1e-4, np.full(50, 0.3), 2e-3) == pytest.approx(np.full(50, 0.3))
    s = load_catalog("stimulation")["sheath"]
    a = 0.4e-3
    expected = math.sqrt(s["endoneurium_longitudinal_s_m"] * a * (s["perineurium_thickness_fraction"] * 2 * a) * s["perineurium_resistivity_ohm_m"] / 2)
    assert sheath_length_constant_m(a) == pytest.approx(expected)
    assert 1e-3 < expected < 2.5e-3  # 1.6 mm for the catalogued sheath: hand value


@pytest.mark.parametrize("distance_mm", [0.3, 1.0, 4.0])
def test_a_point_source_reads_as_its_own_distance(distance_mm):
    z = np.arange(-40.0, 40.0, 0.01)
    assert equivalent_width_mm(z, point_source_mv(z, distance_mm)) == pytest.approx(distance_mm, rel=0.01)
    assert FWHM_PER_DISTANCE == pytest.approx(2 * math.sqrt(3))


def test_surrogate_returns_the_table_threshold_for_the_point_sources_it_was_built_from():
    z = np.arange(-60.0, 60.0, 0.01)
    for table in fibre_tables():
        for i, pulse in enumerate(table.pulse_ms):
            for j, d in enumerate(table.distance_mm):
                threshold_ma = load_catalog("stimulation_thresholds")["fibre"][table.key]["threshold_ma"][i][j]
                assert surrogate_threshold(z, -point_source_mv(z, d), table.key, pulse) == pytest.approx(threshold_ma, rel=0.02), (table.key, pulse, d)


def test_table_interpolates_between_diameters_and_flags_its_edges():
    nine, _ = table_peak_ve_mv("myelinated", 9.0, 1.0, 1.0)
    twelve, _ = table_peak_ve_mv("myelinated", 12.0, 1.0, 1.0)
    between, outside = table_peak_ve_mv("myelinated", 10.5, 1.0, 1.0)
    assert min(nine, twelve) <= between <= max(nine, twelve) and not outside
    assert table_peak_ve_mv("myelinated", 20.0, 1.0, 1.0)[1]  # beyond the 15 um fibre
    assert table_peak_ve_mv("myelinated", 9.0, 1.0, 20.0)[1]  # wider than the table's 8 mm
    assert twelve < nine  # larger fibres are easier to excite
