import json

import pytest

from neurolysis import RFSettings, ValidationError
from neurolysis.examples import conventional_rf, cooled_rf, ex_vivo_chicken, pulsed_rf


@pytest.mark.parametrize("settings", [conventional_rf(), cooled_rf(), pulsed_rf(), ex_vivo_chicken()])
def test_resolved_settings_round_trip_through_json(settings):
    """The JSON `settings` object rebuilds exactly the settings that were simulated."""
    resolved = settings.resolved()
    assert RFSettings(**json.loads(json.dumps(resolved.as_dict()))) == resolved
    assert resolved.resolved() == resolved


def test_defaults_come_from_device_catalog():
    cooled = RFSettings(mode="cooled").resolved()
    assert (cooled.gauge, cooled.tip_mm, cooled.set_temp_c) == (17, 4.0, 60.0)
    assert cooled.coolant_temp_c is not None and cooled.coolant_flow_ml_min is not None
    pulsed = RFSettings(mode="pulsed").resolved()
    assert (pulsed.pulse_voltage_v, pulsed.pulse_frequency_hz, pulsed.pulse_width_ms) == (45.0, 2.0, 20.0)


def test_with_revalidates():
    with pytest.raises(ValidationError, match="time_s = 0"):
        conventional_rf().with_(time_s=0.0)


def test_pulse_width_must_fit_period():
    with pytest.raises(ValidationError, match="pulse_width_ms = 600"):
        RFSettings(mode="pulsed", pulse_frequency_hz=2.0, pulse_width_ms=600.0)


@pytest.mark.parametrize("gauge", [18.5, True, "18"])
def test_gauge_must_be_whole_number(gauge):
    with pytest.raises(ValidationError, match="gauge"):
        RFSettings(gauge=gauge)


def test_tissue_override_is_used_and_reported():
    from neurolysis import load_tissue, simulate_rf

    base = simulate_rf(conventional_rf().with_(time_s=20.0))
    doubled = load_tissue("muscle").scaled(electrical_conductivity_s_m=2.0)
    other = simulate_rf(conventional_rf().with_(time_s=20.0), tissue_override=doubled)
    assert other.to_dict()["tissue_properties"]["electrical_conductivity_s_m"] == pytest.approx(2 * 0.446)
    # homogeneous tissue under temperature control: sigma sets impedance, not the lesion
    assert other.impedance_ohm_start == pytest.approx(base.impedance_ohm_start / 2, rel=1e-6)
    assert other.lesion.width_mm == pytest.approx(base.lesion.width_mm, abs=1e-6)


def test_scaled_rejects_unknown_property():
    from neurolysis import load_tissue

    with pytest.raises(ValidationError, match="tissue property 'colour'"):
        load_tissue("muscle").scaled(colour=2.0)
