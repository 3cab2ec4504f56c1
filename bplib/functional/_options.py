"""Checks of the non-tensor arguments of the forward passes: flags and real numbers in a range.

Each raises a ``TypeError`` or ``ValueError`` that names the function, the argument, what was
expected and what arrived, as the tensor checks of :mod:`bplib._checks` do.
"""

from __future__ import annotations

import math


def check_flag(fn: str, name: str, value: object) -> bool:
    """Check that ``value`` is ``True`` or ``False`` (not merely truthy)."""
    if not isinstance(value, bool):
        raise TypeError(f"{fn}: argument '{name}' must be True or False, got {type(value).__name__} {value!r}")
    return value


def check_real(
    fn: str,
    name: str,
    value: object,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    high_open: bool = False,
    why: str = "",
) -> float:
    """Check that ``value`` is a finite real number in [low, high] (in [low, high) with ``high_open``).

    The default bounds accept every finite real number.  ``why``, when given, is appended to the
    message of the ``ValueError``: the reason for the bounds.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{fn}: argument '{name}' must be a real number, got {type(value).__name__} {value!r}")
    inside = low <= value < high if high_open else low <= value <= high
    if not math.isfinite(value) or not inside:  # NaN fails every comparison
        if math.isinf(high):
            bounds = "finite" if math.isinf(low) else f">= {low:g}"
        else:
            bounds = f"in [{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{fn}: argument '{name}' must be {bounds}, got {value!r}{f' ({why})' if why else ''}")
    return float(value)
