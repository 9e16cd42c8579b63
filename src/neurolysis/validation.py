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
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 1024:
        return f"<integer of {value.bit_length()} bits>"  # beyond any float (and str() refuses > 4300 digits)
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


def shown(name: object) -> str:
    """A name the user wrote (a key, a section) as it goes into a one-line message: as is
    when it is plain printable text, else its repr (control characters, line breaks, "")."""
    return name if isinstance(name, str) and name.isprintable() and name.strip() == name and name else repr(name)


TOML_INT_RANGE = (-(2**63), 2**63 - 1)
"""TOML integers are 64-bit (TOML 1.0); ``tomllib`` reads longer ones (hex of any length)."""


def check_toml_integers(value: object, where: str) -> None:
    """Every integer in ``value`` (lists and tables included) within TOML's 64-bit range:
    no field takes a longer one, and Python cannot even print one of over 4300 digits."""
    low, high = TOML_INT_RANGE
    if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
        raise ValidationError(f"{where} = <integer of 19 or more digits>: allowed range is [{low}, {high}] (TOML integers are 64-bit)")
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            check_toml_integers(v, f"{where}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            check_toml_integers(v, f"{where}.{shown(k)}")


def check_number(field: str, value: object) -> float:
    """Return ``value`` as a finite float or raise naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{field} = {_format(value)}: must be a number")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the float range (TOML reads integers of any length)
        raise ValidationError(f"{field} = {_format(value)}: must be a finite number") from None
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
