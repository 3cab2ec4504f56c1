"""Two small automatic-differentiation engines, written to be read: reverse mode and forward mode.

* :mod:`bplib.autodiff.reverse`: :class:`~bplib.autodiff.reverse.Value`, a tensor that records the graph it was computed
  by, one closure per operation beside its forward computation, and a backward sweep in reverse
  topological order (backpropagation, for any graph of the primitives below);
* :mod:`bplib.autodiff.forward`: :class:`~bplib.autodiff.forward.Dual`, a primal and its tangent, pushed through the same
  primitives by a table of JVP rules;
* :mod:`bplib.autodiff.counting`: :func:`~bplib.autodiff.counting.count_operations`, which counts what each engine evaluates,
  so that the cost of forward and reverse mode can be asserted as integers;
* :mod:`bplib.autodiff.graph`: :func:`~bplib.autodiff.graph.draw_graph`, the graph of a Value with its values and gradients.

Both engines know the same sixteen primitives: ``add``, ``sub``, ``neg``, ``mul``, ``div`` (with
PyTorch's broadcasting), ``pow`` (by a constant), ``matmul`` (of matrices), ``transpose``, ``sum``
and ``mean`` (of everything or along a dimension), ``exp``, ``log``, ``tanh``, ``relu``,
``sigmoid`` and ``log_softmax``: enough for a multi-layer perceptron and its cross-entropy loss.
Their methods carry torch's names, so one Python function of its arguments runs on Values, on
Duals and on torch tensors alike.

The engines stand alone: they compute with torch tensors and share bplib's argument checks, and
use nothing else of bplib -- none of its forward/backward pairs, networks or optimisers, which
they are checked against in the book.
"""

from . import counting, forward, graph, reverse
from .counting import OperationCounts, count_operations
from .forward import Dual
from .graph import draw_graph
from .reverse import Value

__all__ = ["Dual", "OperationCounts", "Value", "count_operations", "counting", "draw_graph", "forward", "graph", "reverse"]
