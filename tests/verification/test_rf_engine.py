"""Whole RF runs: energy balance, controller behaviour, refinement and mode-specific checks."""

import numpy as np
import pytest

from neurolysis.engines.rf import engine2d, generator
from neurolysis.engines.rf.engine2d import simulate_rf
from neurolysis.engines.rf.settings import RFSettings
from neurolysis.examples import conventional_rf, cooled_rf, ex_vivo_chicken, pulsed_rf

ENERGY_TOLERANCE = 1e-6  # relative; the discrete balance is exact up to the linear-solver tolerance


@pytest.mark.parametrize(
    "settings",
    [conventional_rf(), cooled_rf(), ex_vivo_chicken(), pulsed_rf().with_(time_s=10.0)],
    ids=["conventional", "cooled", "ex-vivo", "pulsed"],
)
def test_energy_balance(settings, run_rf):
    """Electrical energy (electrode current x voltage) = stored + perfusion + coolant + boundary outflow."""
    energy = run_rf(settings).energy
    assert energy.delivered_j > 0
    assert energy.imbalance_relative < ENERGY_TOLERANCE, energy.as_dict()


def test_controller_follows_ramp_and_holds(run_rf):
    result = run_rf(conventional_rf())
    s = result.settings
    t, tip = result.traces.time_s, result.traces.tip_temp_c
    setpoint = np.where(t < s.ramp_s, 37.0 + (s.set_temp_c - 37.0) * t / s.ramp_s, s.set_temp_c)
    assert np.max(np.abs(tip - setpoint)) < 0.5
    assert tip.max() <= s.set_temp_c + 0.5
    assert result.max_tissue_temp_c > s.set_temp_c - 5  # tissue is heated, not the set point imposed on it
    assert np.all(result.traces.power_w <= s.max_power_w + 1e-9)


def test_power_limit_saturates_and_warns():
    result = simulate_rf(conventional_rf().with_(max_power_w=1.0, time_s=40.0))
    assert result.traces.power_w.max() == pytest.approx(1.0, rel=1e-6)
    assert result.tip_temp_c_final < 70
    assert any("power limit" in w for w in result.warnings)


def test_impedance_falls_as_tissue_heats(run_rf):
    result = run_rf(conventional_rf())
    assert result.impedance_ohm_end < result.impedance_ohm_start


@pytest.mark.slow
def test_default_lesion_mesh_and_time_step_converged(run_rf):
    """The default mesh (h = 0.2 mm, dt = 1 s) is within the stated 0.1 mm of a converged
    solution (h = 0.05 mm, dt = 0.5 s, where halving h again moves the lesion < 0.02 mm),
    and one halving of h and dt moves width and length by less than that too."""
    base = run_rf(conventional_rf()).lesion
    halved = run_rf(conventional_rf().with_(h_fine_mm=0.1, dt_s=0.5)).lesion
    converged = run_rf(conventional_rf().with_(h_fine_mm=0.05, dt_s=0.5, fine_margin_mm=engine2d.FINE_MARGIN_DEFAULT_MM)).lesion
    for name in ("width_mm", "length_mm"):
        for other, label in ((halved, "halving h and dt"), (converged, "the converged solution")):
            change = abs(getattr(other, name) - getattr(base, name))
            assert change < engine2d.MESH_TOLERANCE_MM, f"{name} differs by {change:.3f} mm from {label}"


@pytest.mark.parametrize(
    "settings",
    [conventional_rf(), RFSettings(gauge=22, tip_mm=5.0, set_temp_c=60.0, time_s=60.0), RFSettings(gauge=20, tip_mm=10.0, set_temp_c=70.0, time_s=120.0, tissue="fat")],
    ids=["default", "small", "fat"],
)
def test_fine_region_fitted_to_the_expected_lesion_keeps_the_lesion(settings, run_rf):
    """The default fine region follows the lesion the instant table expects (engine2d.fine_margin_mm):
    fewer nodes than the fixed 8 mm region, and width and length within 0.05 mm (half the verified
    tolerance), the volume within 1 %, of the fixed region's lesion."""
    fitted = run_rf(settings)
    fixed = run_rf(settings.with_(fine_margin_mm=engine2d.FINE_MARGIN_DEFAULT_MM))
    assert fitted.mesh["fine_margin_from"].startswith("fitted") and fitted.mesh["nodes"] < 0.8 * fixed.mesh["nodes"]
    for name in ("width_mm", "length_mm"):
        assert getattr(fitted.lesion, name) == pytest.approx(getattr(fixed.lesion, name), abs=0.05), name
    assert fitted.lesion.volume_mm3 == pytest.approx(fixed.lesion.volume_mm3, rel=0.01)


def test_fine_region_is_fixed_where_no_lesion_is_expected():
    """Outside the instant table (cooled RF here) and for lesions that reach beyond it, the fine region keeps its fixed reach."""
    fixed = engine2d.FINE_MARGIN_DEFAULT_MM
    assert engine2d.fine_margin_mm(cooled_rf().resolved()) == (fixed, fixed, fixed, "default (the lesion is outside the instant table)")
    assert engine2d.fine_margin_mm(RFSettings(gauge=16, tip_mm=15.0, set_temp_c=90.0, time_s=180.0).resolved())[0] == fixed
    assert engine2d.fine_margin_mm(RFSettings(fine_margin_mm=5.5).resolved()) == (5.5, 5.5, 5.5, "given")


@pytest.mark.slow
def test_far_boundary_does_not_change_lesion(run_rf):
    """Doubling the distance to the far boundary changes the lesion by < 0.02 mm."""
    base = run_rf(conventional_rf()).lesion
    far = run_rf(conventional_rf().with_(domain_mm=120.0)).lesion
    assert abs(far.width_mm - base.width_mm) < 0.02
    assert abs(far.length_mm - base.length_mm) < 0.02


def test_pulsed_refresh_and_substeps_resolved(monkeypatch):
    """The two pulsed-mode shortcuts against a finer run on a 10 s train: properties renewed
    every pulse (not every 1 s) and 20 (not 5) steps per pulse move the probe temperatures
    (0.5-2 mm from the tip) by < 0.1 C and the hottest time-mean by < 0.15 C. The hottest
    node's spike is not gated: it sits on the electrode's singular edge and keeps rising
    with resolution (reported as such)."""
    settings = pulsed_rf().with_(time_s=10.0)
    base = simulate_rf(settings).pulsed
    monkeypatch.setattr(generator, "PULSED_REFRESH_S", 0.5)
    monkeypatch.setattr(generator, "PULSE_SUBSTEPS", 20)
    resolved = simulate_rf(settings).pulsed
    for name, probe in base["probe_temp_c"].items():
        fine = resolved["probe_temp_c"][name]
        assert abs(fine["peak_c"] - probe["peak_c"]) < 0.1, name
        assert abs(fine["mean_c"] - probe["mean_c"]) < 0.1, name
    assert abs(resolved["mean_tissue_temp_c"] - base["mean_tissue_temp_c"]) < 0.15


def test_pulsed_stays_under_its_cap_without_a_lesion(run_rf):
    """Moved here from validation (pulsed-nonlesional, docs/validation.md): the generator caps
    the tip at its limit (42 C), so a cool, non-lesional train is what the code guarantees.
    Verification of that cap, not agreement with the published 42-44 C. The cap acts at the
    end of each pulse step; heat from the electrode edge still reaches the thermocouple
    after a pulse, so the tip overshoots by up to ~0.7 C (42.7 C), hence the 1 C allowance."""
    result = run_rf(pulsed_rf().with_(time_s=20.0))
    limit = result.settings.resolved().pulse_temp_limit_c
    assert result.traces.tip_temp_c.max() <= limit + 1.0
    assert not result.pulsed["thermal_lesion"] and result.lesion.volume_mm3 == 0.0
    assert result.coagulation.volume_mm3 == 0.0  # no tissue near 58 C away from the singular edge


def test_cooled_probe_holds_tip_cool_with_hotter_tissue(run_rf):
    result = run_rf(cooled_rf())
    assert result.tip_temp_c_final == pytest.approx(60.0, abs=0.5)
    assert result.max_tissue_temp_c > 70.0
    assert result.energy.coolant_loss_j > 0.5 * result.energy.delivered_j


def test_ex_vivo_has_no_perfusion_loss(run_rf):
    result = run_rf(ex_vivo_chicken())
    assert result.energy.perfusion_loss_j == 0.0
    assert result.traces.tip_temp_c[0] < 30.0  # starts from the 21 C bath


def test_lesion_growth_recorded(run_rf):
    growth = run_rf(conventional_rf()).growth
    assert growth.time_s[-1] == pytest.approx(90.0)
    assert np.all(np.diff(growth.volume_mm3) >= 0)
    assert growth.width_mm[-1] == pytest.approx(run_rf(conventional_rf()).lesion.width_mm)


def test_reproducible():
    a = simulate_rf(RFSettings(time_s=20.0))
    b = simulate_rf(RFSettings(time_s=20.0))
    assert a.lesion == b.lesion
    np.testing.assert_array_equal(a.traces.power_w, b.traces.power_w)
