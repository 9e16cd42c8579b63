"""Stimulation thresholds against the published threshold-distance data (data/stimulation.toml
[[validation]], held out; literature-5.md 1b), and the surrogate's measured error on file."""

import pytest

from neurolysis._catalog import load_catalog
from neurolysis.engines.stimulation import surrogate_threshold
from neurolysis.engines.stimulation_profiles import check_profiles
from neurolysis.stimulation_validation import case_ids, motor_threshold_ma, threshold_case

MISS_REASON = ("the model's currents are 2-4x the published ones: the fascicle sees the mean potential around it, not the near side's, and the "
               "perineurium (938 Ohm m, the middle of 400-2200) smooths it further; the catalog's smallest RF tip (2 mm) is larger than a block "
               "needle's bare point; docs/validation.md 6.9")
KNOWN_MISSES = {"pig-epineurium": MISS_REASON, "pig-2mm": MISS_REASON, "rabbit-1.1mm": MISS_REASON, "rabbit-2.2mm": MISS_REASON}


@pytest.mark.parametrize("case_id", case_ids())
def test_published_threshold_at_distance(case_id, request):
    if case_id in KNOWN_MISSES:
        request.applymarker(pytest.mark.xfail(reason=f"validation miss: {KNOWN_MISSES[case_id]}", strict=True))
    c = threshold_case(case_id)
    assert c.passed, (c.published_ma, c.model_ma, c.band_factor)


def test_thresholds_rise_with_distance_more_slowly_than_the_square():
    """The animal data rise more slowly than r^2 over 0-5 mm (literature-5 1b): pig 0.2 -> 1.0 mA from the
    epineurium to 2 mm; the model rises, and by less than (r / r0)^2 measured from the fibre."""
    currents = [motor_threshold_ma(d, 0.1) for d in (0.0, 1.1, 2.0, 4.0)]
    assert currents == sorted(currents)
    radius = load_catalog("stimulation")["validation_setup"]["nerve_radius_mm"]
    assert currents[-1] / currents[0] < ((radius + 4.0) / radius) ** 2


def test_the_recorded_surrogate_check_is_the_current_surrogate():
    """data/stimulation_surrogate_check.toml was measured with the table and surrogate on main."""
    recorded = load_catalog("stimulation_surrogate_check")["case"]
    for profile in check_profiles():
        assert surrogate_threshold(profile.arc_mm, profile.ve_mv, profile.fibre_key, profile.pulse_ms) == pytest.approx(recorded[profile.name]["surrogate"], rel=1e-3)
