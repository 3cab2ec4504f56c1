"""Gradient checkpointing for :class:`bplib.MLP`: keep a few activations, recompute the others backwards.

Backpropagation keeps every activation of the forward pass until the backward pass has used it:
for :math:`L` layers of width :math:`n` and a batch of :math:`m` rows, the caches of
:meth:`bplib.MLP.forward_with_caches` hold :math:`A^0, A^1, \\dots, A^{L-1}`, that is :math:`L m n`
numbers.  *Checkpointing* (Griewank and Walther's reversal schedules, *Evaluating Derivatives*, 2nd
ed., SIAM 2008, chapter 12; for networks T. Chen, B. Xu, C. Zhang and C. Guestrin (2016), "Training
deep nets with sublinear memory cost", arXiv:1604.06174) cuts the layers into consecutive
*segments* and keeps, in the forward pass, only the input of each segment.  The backward pass
takes the segments from the last to the first; for each it runs the forward pass again from the
stored input, this time keeping the caches, and backpropagates through it.

The schedule here, for segments of lengths :math:`s_1, \\dots, s_k` (:math:`\\sum_j s_j = L`):

* forward: segments :math:`1, \\dots, k-1` run without caches, and only their inputs (the
  *boundaries*) are kept; the last segment runs with its caches, which the backward pass needs at
  once;
* backward: through the last segment on its caches; then, for :math:`j = k-1, \\dots, 1`, recompute
  segment :math:`j` from its input with caches and backpropagate through it.  The last layer of a
  segment is not recomputed: its output is the stored input of the next segment, which is all its
  activation's backward needs (the derivative is written through the output, see
  :mod:`bplib.functional.activations`), and its affine backward needs only its input and its weights.

With equal segments of length :math:`s` (:math:`L = k s`), at most :math:`L/s + s - 1` activations
are held at once -- the :math:`k` boundaries and the :math:`s - 1` inner activations of the last
segment -- smallest at :math:`s = \\sqrt L`, where it is :math:`2\\sqrt L - 1` instead of :math:`L`.
The price is the forward pass of every layer whose output was not stored, :math:`(k-1)(s-1)` layers,
less than one extra forward pass.  The gradients are those of :meth:`bplib.MLP.reference_loss_and_grads`
to the last bit wherever the kernels are deterministic (as on the CPU): the recomputation repeats the same
operations on the same numbers, and the backward pass is the reference's.

:class:`CacheMeter` counts what is held for the backward pass -- bytes of the activations in the
caches and of the stored boundaries, each tensor once -- after every step of the schedule.

Not done here: no multi-level (recursive) schedules such as Griewank and Walther's *revolve*, no
other networks than :class:`bplib.MLP`, no accounting of the transient working memory of a step
(the activation being computed, the gradient being passed back).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from .functional.activations import ACTIVATIONS
from .functional.linear import linear_backward, linear_forward
from .functional.losses import LOSSES
from .mlp import MLP, LayerCache
from .params import MLPParams


def _describe_int(value: object) -> str:
    return repr(value) if isinstance(value, (int, float, str)) else type(value).__name__


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def segment_lengths(num_layers: int, segment_length: int) -> tuple[int, ...]:
    """Cut ``num_layers`` layers into segments of ``segment_length`` layers from the input on.

    The last segment is shorter when ``segment_length`` does not divide ``num_layers``:
    ``segment_lengths(10, 3) == (3, 3, 3, 1)``.  Both arguments are positive integers with
    ``segment_length <= num_layers`` (a segment of 0 layers, or one longer than the network, is an error).
    """
    fn = "segment_lengths"
    if not _is_int(num_layers) or num_layers < 1:
        raise ValueError(f"{fn}: argument 'num_layers' must be a positive integer, got {_describe_int(num_layers)}")
    _check_segment_length(fn, "segment_length", segment_length, num_layers)
    full, rest = divmod(num_layers, segment_length)
    return (segment_length,) * full + ((rest,) if rest else ())


def _check_segment_length(fn: str, name: str, value: object, num_layers: int) -> None:
    if not _is_int(value):
        raise TypeError(f"{fn}: argument '{name}' must be an integer number of layers, got {_describe_int(value)}")
    if value < 1:
        raise ValueError(f"{fn}: argument '{name}' must be at least 1 layer (a segment of {value} layers holds nothing)")
    if value > num_layers:
        raise ValueError(
            f"{fn}: argument '{name}' must be at most the network's {num_layers} layers, got {value}: "
            f"a segment would reach outside the network"
        )


def _checked_segments(fn: str, net: MLP, segments: object) -> tuple[int, ...]:
    """The segment lengths: ``segments`` itself, checked, or :func:`segment_lengths` of an integer."""
    num_layers = len(net.weights)
    if _is_int(segments):
        _check_segment_length(fn, "segments", segments, num_layers)
        return segment_lengths(num_layers, segments)
    if not isinstance(segments, Sequence) or isinstance(segments, str) or not segments:
        raise TypeError(
            f"{fn}: argument 'segments' must be a segment length (int) or a non-empty sequence of segment "
            f"lengths, got {_describe_int(segments)}"
        )
    for j, length in enumerate(segments):
        if not _is_int(length):
            raise TypeError(f"{fn}: argument 'segments' must hold integers, got {_describe_int(length)} at index {j}")
        if length < 1:
            raise ValueError(f"{fn}: argument 'segments' must hold lengths >= 1, got a segment of {length} layers at index {j}")
    covered = sum(segments)
    if covered > num_layers:
        raise ValueError(
            f"{fn}: argument 'segments' covers {covered} layers, but the network has {num_layers}: "
            f"segments {list(segments)} reach outside the network"
        )
    if covered < num_layers:
        raise ValueError(
            f"{fn}: argument 'segments' must cover all {num_layers} layers of the network, got "
            f"{list(segments)}, which covers {covered}"
        )
    return tuple(segments)


def cached_activations(caches: Iterable[LayerCache]) -> list[torch.Tensor]:
    """The activations a list of :meth:`bplib.MLP.forward_with_caches` caches holds.

    For each layer :math:`l`, the input :math:`A^{l-1}` of its affine map and, below the output layer, the
    output :math:`A^l` of its activation.  (:math:`A^l` is held by two caches; it is listed twice and
    counted once by :class:`CacheMeter`.)  The weights the linear caches refer to are the parameters
    (in the NTK parameterisation, scaled copies of them), whose size does not depend on the batch or the
    schedule; they are not activations.
    """
    activations = []
    for (a_in, _), activation_cache in caches:
        activations.append(a_in)
        if activation_cache is not None:
            activations.append(activation_cache)
    return activations


class CacheMeter:
    """Counts the bytes held for the backward pass at every step of a schedule, and their peak.

    Each :meth:`record` is given the tensors held at that moment; a tensor is counted once, however
    many caches hold it, as ``numel * element_size`` bytes.  ``trace`` lists the counts in the order
    they were recorded, and ``peak_bytes`` is their maximum.
    """

    def __init__(self) -> None:
        self.trace: list[int] = []

    def record(self, tensors: Iterable[torch.Tensor]) -> int:
        """Count the distinct tensors among ``tensors``, append the count of bytes to ``trace``, and return it."""
        regions = {}
        for t in tensors:
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"CacheMeter.record: argument 'tensors' must hold tensors, got {type(t).__name__}")
            size = t.numel() * t.element_size()
            regions[(t.device, t.data_ptr(), size)] = size
        held = sum(regions.values())
        self.trace.append(held)
        return held

    @property
    def peak_bytes(self) -> int:
        """The largest count recorded, 0 before the first."""
        return max(self.trace, default=0)


def _layer_forward(net: MLP, l: int, a: torch.Tensor) -> tuple[torch.Tensor, LayerCache]:
    """Layer ``l + 1`` of ``net`` on ``a``: its output and cache, as :meth:`bplib.MLP.forward_with_caches` makes them."""
    (c_w, c_b), activation_forward = net.scales[l], ACTIVATIONS[net.activation][0]
    z, linear_cache = linear_forward(a, c_w * net.weights[l], c_b * net.biases[l])  # Z^l, (m, n_l)
    if l == len(net.weights) - 1:
        return z, (linear_cache, None)  # the affine output layer
    a, activation_cache = activation_forward(z)  # A^l = sigma(Z^l)
    return a, (linear_cache, activation_cache)


def _segment_backward(
    net: MLP, first: int, caches: list[LayerCache], da: torch.Tensor, grads: list[torch.Tensor | None],
    boundaries: list[torch.Tensor], meter: CacheMeter,
) -> torch.Tensor:
    """Backpropagate ``da`` through the layers ``first + 1, ...`` whose caches are ``caches``, freeing each.

    As :meth:`bplib.MLP.backward` does, layer by layer: the activation backward, then the affine
    backward; the gradients go into ``grads`` (``W^1, b^1, ...``), and ``meter`` records the stored
    ``boundaries`` and the caches still held after each layer.  Returns the gradient of the segment's input.
    """
    activation_backward = ACTIVATIONS[net.activation][1]
    for l in reversed(range(first, first + len(caches))):
        linear_cache, activation_cache = caches.pop()  # layer l + 1's cache, no longer held after this step
        dz = da if activation_cache is None else activation_backward(da, activation_cache)  # Delta^l
        da, dW, db = linear_backward(dz, linear_cache)  # Delta^l W^l, (Delta^l)^T A^{l-1}, (Delta^l)^T 1
        c_w, c_b = net.scales[l]
        grads[2 * l], grads[2 * l + 1] = c_w * dW, c_b * db
        del linear_cache, activation_cache
        meter.record(boundaries + cached_activations(caches))
    return da


def checkpointed_loss_and_grads(
    net: MLP, x: torch.Tensor, y: torch.Tensor, segments: int | Sequence[int], *, meter: CacheMeter | None = None
) -> tuple[torch.Tensor, MLPParams]:
    """Return ``(loss, grads)`` of ``net`` on ``(x, y)`` by backpropagation with checkpointed segments.

    The same loss and gradients as :meth:`bplib.MLP.reference_loss_and_grads`, bit for bit with
    deterministic kernels; the schedule
    (module docstring) holds at most :math:`k + s - 1` activations for :math:`k` equal segments of
    length :math:`s` instead of :math:`L`, and runs the forward pass of :math:`(k-1)(s-1)` layers twice.

    Parameters
    ----------
    net:
        The network (a :class:`bplib.MLP`).
    x, y:
        A batch, as :meth:`bplib.MLP.reference_loss_and_grads` takes it.
    segments:
        A segment length :math:`s` (segments of :math:`s` layers from the input on, the last one shorter
        when :math:`s` does not divide :math:`L`; :func:`segment_lengths`), or the lengths
        :math:`s_1, \\dots, s_k` of the segments, positive and adding up to :math:`L`.  ``segments=1``
        stores every activation (plain backpropagation); ``segments=L`` gives one segment, which is
        also plain backpropagation.
    meter:
        A :class:`CacheMeter` that records the activations held after every step, or ``None``.

    Returns
    -------
    tuple[torch.Tensor, MLPParams]
        ``(loss, grads)``: the loss (a 0-d tensor) and the gradients as an :class:`~bplib.params.MLPParams`
        in the order of :attr:`bplib.MLP.parameters`.
    """
    fn = "checkpointed_loss_and_grads"
    if not isinstance(net, MLP):
        raise TypeError(f"{fn}: argument 'net' must be a bplib.MLP, got {type(net).__name__}")
    if meter is not None and not isinstance(meter, CacheMeter):
        raise TypeError(f"{fn}: argument 'meter' must be a CacheMeter or None, got {type(meter).__name__}")
    lengths = _checked_segments(fn, net, segments)
    a = net._check_input(fn, x)
    meter = CacheMeter() if meter is None else meter
    firsts = [sum(lengths[:j]) for j in range(len(lengths))]  # the first layer (0-based) of each segment
    loss_backward = LOSSES[net.loss_name][1]

    # Forward: segments 1, ..., k-1 without caches, keeping their inputs; the last one with its caches.
    boundaries: list[torch.Tensor] = []
    for first, length in zip(firsts[:-1], lengths[:-1]):
        boundaries.append(a)  # A^{first}: the input of this segment
        for l in range(first, first + length):
            a, _ = _layer_forward(net, l, a)  # the cache is dropped at once
        meter.record(boundaries)
    boundaries.append(a)
    caches: list[LayerCache] = []
    for l in range(firsts[-1], len(net.weights)):
        a, cache = _layer_forward(net, l, a)
        caches.append(cache)
        meter.record(boundaries + cached_activations(caches))
    loss, loss_cache = net._loss_forward(fn, a, y)  # the targets' errors name this function
    da = loss_backward(1.0, loss_cache)  # Delta^L = dL/dZ^L

    # Backward: the last segment on its caches, then each earlier one recomputed from its stored input.
    grads: list[torch.Tensor | None] = [None] * (2 * len(net.weights))
    da = _segment_backward(net, firsts[-1], caches, da, grads, boundaries, meter)
    for first, length in zip(reversed(firsts[:-1]), reversed(lengths[:-1])):
        a = boundaries[-2]  # the segment's stored input; boundaries[-1] is its stored output
        for l in range(first, first + length - 1):  # recompute all but the last layer, with caches
            a, cache = _layer_forward(net, l, a)
            caches.append(cache)
            meter.record(boundaries + cached_activations(caches))
        last = first + length - 1  # its input is recomputed (or stored), its output is stored:
        # the caches linear_forward and the activation would return, (A^{l-1}, W^l) and A^l
        caches.append(((a, net.scales[last][0] * net.weights[last]), boundaries.pop()))
        da = _segment_backward(net, first, caches, da, grads, boundaries, meter)
    return loss, MLPParams.from_layers(grads[0::2], grads[1::2])
