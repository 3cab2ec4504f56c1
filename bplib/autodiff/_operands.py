"""Checks of the operands both engines share: constants, broadcasting, matrix products, dimensions.

Each raises a ``TypeError`` or ``ValueError`` naming the operation (``"Value.matmul"``,
``"Dual.add"``, ...), the argument, what was expected and what arrived, before torch would raise
an error of its own from deeper down.
"""

from __future__ import annotations

import torch

from .._checks import check_same_dtype_and_device, check_tensor


def as_data(fn: str, name: str, x: object) -> torch.Tensor:
    """A floating tensor given as a tensor, or a Python real number made a 0-d float64 tensor."""
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return torch.tensor(float(x), dtype=torch.float64)
    return check_tensor(fn, name, x, floating=True)


def constant(fn: str, name: str, x: object, like: torch.Tensor) -> torch.Tensor:
    """An operand that is not a node of the engine: a real number (made a 0-d tensor like ``like``) or a tensor."""
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return like.new_tensor(float(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{fn}: argument '{name}' must be a {fn.split('.')[0]}, a torch.Tensor or a real number, "
            f"got {type(x).__name__}"
        )
    check_tensor(fn, name, x, floating=True)
    return x


def check_operands(fn: str, op: str, a: torch.Tensor, b: torch.Tensor) -> None:
    """Same dtype and device; shapes that broadcast (element-wise ``op``) or that multiply (``matmul``)."""
    check_same_dtype_and_device(fn, ("self", a), ("other", b))
    if op == "matmul":
        if a.dim() != 2 or b.dim() != 2:
            raise ValueError(
                f"{fn}: arguments 'self' and 'other' must be 2-D matrices, got shapes {tuple(a.shape)} and {tuple(b.shape)}"
            )
        if a.shape[1] != b.shape[0]:
            raise ValueError(
                f"{fn}: argument 'other' must have as many rows as 'self' has columns ({a.shape[1]}), "
                f"got shape {tuple(b.shape)} for 'self' of shape {tuple(a.shape)}"
            )
        return
    try:
        torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError:
        raise ValueError(
            f"{fn}: arguments 'self' and 'other' must have shapes that broadcast (trailing dimensions equal "
            f"or 1), got {tuple(a.shape)} and {tuple(b.shape)}"
        ) from None


def check_dim(fn: str, dim: object, ndim: int, *, optional: bool) -> None:
    """``dim`` is an integer in ``[-ndim, ndim)`` (or ``None`` when ``optional``); a 0-D operand has no such integer."""
    if dim is None and optional:
        return
    if isinstance(dim, bool) or not isinstance(dim, int):
        expected = "an int or None" if optional else "an int"
        raise TypeError(f"{fn}: argument 'dim' must be {expected}, got {type(dim).__name__} {dim!r}")
    if ndim == 0:  # torch takes dim 0 or -1 of a 0-D tensor; the closures here unsqueeze a real dimension
        raise ValueError(f"{fn}: argument 'self' must have at least 1 dimension for dim={dim} to name, got shape ()")
    if not -ndim <= dim < ndim:
        raise ValueError(f"{fn}: argument 'dim' must be an integer in [{-ndim}, {ndim - 1}] for a {ndim}-D operand, got {dim}")


def check_transpose(fn: str, a: torch.Tensor) -> None:
    """``mT`` swaps the last two dimensions, so the operand needs at least two."""
    if a.dim() < 2:
        raise ValueError(f"{fn}: argument 'self' must have at least 2 dimensions to transpose, got shape {tuple(a.shape)}")


def check_exponent(fn: str, exponent: object) -> float:
    """A constant real exponent: neither engine differentiates with respect to an exponent."""
    if isinstance(exponent, bool) or not isinstance(exponent, (int, float)):
        raise TypeError(
            f"{fn}: argument 'exponent' must be a real number (a constant exponent), got {type(exponent).__name__}"
        )
    return exponent


BINARY = ("add", "sub", "mul", "div", "matmul")
"""The primitives with two operands; every other one has one."""

PARAMETERS = {"pow": ("exponent",), "sum": ("dim",), "mean": ("dim",), "log_softmax": ("dim",)}
"""The keyword parameters each primitive takes (``exponent`` is required, ``dim`` optional)."""


def check_signature(op: str, n_operands: int, params: dict[str, object]) -> None:
    """``apply``'s operands and keyword parameters: as many as the primitive ``op`` takes."""
    expected = 2 if op in BINARY else 1
    if n_operands != expected:
        raise TypeError(f"apply: primitive {op!r} takes {expected} operand(s), got {n_operands}")
    allowed = PARAMETERS.get(op, ())
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise TypeError(f"apply: primitive {op!r} takes the keyword parameters {list(allowed)}, got {unknown}")
    if op == "pow" and "exponent" not in params:
        raise TypeError("apply: primitive 'pow' requires the keyword parameter 'exponent'")
