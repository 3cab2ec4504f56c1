"""Counting what the two engines evaluate, so that their costs can be asserted as exact integers.

Inside a ``with count_operations() as counts:`` block every primitive the engines evaluate is
recorded, by *kind* and by primitive name:

========  =================================================================================
kind      one count is
========  =================================================================================
primal    one evaluation of a primitive's forward function (both engines)
tangent   one application of a primitive's JVP rule (forward mode; skipped when no operand
          carries a tangent)
adjoint   one call of a node's backward closure (reverse mode)
========  =================================================================================

A count is a number of *tensor* operations, whatever the sizes of the tensors: it is the cost
model of the graph (how many times each node is visited), and it does not depend on the machine.
The arithmetic inside one operation (the multiplications of a matrix product) is counted by
``torch.utils.flop_counter.FlopCounterMode``.

Blocks may be nested; each counts what runs inside it.  Counters are kept in a context variable,
so threads and asynchronous tasks do not see each other's blocks.
"""

from __future__ import annotations

import contextvars
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from .._checks import check_choice

KINDS = ("primal", "tangent", "adjoint")
"""The kinds of evaluation counted, in the order of the table above."""

_OPEN: contextvars.ContextVar[tuple[OperationCounts, ...]] = contextvars.ContextVar("bplib_autodiff_counts", default=())


class OperationCounts:
    """The evaluations counted inside one :func:`count_operations` block.

    Attributes
    ----------
    by_primitive:
        A ``collections.Counter`` keyed by ``(kind, primitive)``, e.g. ``("adjoint", "matmul")``.
    """

    def __init__(self) -> None:
        self.by_primitive: Counter[tuple[str, str]] = Counter()

    def total(self, kind: str | None = None) -> int:
        """The number of evaluations of one kind (``"primal"``, ``"tangent"``, ``"adjoint"``), or of all kinds."""
        if kind is None:
            return sum(self.by_primitive.values())
        check_choice("OperationCounts.total", "kind", kind, KINDS)
        return sum(n for (k, _), n in self.by_primitive.items() if k == kind)

    def __repr__(self) -> str:
        return f"OperationCounts({', '.join(f'{k}={self.total(k)}' for k in KINDS)})"


@contextmanager
def count_operations() -> Iterator[OperationCounts]:
    """Count the primitive evaluations of both engines inside a ``with`` block.

    Examples
    --------
    >>> import torch
    >>> from bplib.autodiff import Value, count_operations
    >>> with count_operations() as counts:
    ...     y = (Value(torch.tensor(2.0)) * 3.0).exp()
    ...     y.backward()
    >>> counts
    OperationCounts(primal=2, tangent=0, adjoint=2)
    """
    counts = OperationCounts()
    token = _OPEN.set((*_OPEN.get(), counts))
    try:
        yield counts
    finally:
        _OPEN.reset(token)


def _record(kind: str, primitive: str) -> None:
    for counts in _OPEN.get():
        counts.by_primitive[kind, primitive] += 1
