"""Input validation shared by every public function of bplib.

Each check raises a ``TypeError`` or ``ValueError`` whose message names the
function, the argument, what was expected and what arrived, so that a reader
who passes a wrong tensor learns what to change without reading a torch stack
trace.
"""

from __future__ import annotations

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
