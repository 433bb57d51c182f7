"""Argument checks whose errors name the argument and the value received."""

import math
import numbers


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"Invalid value for argument `{name}`: expected one of {list(choices)}. "
            f"Received: {name}={value!r}"
        )
    return value


def check_positive(name, value, integer=True):
    kind = numbers.Integral if integer else numbers.Real
    if (
        isinstance(value, bool)
        or not isinstance(value, kind)
        or not math.isfinite(value)
        or value <= 0
    ):
        noun = "a positive integer" if integer else "a positive number"
        raise ValueError(
            f"Invalid value for argument `{name}`: expected {noun}. Received: {name}={value!r}"
        )
    return value


def first_line(error):
    """The first line of an exception's message (libraries append pages of advice or data)."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def check_bool(name, value):
    # Only a real bool: "no" or 0.5 would otherwise be taken as True.
    if not isinstance(value, bool):
        raise ValueError(
            f"Invalid value for argument `{name}`: expected True or False. "
            f"Received: {name}={value!r}"
        )
    return value
