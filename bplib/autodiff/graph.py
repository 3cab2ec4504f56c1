"""Drawing the graph of a :class:`~bplib.autodiff.reverse.Value`: nodes with their values and gradients.

The layout is computed from the topological order, with no graph-drawing package: a node's
*layer* is the length of the longest path to it from a leaf (leaves and constants in layer 0, the
output in the last layer), and the nodes of a layer are stacked in topological order.  Every edge
then points from left to right.  Two edges between the same pair of nodes (``x * x``) are drawn as
two arcs: the fork, whose gradients add.
"""

from __future__ import annotations

from collections import Counter

import torch

from .reverse import Value, topological_order

_FILL = {"leaf": "#cfe2f3", "const": "#eeeeee"}  # every other node (an operation) is white


def layered_layout(root: Value) -> dict[Value, tuple[float, float]]:
    """Positions ``(layer, height)`` of every node of ``root``'s graph; layer 0 holds the leaves.

    Within a layer, nodes are ordered by the mean height of their parents (the barycentre
    heuristic), which keeps most edges from crossing, and centred on height 0.
    """
    order = topological_order(root)
    layer: dict[Value, int] = {}
    for node in order:  # parents first, so their layers are known
        layer[node] = 1 + max((layer[p] for p in node.parents), default=-1)
    positions: dict[Value, tuple[float, float]] = {}
    for k in range(max(layer.values()) + 1):
        members = [node for node in order if layer[node] == k]
        if k > 0:  # highest parents first; sorted() is stable, so ties keep the topological order
            members = sorted(members, key=lambda v: -sum(positions[p][1] for p in v.parents) / len(v.parents))
        for i, node in enumerate(members):
            positions[node] = (float(k), (len(members) - 1) / 2 - i)
    return positions


def _number(t: torch.Tensor, digits: int) -> str:
    return f"{t.item():.{digits}g}" if t.numel() == 1 else f"({'×'.join(map(str, t.shape))} tensor)"


def node_label(node: Value, digits: int = 3) -> str:
    """The text of a node: its name or operation, its value, and its gradient when one was computed.

    A tensor with more than one entry is shown by its shape.
    """
    lines = [node.name or node.op, f"value {_number(node.data, digits)}"]
    if node.grad is not None:
        lines.append(f"grad {_number(node.grad, digits)}")
    return "\n".join(lines)


def draw_graph(root: Value, *, ax=None, digits: int = 3):  # noqa: ANN001, ANN201 -- matplotlib Axes
    """Draw the graph that computed ``root``, from the leaves (left) to ``root`` (right).

    Leaves that require a gradient are blue, constants grey, operations white; each node shows
    :func:`node_label` (numbers with ``digits`` significant digits).  Call
    :meth:`~bplib.autodiff.reverse.Value.backward` first to see the gradients.

    Parameters
    ----------
    root:
        The output whose graph is drawn.
    ax:
        A ``matplotlib.axes.Axes`` to draw on; a new figure is made when it is ``None``.
    digits:
        Significant digits of the values and gradients shown.

    Returns
    -------
    The ``matplotlib.axes.Axes`` drawn on.
    """
    if not isinstance(root, Value):
        raise TypeError(f"draw_graph: argument 'root' must be a Value, got {type(root).__name__}")
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 1:
        raise ValueError(f"draw_graph: argument 'digits' must be a positive int, got {digits!r}")
    positions = layered_layout(root)
    width = 1 + max(x for x, _ in positions.values())
    height = max(Counter(x for x, _ in positions.values()).values())
    if ax is None:
        import matplotlib.pyplot as plt  # here, so that the engines import without matplotlib

        _, ax = plt.subplots(figsize=(2.4 * width, 1.3 * height + 0.4))
    for node, (x1, y1) in positions.items():
        multiplicity = Counter(id(p) for p in node.parents)
        drawn: Counter[int] = Counter()
        for parent in node.parents:
            x0, y0 = positions[parent]
            # an edge that skips a layer bows away from the middle, around the boxes in between;
            # parallel edges (x * x, a fork) spread into separate arcs
            bend = 0.0 if x1 - x0 == 1 else (0.3 if y0 + y1 <= 0 else -0.3)
            n = multiplicity[id(parent)]
            bend += 0.35 * (drawn[id(parent)] - (n - 1) / 2)
            drawn[id(parent)] += 1
            ax.annotate(
                "", xy=(x1, y1), xytext=(x0, y0),
                arrowprops=dict(arrowstyle="-|>", color="0.35", shrinkA=30, shrinkB=30,
                                connectionstyle=f"arc3,rad={bend}"),
            )
    for node, (x, y) in positions.items():
        ax.text(x, y, node_label(node, digits), ha="center", va="center", fontsize=9,
                bbox=dict(boxstyle="round,pad=0.4", facecolor=_FILL.get(node.op, "white"), edgecolor="black"))
    ax.set(xlim=(-0.6, width - 0.4), ylim=(-height / 2, height / 2))
    ax.axis("off")
    return ax
