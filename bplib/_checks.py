"""Input validation shared by every public function of bplib.

Each check raises a ``TypeError`` or ``ValueError`` whose message names the
function, the argument, what was expected and what arrived, so that a reader
who passes a wrong tensor learns what to change without reading a torch stack
trace.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def _describe(x: torch.Tensor) -> str:
    return f"tensor of shape {tuple(x.shape)}, dtype {x.dtype}, device {x.device}"


def check_tensor(
    fn: str,
    name: str,
    x: object,
    *,
    ndim: int | None = None,
    floating: bool = False,
) -> torch.Tensor:
    """Check that ``x`` is a tensor, optionally of a given rank and of floating dtype."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{fn}: argument '{name}' must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None and x.dim() != ndim:
        raise ValueError(f"{fn}: argument '{name}' must be {ndim}-D, got a {_describe(x)}")
    if floating and not x.is_floating_point():
        raise TypeError(
            f"{fn}: argument '{name}' must have a floating dtype (float32 or float64), "
            f"got a {_describe(x)}"
        )
    return x


def check_same_device(fn: str, reference: tuple[str, torch.Tensor], *others: tuple[str, torch.Tensor]) -> None:
    """Check that every named tensor lives on the device of the reference tensor."""
    ref_name, ref = reference
    device = ref.device
    for name, x in others:
        if x.device != device:
            raise ValueError(
                f"{fn}: argument '{name}' is on device {x.device} but '{ref_name}' is on {device}; "
                f"move one of them with .to(device)"
            )


def check_same_dtype_and_device(fn: str, reference: tuple[str, torch.Tensor], *others: tuple[str, torch.Tensor]) -> None:
    """Check that every named tensor has the dtype and the device of the reference tensor."""
    ref_name, ref = reference
    dtype = ref.dtype
    for name, x in others:
        if x.dtype is not dtype:  # dtypes are singletons
            raise TypeError(
                f"{fn}: argument '{name}' has dtype {x.dtype} but '{ref_name}' has dtype {dtype}; "
                f"convert one of them with .to(dtype)"
            )
    check_same_device(fn, reference, *others)


def check_upstream(fn: str, name: str, grad: object, output: tuple[str, torch.Tensor]) -> None:
    """Check the upstream gradient ``grad`` of a backward function against the forward output.

    ``output`` names a tensor of the cache with the forward output's shape, dtype and device (the
    output itself, or an input of the same shape); ``grad`` must be a floating tensor like it.
    """
    check_tensor(fn, name, grad, floating=True)
    check_same_dtype_and_device(fn, output, (name, grad))
    shape = output[1].shape
    if grad.shape != shape:
        raise ValueError(
            f"{fn}: argument '{name}' must have the shape of the forward output {tuple(shape)}, got {tuple(grad.shape)}"
        )


def check_floating_dtype(fn: str, dtype: object) -> torch.dtype:
    """Check that the argument ``dtype`` is a floating ``torch.dtype``; return it."""
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"{fn}: argument 'dtype' must be a floating torch.dtype, got {dtype!r}")
    return dtype


def check_generator(fn: str, generator: object) -> torch.Generator | None:
    """Check that the argument ``generator`` is a :class:`torch.Generator` or ``None``; return it."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{fn}: argument 'generator' must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


def check_shape(fn: str, name: str, x: torch.Tensor, expected: Sequence[int | None], meaning: str) -> None:
    """Check ``x.shape`` against ``expected``, where ``None`` matches any size."""
    shape = x.shape
    if len(shape) == len(expected):
        for e, s in zip(expected, shape):
            if e is not None and e != s:
                break
        else:
            return
    sizes = ["any" if e is None else str(e) for e in expected]
    shown = f"({sizes[0]},)" if len(sizes) == 1 else f"({', '.join(sizes)})"
    raise ValueError(f"{fn}: argument '{name}' must have shape {shown} ({meaning}), got {tuple(shape)}")


def check_choice(fn: str, name: str, value: object, choices: Sequence[str]) -> str:
    """Check that ``value`` is one of the allowed names."""
    if value not in choices:
        raise ValueError(f"{fn}: argument '{name}' must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value  # type: ignore[return-value]


# ----------------------------------------------------------------------------- numbers and flags
# ``subject`` says what is checked: ``argument("p")`` for an argument, or a phrase such as
# ``"param_groups[0]['lr']"`` for a value that is no argument of the function.


def argument(name: str) -> str:
    """The subject of a message about the argument ``name``: ``"argument 'name'"``."""
    return f"argument '{name}'"


def interval(low: float = -math.inf, high: float | None = None, *, low_open: bool = False, high_open: bool = False) -> str:
    """The allowed values in words, as the messages and the documentation say them.

    ``">= 0"``, ``"> 0"``, ``"in [0, 1)"``, ``"in (0, 1]"``, or ``"finite"`` when there is no bound.
    """
    if high is None or math.isinf(high):
        if math.isinf(low):
            return "finite"
        return f"{'>' if low_open else '>='} {low:g}"
    return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_real(
    fn: str,
    subject: str,
    value: object,
    low: float = -math.inf,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    why: str = "",
) -> float:
    """Check that ``value`` is a finite real number from ``low`` up to ``high``; return it as a float.

    ``high=None``: no upper bound; ``low_open`` / ``high_open`` exclude the bound.  ``why``, when given,
    ends the message of the ``ValueError``: the reason for the bounds.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{fn}: {subject} must be a real number, got {type(value).__name__} {value!r}")
    above = low < value if low_open else low <= value
    below = high is None or (value < high if high_open else value <= high)
    if not math.isfinite(value) or not (above and below):  # NaN fails every comparison
        allowed = interval(low, high, low_open=low_open, high_open=high_open)
        raise ValueError(f"{fn}: {subject} must be {allowed}, got {value!r}{f' ({why})' if why else ''}")
    return float(value)


def check_positive(fn: str, subject: str, value: object, *, integer: bool = False) -> None:
    """Check that ``value`` is a finite Python number > 0 (with ``integer``: an int >= 1)."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        expected = "an int" if integer else "a Python number"
        raise TypeError(f"{fn}: {subject} must be {expected}, got {type(value).__name__}")
    if not (value > 0 and math.isfinite(value)):
        expected = "an int >= 1" if integer else "a finite number > 0"
        raise ValueError(f"{fn}: {subject} must be {expected}, got {value!r}")


def check_integer(fn: str, subject: str, value: object, low: int) -> int:
    """Check that ``value`` is an integer (not a bool) and at least ``low``; return it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{fn}: {subject} must be an integer, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{fn}: {subject} must be an integer >= {low}, got {value!r}")
    return value


def check_flag(fn: str, subject: str, value: object) -> bool:
    """Check that ``value`` is ``True`` or ``False`` (not merely truthy); return it."""
    if not isinstance(value, bool):
        raise TypeError(f"{fn}: {subject} must be True or False, got {type(value).__name__} {value!r}")
    return value
