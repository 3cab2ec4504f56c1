"""Per-layer statistics of a training run, and rules that flag a run going wrong.

For a network with weights :math:`W^1, \\dots, W^L` trained step by step (step :math:`t` moves
:math:`W^l_t` to :math:`W^l_{t+1}`), the statistics of one step are, for every layer :math:`l`,

.. math::

    \\lVert \\nabla_{W^l} \\mathcal{L} \\rVert_F, \\qquad
    \\rho^l_t = \\frac{\\lVert W^l_{t+1} - W^l_t \\rVert_F}{\\lVert W^l_t \\rVert_F},

the gradient norm and the *update-to-weight ratio*, and for every hidden layer :math:`l < L` the mean
and the standard deviation of the :math:`m n_l` entries of its activation :math:`A^l` (the population
standard deviation, divided by :math:`m n_l`) and its *dead fraction* :math:`d^l`, the fraction of its
:math:`n_l` units whose output is :math:`0` for every row of the batch -- a ReLU unit whose
pre-activation is negative for every input passes no gradient back, and stays so.  The activations
come from the caches of :meth:`bplib.MLP.forward_with_caches`, which hold them anyway for the backward pass.

A common heuristic (A. Karpathy, CS231n *Convolutional Neural Networks for Visual Recognition*, course
notes "Neural Networks Part 3: Learning and Evaluation", Stanford, 2016) is an update ratio of about
:math:`10^{-3}`: far above, the learning rate is probably too large; far below, too small.  It is a
rule of thumb, not a theorem.  A :class:`Rule` turns such a heuristic into a check: a statistic of a
layer above a threshold for a number of consecutive steps.

Not done here: no writing to files (``StepStatistics.scalars`` gives the tags and values that
``torch.utils.tensorboard.SummaryWriter.add_scalar`` takes), no statistics of the biases (they often
start at zero, where the ratio is undefined).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ._checks import argument, check_real, check_tensor
from .functional.losses import LOSSES
from .mlp import MLP, LayerCache
from .optim import Optimizer
from .params import MLPParams

STATISTICS = ("grad_norm", "update_ratio", "activation_mean", "activation_std", "dead_fraction")
"""The per-layer statistics of :class:`StepStatistics`, in the order of its fields."""


@dataclass(frozen=True)
class StepStatistics:
    """The statistics of one training step; each per-layer field is a 1-D tensor, layer :math:`l` at index :math:`l - 1`.

    ``grad_norm`` and ``update_ratio`` have one entry per layer (:math:`L`), the activation statistics one
    per hidden layer (:math:`L - 1`).
    """

    loss: float  #: the mean loss of the batch, before the step
    grad_norm: torch.Tensor  #: :math:`\lVert \nabla_{W^l} \mathcal{L} \rVert_F`, shape (L,)
    update_ratio: torch.Tensor  #: :math:`\lVert W^l_{t+1} - W^l_t \rVert_F / \lVert W^l_t \rVert_F`, shape (L,)
    activation_mean: torch.Tensor  #: the mean of the entries of :math:`A^l`, shape (L - 1,)
    activation_std: torch.Tensor  #: their population standard deviation, shape (L - 1,)
    dead_fraction: torch.Tensor  #: the fraction of the units of layer :math:`l` that are 0 on every row, shape (L - 1,)

    def scalars(self) -> dict[str, float]:
        """Tags and values for a scalar logger: ``"loss"`` and ``"<statistic>/layer<l>"`` for every layer.

        ``for tag, value in stats.scalars().items(): writer.add_scalar(tag, value, step)`` writes them to
        TensorBoard.
        """
        tags = {"loss": self.loss}
        for name in STATISTICS:
            for l, value in enumerate(getattr(self, name).tolist(), start=1):
                tags[f"{name}/layer{l}"] = value
        return tags


def activation_statistics(activation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean, population standard deviation and dead fraction of one layer's activation ``A^l``, shape (m, n_l).

    The dead fraction is the fraction of the columns (units) that are 0 on every row.  Returns three 0-d tensors.
    """
    fn = "activation_statistics"
    check_tensor(fn, "activation", activation, ndim=2, floating=True)
    if activation.numel() == 0:
        raise ValueError(f"{fn}: argument 'activation' must hold at least one entry, got shape {tuple(activation.shape)}")
    dead = (activation == 0).all(dim=0)  # (n_l,): unit j is 0 for every row
    return activation.mean(), activation.std(correction=0), dead.to(activation.dtype).mean()


def _check_weights(fn: str, name: str, weights: object, count: int) -> Sequence[torch.Tensor]:
    if isinstance(weights, torch.Tensor) or not isinstance(weights, Sequence):
        raise TypeError(f"{fn}: argument '{name}' must be a sequence of weight tensors, got {type(weights).__name__}")
    if len(weights) != count:
        raise ValueError(f"{fn}: argument '{name}' must hold one weight matrix per layer ({count}), got {len(weights)}")
    for l, W in enumerate(weights, start=1):
        check_tensor(fn, f"{name}[{l - 1}]", W, floating=True)
    return weights


def step_statistics(
    loss: torch.Tensor | float,
    caches: Sequence[LayerCache],
    grads: MLPParams,
    before: Sequence[torch.Tensor],
    after: Sequence[torch.Tensor],
) -> StepStatistics:
    """The statistics of one step from what the step computed.

    Parameters
    ----------
    loss:
        The batch's mean loss.
    caches:
        The caches of :meth:`bplib.MLP.forward_with_caches` for the batch; their activation caches are
        :math:`A^1, \\dots, A^{L-1}`.
    grads:
        The gradients, an :class:`~bplib.params.MLPParams`.
    before, after:
        :math:`W^1_t, \\dots, W^L_t` before the step (copies) and :math:`W^1_{t+1}, \\dots` after it.
    """
    fn = "step_statistics"
    if not isinstance(grads, MLPParams):
        raise TypeError(f"{fn}: argument 'grads' must be an MLPParams, got {type(grads).__name__}")
    L = len(grads.weights)
    if not isinstance(caches, Sequence) or len(caches) != L:
        raise ValueError(
            f"{fn}: argument 'caches' must be the {L} layer caches of MLP.forward_with_caches, got "
            f"{len(caches) if isinstance(caches, Sequence) else type(caches).__name__}"
        )
    before = _check_weights(fn, "before", before, L)
    after = _check_weights(fn, "after", after, L)
    for l, (W0, W1) in enumerate(zip(before, after)):
        if W0.shape != W1.shape:
            raise ValueError(
                f"{fn}: arguments 'before' and 'after' must match layer by layer, got shapes "
                f"{tuple(W0.shape)} and {tuple(W1.shape)} for layer {l + 1}"
            )
    hidden = [activation_cache for _, activation_cache in caches[:-1]]
    per_layer = (  # (L - 1, 3): mean, standard deviation, dead fraction of A^1, ..., A^{L-1}
        torch.stack([torch.stack(activation_statistics(a)) for a in hidden]) if hidden else grads[0].new_zeros(0, 3)
    )
    return StepStatistics(
        loss=float(loss),
        grad_norm=torch.stack([torch.linalg.norm(dW) for dW in grads.weights]),
        update_ratio=torch.stack([torch.linalg.norm(W1 - W0) / torch.linalg.norm(W0) for W0, W1 in zip(before, after)]),
        activation_mean=per_layer[:, 0],
        activation_std=per_layer[:, 1],
        dead_fraction=per_layer[:, 2],
    )


def monitored_step(
    net: MLP, optimizer, x: torch.Tensor, y: torch.Tensor
) -> StepStatistics:
    """One training step of ``net`` by the reference, and its statistics.

    The forward pass with caches, the loss, the backward pass, ``optimizer.step(grads)``
    (an optimiser of :mod:`bplib.optim` built on ``net.parameters``), then
    :func:`step_statistics`.
    """
    if not isinstance(net, MLP):
        raise TypeError(
            "monitored_step: argument 'net' must be a bplib.MLP, "
            f"got {type(net).__name__}"
        )
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            "monitored_step: argument 'optimizer' must be a bplib.optim optimiser, "
            f"got {type(optimizer).__name__}"
        )
    loss_forward, loss_backward = LOSSES[net.loss_name]
    out, caches = net.forward_with_caches(x)  # the activations A^l, kept for backward
    loss, loss_cache = loss_forward(out, y)
    grads = net.backward(loss_backward(1.0, loss_cache), caches)
    before = [W.clone() for W in net.weights]  # W^l_t
    optimizer.step(grads)  # W^l_{t+1}
    return step_statistics(loss, caches, grads, before, net.weights)


@dataclass(frozen=True)
class Rule:
    """A statistic of some layer above ``threshold`` for ``patience`` consecutive steps."""

    statistic: str  #: one of :data:`STATISTICS`
    threshold: float  #: the value the statistic must exceed
    patience: int  #: the number of consecutive steps it must exceed it for

    def __post_init__(self) -> None:
        fn = "Rule"
        if self.statistic not in STATISTICS:
            raise ValueError(f"{fn}: argument 'statistic' must be one of {', '.join(map(repr, STATISTICS))}, got {self.statistic!r}")
        check_real(fn, argument("threshold"), self.threshold)  # finite: no statistic exceeds NaN or inf
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 1:
            raise ValueError(f"{fn}: argument 'patience' must be a positive integer number of steps, got {self.patience!r}")

    def fired(self, history: Sequence[StepStatistics]) -> dict[int, int]:
        """For each layer where the rule fires, the first step (0-based) that completes ``patience`` steps above.

        Returns ``{layer: step}`` with layers numbered from 1, sorted by layer; empty when the rule never fires.
        """
        if isinstance(history, StepStatistics) or not isinstance(history, Sequence):
            raise TypeError(f"Rule.fired: argument 'history' must be a sequence of StepStatistics, got {type(history).__name__}")
        for t, stats in enumerate(history):
            if not isinstance(stats, StepStatistics):
                raise TypeError(f"Rule.fired: argument 'history' must hold StepStatistics, got {type(stats).__name__} at step {t}")
        fired: dict[int, int] = {}
        run: dict[int, int] = {}  # layer -> the number of consecutive steps above, up to now
        for t, stats in enumerate(history):
            for l, value in enumerate(getattr(stats, self.statistic).tolist(), start=1):
                run[l] = run.get(l, 0) + 1 if value > self.threshold else 0
                if run[l] >= self.patience and l not in fired:
                    fired[l] = t
        return dict(sorted(fired.items()))
