"""Model parallelism: an MLP cut into stages that pass activations forward and errors backward.

Cut the :math:`L` layers at :math:`0 = l_0 < l_1 < \\dots < l_p = L`; stage :math:`s` holds layers
:math:`l_s + 1, \\dots, l_{s+1}` and the cut runs through the pre-activations.  Stage :math:`s > 0`
receives :math:`Z^{l_s}` from stage :math:`s - 1` and applies the activation first:

.. math::

    Z^{l_s} \\xrightarrow{\\ \\sigma\\ } A^{l_s} \\xrightarrow{\\text{layers } l_s + 1, \\dots, l_{s+1}} Z^{l_{s+1}},

so that on the way back it receives :math:`\\Delta^{l_{s+1}} = \\partial \\mathcal{L}/\\partial Z^{l_{s+1}}` and
sends :math:`\\Delta^{l_s}`: the message between stages is exactly the error of the book's
recursion (chapter 3's :math:`\\delta^l`, one row per sample).  Each stage chains the public pairs
of :mod:`bplib.functional`, as :class:`bplib.MLP`'s reference does.

Split the batch of :math:`m` rows into :math:`M` equal micro-batches :math:`B_j` of :math:`m/M`
rows.  The last stage starts each micro-batch's backward pass with
:math:`\\partial \\mathcal{L}/\\partial Z^L_{B_j} = \\tfrac{m_j}{m} \\cdot \\tfrac{1}{m_j}(P_{B_j} - Y_{B_j})`:
the rows :math:`B_j` of the full batch's :math:`\\Delta^L`, so the micro-batches' gradients simply add
up to the full batch's (chapter 5's micro-batch identity).

:func:`pipeline_loss_and_grads` runs a schedule of :mod:`bplib.distributed.schedule` in one process,
task by task in the order of its event log; :func:`pipeline_stage_task` runs stage :math:`s` in rank
:math:`s` of a process group, with ``send``/``recv`` for the messages (GPipe's order,
Huang et al., 2019).  Both give the gradients of the unsplit network.

Not done here: re-computing activations instead of storing them (GPipe does), tensors on several
devices within one process, overlapping communication.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from .._checks import argument, check_integer, check_tensor
from ..functional.activations import ACTIVATIONS
from ..functional.linear import linear_backward, linear_forward
from ..functional.losses import LOSSES
from ..mlp import MLP
from ..params import MLPParams, Params
from .data_parallel import _check_batch
from .schedule import gpipe_order, one_f_one_b_order, simulate_schedule

SCHEDULES = {"gpipe": gpipe_order, "1f1b": one_f_one_b_order}
"""Which orders a pipeline can run, by name, ``"gpipe"`` and ``"1f1b"`` (see :mod:`bplib.distributed.schedule`)."""


class PipelineStage:
    """Layers :math:`l_s + 1, \\dots, l_{s+1}` of an MLP: ``first`` :math:`= l_s`, ``last`` :math:`= l_{s+1}`.

    It holds the network's own tensors (no copy).  :meth:`forward` maps :math:`Z^{l_s}` (the input
    :math:`X` for the first stage) to :math:`Z^{l_{s+1}}`; :meth:`backward` maps
    :math:`\\Delta^{l_{s+1}}` to :math:`\\Delta^{l_s}` (``None`` for the first stage) and the
    gradients of the stage's parameters.
    """

    def __init__(self, net: MLP, first: int, last: int) -> None:
        fn = "PipelineStage"
        if not isinstance(net, MLP):
            raise TypeError(f"{fn}: argument 'net' must be a bplib.MLP, got {type(net).__name__}")
        L = len(net.weights)
        for name, value in (("first", first), ("last", last)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= L:
                raise ValueError(f"{fn}: argument '{name}' must be a layer index in [0, {L}] (L = {L}), got {value!r}")
        if not first < last:
            raise ValueError(f"{fn}: a stage holds layers first + 1, ..., last, so 'first' < 'last' is needed, got {first} and {last}")
        self.first, self.last = first, last
        self.is_first, self.is_last = first == 0, last == L
        self.activation, self.loss_name = net.activation, net.loss_name
        self.weights, self.biases = net.weights[first:last], net.biases[first:last]
        self.scales = net.scales[first:last]

    @property
    def params(self) -> Params:
        """The stage's parameters :math:`W^{l_s+1}, b^{l_s+1}, \\dots`, named by their layer in the whole network."""
        layers = range(self.first + 1, self.last + 1)
        names = [name for l in layers for name in (f"W{l}", f"b{l}")]
        return Params([t for pair in zip(self.weights, self.biases) for t in pair], names)

    def forward(self, inp: torch.Tensor) -> tuple[torch.Tensor, list]:
        """:math:`Z^{l_{s+1}}` and the caches, from :math:`Z^{l_s}` (or the input X)."""
        activation_forward, _ = ACTIVATIONS[self.activation]
        caches = []
        z = inp  # Z^{l_s}, (m_j, n_{l_s}); X for the first stage
        layers = zip(self.weights, self.biases, self.scales)
        for i, (W, b, (c_w, c_b)) in enumerate(layers):
            if i == 0 and self.is_first:
                a, activation_cache = z, None  # A^0 = X
            else:
                a, activation_cache = activation_forward(z)  # A^{l-1} = sigma(Z^{l-1})
            z, linear_cache = linear_forward(a, c_w * W, c_b * b)  # Z^l
            caches.append((activation_cache, linear_cache))
        return z, caches

    def backward(
        self, dout: torch.Tensor, caches: list
    ) -> tuple[torch.Tensor | None, Params]:
        """:math:`\\Delta^{l_s}` (``None`` for stage 0) and the gradients from ``dout``.

        ``dout`` is :math:`\\Delta^{l_{s+1}}`, from the next stage (or from the loss).
        """
        _, activation_backward = ACTIVATIONS[self.activation]
        grads = []
        dz = dout  # Delta^{l_{s+1}}, (m_j, n_{l_{s+1}})
        backwards = zip(caches[::-1], self.scales[::-1])  # the last layer first
        for (activation_cache, linear_cache), (c_w, c_b) in backwards:
            needs_input = activation_cache is not None  # no dX for the network's input
            da, dW, db = linear_backward(dz, linear_cache, input_grad=needs_input)
            grads[:0] = [c_w * dW, c_b * db]
            if needs_input:
                dz = activation_backward(da, activation_cache)  # Delta^{l-1}
        return (dz if needs_input else None), self.params.like(grads)


def split_stages(net: MLP, boundaries: Sequence[int]) -> list[PipelineStage]:
    """Cut ``net`` after the layers in ``boundaries`` (:math:`l_1 < \\dots < l_{p-1}`, each in :math:`[1, L-1]`) into :math:`p` stages."""
    fn = "split_stages"
    if not isinstance(net, MLP):
        raise TypeError(f"{fn}: argument 'net' must be a bplib.MLP, got {type(net).__name__}")
    L = len(net.weights)
    cuts = list(boundaries) if isinstance(boundaries, (list, tuple)) else None
    if cuts is None or not all(isinstance(c, int) and not isinstance(c, bool) for c in cuts):
        raise TypeError(f"{fn}: argument 'boundaries' must be a list of layer indices, got {boundaries!r}")
    outside = [c for c in cuts if not 1 <= c <= L - 1]
    if outside:
        raise ValueError(
            f"{fn}: argument 'boundaries' must lie in [1, {L - 1}] for a network of L = {L} layers "
            f"(a cut after layer l, inside the network), got {cuts} with {outside} outside"
        )
    if any(a >= b for a, b in zip(cuts, cuts[1:])):
        raise ValueError(f"{fn}: argument 'boundaries' must increase strictly, got {cuts}")
    edges = [0, *cuts, L]
    return [PipelineStage(net, a, b) for a, b in zip(edges, edges[1:])]


def even_boundaries(layers: int, stages: int) -> list[int]:
    """The cuts that give each of ``stages`` stages ``layers / stages`` layers; ``stages`` must divide ``layers``."""
    fn = "even_boundaries"
    for name, value in (("layers", layers), ("stages", stages)):
        check_integer(fn, argument(name), value, 1)
    if layers % stages:
        raise ValueError(f"{fn}: argument 'stages' must divide layers = {layers} (equal stages), got {stages}")
    return [s * layers // stages for s in range(1, stages)]


def micro_batches(batch: torch.Tensor, count: int) -> tuple[torch.Tensor, ...]:
    """Cut ``batch`` into ``count`` equal micro-batches (views); ``count`` must divide the number of rows."""
    fn = "micro_batches"
    check_tensor(fn, "batch", batch)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"{fn}: argument 'count' must be an integer >= 1 (micro-batches), got {count!r}")
    if batch.dim() == 0 or len(batch) % count:
        rows = "no" if batch.dim() == 0 else len(batch)
        raise ValueError(f"{fn}: argument 'count' must divide the batch's {rows} rows into equal micro-batches, got {count}")
    return torch.chunk(batch, count)


@dataclass
class StageResult:
    """What one stage's run returns: its gradients, the loss (last stage only), the errors it received, its task log."""

    grads: Params
    """Gradients of the stage's parameters, summed over the micro-batches."""
    loss: torch.Tensor | None
    """The batch loss :math:`\\mathcal{L}` (last stage), ``None`` elsewhere."""
    deltas: dict[int, torch.Tensor] = field(default_factory=dict)
    """The errors :math:`\\Delta^{l_{s+1}}` received from the next stage, by micro-batch (key :math:`j`)."""
    log: list[tuple[str, int]] = field(default_factory=list)
    """The tasks in the order the stage ran them."""


class _StageRunner:
    """One stage's state across the micro-batches: caches in flight, the gradients and the loss so far."""

    def __init__(self, stage: PipelineStage, x: torch.Tensor, y: torch.Tensor, count: int) -> None:
        self.stage, self.m = stage, len(x)
        self.x, self.y = micro_batches(x, count), micro_batches(y, count)
        self.caches: dict[int, object] = {}
        self.result = StageResult(grads=stage.params.like(torch.zeros_like(p) for p in stage.params), loss=None)
        if stage.is_last:
            self.result.loss = x.new_zeros(())

    def forward(self, j: int, inp: torch.Tensor | None) -> torch.Tensor | None:
        """Forward micro-batch ``j``; the message for the next stage (``None`` from the last)."""
        self.result.log.append(("F", j))
        out, cache = self.stage.forward(self.x[j] if self.stage.is_first else inp)
        if not self.stage.is_last:
            self.caches[j] = cache
            return out
        loss_forward, _ = LOSSES[self.stage.loss_name]
        loss_j, loss_cache = loss_forward(out, self.y[j])  # mean over the m_j rows
        self.caches[j] = (cache, loss_cache)
        self.result.loss += len(self.y[j]) / self.m * loss_j
        return None

    def backward(self, j: int, dout: torch.Tensor | None) -> torch.Tensor | None:
        """Backward micro-batch ``j`` from the next stage's :math:`\\Delta`; the message for the previous stage."""
        self.result.log.append(("B", j))
        if self.stage.is_last:
            _, loss_backward = LOSSES[self.stage.loss_name]
            cache, loss_cache = self.caches.pop(j)
            dout = loss_backward(len(self.y[j]) / self.m, loss_cache)  # rows B_j of Delta^L = (P - Y)/m
        else:
            cache = self.caches.pop(j)
            self.result.deltas[j] = dout
        din, grads = self.stage.backward(dout, cache)
        for total, g in zip(self.result.grads, grads):
            total.add_(g)
        return din


def pipeline_loss_and_grads(
    net: MLP, boundaries: Sequence[int], x: torch.Tensor, y: torch.Tensor, count: int, *, schedule: str = "gpipe"
) -> tuple[torch.Tensor, MLPParams, list[StageResult]]:
    """Run ``net`` cut at ``boundaries`` on ``count`` micro-batches in one process, in the order of the schedule's event log.

    Each event of :func:`~bplib.distributed.schedule.simulate_schedule` is executed in turn, the
    messages between stages handed over in memory.  Returns the loss, the gradients of the whole
    network (as ``net.loss_and_grads`` returns them) and every stage's :class:`StageResult`.
    """
    fn = "pipeline_loss_and_grads"
    _check_batch(fn, net, x, y)
    if schedule not in SCHEDULES:
        raise ValueError(f"{fn}: argument 'schedule' must be one of {', '.join(map(repr, SCHEDULES))}, got {schedule!r}")
    stages = split_stages(net, boundaries)
    runners = [_StageRunner(stage, x, y, count) for stage in stages]
    events = simulate_schedule(SCHEDULES[schedule](len(stages), count))
    messages: dict[tuple[str, int, int], torch.Tensor | None] = {}  # (kind, receiving stage, j) -> tensor
    for e in events:
        s, j = e.stage, e.micro_batch
        if e.kind == "F":
            messages[("F", s + 1, j)] = runners[s].forward(j, messages.pop(("F", s, j), None))
        else:
            messages[("B", s - 1, j)] = runners[s].backward(j, messages.pop(("B", s, j), None))
    results = [runner.result for runner in runners]
    grads = [g for result in results for g in result.grads]
    return results[-1].loss, MLPParams.from_layers(grads[0::2], grads[1::2]), results


def pipeline_stage_task(
    net: MLP, boundaries: Sequence[int], x: torch.Tensor, y: torch.Tensor, count: int, schedule: str = "gpipe"
) -> StageResult:
    """Rank :math:`s` runs stage :math:`s` of ``net`` cut at ``boundaries``, with ``send``/``recv`` between neighbours.

    Called on every rank of a group of :math:`p` = ``len(boundaries) + 1`` processes (a task for
    :meth:`~bplib.distributed.launch.WorkerPool.run`).  Every rank is handed the whole batch and
    checks all of it, so that bad input fails on every rank at once; only the first stage computes
    with ``x`` and only the last with ``y``.  Returns the stage's :class:`StageResult`.
    """
    fn = "pipeline_stage_task"
    _check_batch(fn, net, x, y)
    if schedule not in SCHEDULES:
        raise ValueError(f"{fn}: argument 'schedule' must be one of {', '.join(map(repr, SCHEDULES))}, got {schedule!r}")
    stages = split_stages(net, boundaries)
    s, world_size = dist.get_rank(), dist.get_world_size()
    if world_size != len(stages):
        raise ValueError(f"{fn}: the process group must have one rank per stage ({len(stages)}), got {world_size}")
    stage = stages[s]
    runner = _StageRunner(stage, x, y, count)
    rows = len(x) // count
    pending = []  # sends not yet known to be delivered: a stage never waits on a send, only on a receive
    for kind, j in SCHEDULES[schedule](len(stages), count)[s]:
        if kind == "F":
            inp = None
            if not stage.is_first:
                inp = x.new_empty(rows, net.sizes[stage.first])  # Z^{l_s} of micro-batch j
                dist.recv(inp, s - 1, tag=j)
            out = runner.forward(j, inp)
            if out is not None:
                out = out.contiguous()
                pending.append((dist.isend(out, s + 1, tag=j), out))
        else:
            dout = None
            if not stage.is_last:
                dout = x.new_empty(rows, net.sizes[stage.last])  # Delta^{l_{s+1}} of micro-batch j
                dist.recv(dout, s + 1, tag=j)
            din = runner.backward(j, dout)
            if din is not None:
                din = din.contiguous()
                pending.append((dist.isend(din, s - 1, tag=j), din))
    for request, _ in pending:  # the tensor is kept alive until its send is done
        request.wait()
    return runner.result
