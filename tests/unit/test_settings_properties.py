"""Property tests: whatever a user types, RFSettings either accepts it or raises ValidationError
with a one-line message naming the field -- never another exception, never a NaN accepted."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from neurolysis import RFSettings, ValidationError

NUMERIC_FIELDS = [
    "tip_mm", "set_temp_c", "time_s", "ramp_s", "initial_temp_c", "coolant_temp_c", "coolant_flow_ml_min",
    "pulse_voltage_v", "pulse_frequency_hz", "pulse_width_ms", "pulse_temp_limit_c", "max_power_w",
    "h_fine_mm", "dt_s", "domain_mm",
]  # fmt: skip
MODE_OF = {
    "coolant_temp_c": "cooled",
    "coolant_flow_ml_min": "cooled",
    "pulse_voltage_v": "pulsed",
    "pulse_frequency_hz": "pulsed",
    "pulse_width_ms": "pulsed",
    "pulse_temp_limit_c": "pulsed",
}
values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6), st.text(max_size=3), st.none())


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(NUMERIC_FIELDS), value=values)
def test_any_value_is_accepted_or_rejected_cleanly(field, value):
    kwargs = {"mode": MODE_OF.get(field, "conventional"), field: value}
    if field == "initial_temp_c":
        kwargs |= {"ex_vivo": True, "tissue": "chicken-breast"}
    try:
        accepted = RFSettings(**kwargs)
    except ValidationError as error:
        message = str(error)
        assert message.startswith(field) and "\n" not in message
        return
    stored = getattr(accepted, field)
    assert stored is None or (isinstance(stored, int | float) and math.isfinite(stored))


@settings(max_examples=100, deadline=None)
@given(gauge=st.one_of(st.integers(-5, 50), st.floats(allow_nan=True), st.text(max_size=2)))
def test_gauge_accepted_only_from_catalog(gauge):
    try:
        RFSettings(gauge=gauge)
    except ValidationError as error:
        assert str(error).startswith("gauge")
        return
    assert gauge in (16, 17, 18, 20, 22, 23)
