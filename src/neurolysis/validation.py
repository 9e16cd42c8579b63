"""Input checks shared by every value type: one clear message naming field, value and range.

Finiteness is checked before any range so that NaN can never slip through a comparison.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


class ValidationError(ValueError):
    """A user-supplied value is outside what the model accepts.

    The message is one line: ``<field> = <value>: <what is allowed>``.
    """


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


def check_number(field: str, value: object) -> float:
    """Return ``value`` as a finite float or raise naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{field} = {_format(value)}: must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValidationError(f"{field} = {_format(value)}: must be a finite number")
    return number


def check_range(
    field: str,
    value: object,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    unit: str = "",
) -> float:
    """Return ``value`` as a float inside [low, high] (bounds optional), else raise."""
    number = check_number(field, value)
    too_low = low is not None and (number < low if low_inclusive else number <= low)
    too_high = high is not None and (number > high if high_inclusive else number >= high)
    if too_low or too_high:
        raise ValidationError(f"{field} = {_format(value)}{unit and ' ' + unit}: {_describe_range(low, high, low_inclusive, high_inclusive, unit)}")
    return number


def _describe_range(low, high, low_inclusive, high_inclusive, unit) -> str:
    suffix = f" {unit}" if unit else ""
    if low is not None and high is not None:
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        return f"allowed range is {left}{low:g}, {high:g}{right}{suffix}"
    if low is not None:
        return f"must be {'>=' if low_inclusive else '>'} {low:g}{suffix}"
    return f"must be {'<=' if high_inclusive else '<'} {high:g}{suffix}"


def check_choice(field: str, value: object, allowed: Iterable[object]) -> object:
    """Return ``value`` if it is one of ``allowed``, else raise listing the choices."""
    choices = list(allowed)
    if value not in choices:
        listed = ", ".join(_format(c) for c in choices)
        raise ValidationError(f"{field} = {_format(value)}: allowed values are {listed}")
    return value
