import math

import pytest

from neurolysis.validation import ValidationError, check_choice, check_number, check_range


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_rejected_before_range(bad):
    with pytest.raises(ValidationError, match="x = .*: must be a finite number"):
        check_range("x", bad, 0, 10)


@pytest.mark.parametrize("bad", ["3", None, True, [1]])
def test_non_numbers_rejected(bad):
    with pytest.raises(ValidationError, match="must be a number"):
        check_number("x", bad)


def test_range_message_names_field_value_and_range():
    with pytest.raises(ValidationError) as info:
        check_range("set_temp_c", 150, 40, 95, unit="C")
    assert str(info.value) == "set_temp_c = 150 C: allowed range is [40, 95] C"
    assert "\n" not in str(info.value)


def test_open_bounds_and_one_sided():
    assert check_range("t", 0.5, 0, 1, low_inclusive=False) == 0.5
    with pytest.raises(ValidationError, match=r"allowed range is \(0, 1\]"):
        check_range("t", 0, 0, 1, low_inclusive=False)
    with pytest.raises(ValidationError, match="must be >= 2"):
        check_range("t", 1, 2)


def test_choice_lists_alternatives():
    with pytest.raises(ValidationError, match="gauge = 99: allowed values are 16, 18"):
        check_choice("gauge", 99, [16, 18])
