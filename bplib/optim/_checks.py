"""Checks shared by the optimisers, their functional cores and the schedules.

Each raises a ``TypeError`` or ``ValueError`` whose message names the function, what is wrong
(``subject``: ``"argument 'lr'"``, or ``"param_groups[0]['lr']"`` for a value that is no argument),
what was expected and what arrived.  The tensor checks come from :mod:`bplib._checks`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .._checks import check_same_dtype_and_device, check_shape, check_tensor


def check_sequence(fn: str, name: str, xs: object, what: str) -> None:
    """Check that ``xs`` is a sequence (a list, a tuple or a tuple subclass), not a lone tensor or an iterator."""
    if isinstance(xs, torch.Tensor):
        raise TypeError(f"{fn}: argument '{name}' must be a sequence of {what}, got a single tensor; wrap it in a list")
    if not isinstance(xs, Sequence):
        raise TypeError(
            f"{fn}: argument '{name}' must be a sequence (list or tuple) of {what}, got {type(xs).__name__}"
        )


def check_params(fn: str, params: object) -> None:
    """Check that ``params`` is a non-empty sequence of distinct floating tensors."""
    check_sequence(fn, "params", params, "tensors")
    if len(params) == 0:
        raise ValueError(f"{fn}: argument 'params' must hold at least one tensor, got an empty {type(params).__name__}")
    check_distinct_tensors(fn, params, [f"params[{i}]" for i in range(len(params))])


def check_distinct_tensors(fn: str, params: Sequence[object], names: Sequence[str]) -> None:
    """Check that every entry is a floating tensor and none comes twice; ``names[i]`` names ``params[i]``."""
    name_of: dict[int, str] = {}
    for p, name in zip(params, names):
        check_tensor(fn, name, p, floating=True)
        if id(p) in name_of:
            raise ValueError(
                f"{fn}: argument 'params' holds the same tensor at {name_of[id(p)]} and {name}; "
                f"it would be updated twice per step"
            )
        name_of[id(p)] = name


def check_tensor_list(
    fn: str,
    name: str,
    xs: object,
    params: Sequence[torch.Tensor],
    param_names: Sequence[str] | None = None,
    *,
    state: bool = False,
    none_allowed: bool = False,
) -> None:
    """Check that ``xs`` holds one tensor per parameter, each with the shape, dtype and device of its parameter.

    ``xs`` may be any sequence, or must be a list with ``state`` (a functional core writes state
    into it).  ``param_names[i]`` names ``params[i]`` in the messages (default ``"params[i]"``).
    """
    if state and not isinstance(xs, list):
        raise TypeError(
            f"{fn}: argument '{name}' must be a list of tensors, one per parameter, got {type(xs).__name__}"
        )
    check_sequence(fn, name, xs, "tensors, one per parameter")
    if len(xs) != len(params):
        raise ValueError(f"{fn}: argument '{name}' must hold {len(params)} tensors, one per parameter, got {len(xs)}")
    param_names = param_names or [f"params[{i}]" for i in range(len(params))]
    for i, (x, p, p_name) in enumerate(zip(xs, params, param_names)):
        if x is None and none_allowed:
            continue
        check_tensor(fn, f"{name}[{i}]", x)
        check_shape(fn, f"{name}[{i}]", x, tuple(p.shape), f"the shape of {p_name}")
        check_same_dtype_and_device(fn, (p_name, p), (f"{name}[{i}]", x))


def check_step_number(fn: str, step: object) -> None:
    """Check the ``step`` of a functional core: the number of this step, 1 for the first."""
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ValueError(f"{fn}: argument 'step' must be the number of this step, an integer >= 1, got {step!r}")


def check_functional(fn: str, params: object, grads: object, **states: object) -> None:
    """The list checks of a functional core: ``params``, ``grads``, and the state lists it always reads."""
    check_params(fn, params)
    check_tensor_list(fn, "grads", grads, params)
    for name, xs in states.items():
        check_tensor_list(fn, name, xs, params, state=True)
