r"""bplib's forward/backward pairs as ``torch.autograd.Function`` subclasses, and modules built from them.

A ``torch.autograd.Function`` is the contract between hand-written derivatives and PyTorch's
autograd: its ``forward`` computes the output from tensors and saves what the backward needs on
``ctx``; its ``backward`` receives :math:`\bar y = \partial L / \partial y` and returns one gradient per
input of ``forward``.  bplib's pairs have exactly that shape -- ``<op>_forward(...) -> (out, cache)``
and ``<op>_backward(dout, cache)`` -- so each Function below is a thin adapter:

* ``forward`` calls the bplib forward and saves its cache: the tensors of the cache through
  ``ctx.save_for_backward`` (so that autograd notices if one of them is modified in place before
  the backward pass), the rest (dimensions, flags, scales) as plain attributes;
* ``backward`` rebuilds the cache, calls the bplib backward and returns its gradients, with ``None``
  for every non-tensor argument.  ``ctx.needs_input_grad`` tells which inputs need a gradient: the
  linear backward then skips the product :math:`\bar x = \bar z W` when ``x`` needs none (the first
  layer of a network: its input is data); the other pairs compute all their gradients, and autograd
  discards those of inputs that need none.

The functions (:func:`linear`, :func:`activation`, :func:`softmax`, :func:`softmax_cross_entropy`,
:func:`mse`, :func:`dropout`, :func:`batch_norm`, :func:`layer_norm`, :func:`attention`) take the
arguments of the bplib forwards, keywords included, and return a tensor that autograd can
differentiate; the modules (:class:`BplibLinear`, :class:`BplibMLP`) hold parameters like any
``torch.nn.Module`` and are trained by ``torch.optim``.

**Double backward is not supported.**  A bplib backward computes with plain tensors, so its result
carries no graph of its own, and a second derivative through it would lack this layer's terms.
Every ``backward`` here is therefore first-order only: when autograd asks for a graph of the
gradient (``create_graph=True``, as ``torch.autograd.gradgradcheck``, Hessian-vector products and
gradient penalties do) it raises ``NotImplementedError`` before computing anything.  torch's own
decorator for such functions, ``@once_differentiable``, is not enough: it raises only when the
upstream gradient itself requires a gradient; otherwise it returns the gradient as a constant, and
a second derivative built on it comes out silently wrong.

**Dropout and its generator.**  The mask is drawn in ``forward`` from the explicit
``torch.Generator`` passed in, and saved; ``backward`` multiplies by the saved mask and draws
nothing.  Evaluating ``forward`` again -- as ``torch.autograd.gradcheck`` does, or activation
checkpointing when it recomputes a segment -- draws a *new* mask unless the generator is reset to
the same state first (checkpointing restores torch's global random state, not an explicit
generator's).

Reference: PyTorch's "Extending torch.autograd" (``torch.autograd.Function``) documentation;
A. Paszke et al. (2019), "PyTorch: an imperative style, high-performance deep learning library",
NeurIPS.

Not done here: no double backward, no ``torch.func`` transforms of these Functions (they define
no ``setup_context``/``vmap``), no gradients for loss targets (they are data: a target that
requires a gradient is refused), no modules for the layers other than the affine one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from . import functional as bf
from ._checks import check_choice, check_floating_dtype, check_generator, check_tensor
from .init import he, xavier
from .layers import _check_width


# ------------------------------------------------------------------------------ caches on ctx


@dataclass(frozen=True)
class _Saved:
    """Where a cache held a tensor: its position in ``ctx.saved_tensors``."""

    index: int


def _save_cache(ctx: torch.autograd.function.FunctionCtx, cache: object) -> None:
    """Save a (nested tuple) cache: its tensors by ``save_for_backward``, the rest as its skeleton."""
    tensors: list[torch.Tensor] = []

    def strip(item: object) -> object:
        if isinstance(item, torch.Tensor):
            tensors.append(item)
            return _Saved(len(tensors) - 1)
        return tuple(strip(i) for i in item) if isinstance(item, tuple) else item

    ctx.skeleton = strip(cache)
    ctx.save_for_backward(*tensors)


def _load_cache(ctx: torch.autograd.function.FunctionCtx) -> object:
    tensors = ctx.saved_tensors

    def fill(item: object) -> object:
        if isinstance(item, _Saved):
            return tensors[item.index]
        return tuple(fill(i) for i in item) if isinstance(item, tuple) else item

    return fill(ctx.skeleton)


_Gradients = tuple[torch.Tensor | None, ...]


def _first_order(backward: Callable[..., _Gradients]) -> Callable[..., _Gradients]:
    """A backward that refuses ``create_graph=True``: no second derivative through a bplib backward."""

    @functools.wraps(backward)
    def first_order_backward(ctx: torch.autograd.function.FunctionCtx, *grads: torch.Tensor) -> _Gradients:
        if torch.is_grad_enabled():  # autograd enables grad mode in a backward only for create_graph=True
            raise NotImplementedError(
                f"{type(ctx).__name__}: bplib's backward passes are first-order only; a derivative of the gradient "
                f"(create_graph=True, double backward) is not supported"
            )
        return backward(ctx, *grads)

    return first_order_backward


# ------------------------------------------------------------------------------ the Functions


class LinearFunction(torch.autograd.Function):
    r""":math:`z = x W^\top + b` by :func:`bplib.functional.linear.linear_forward`.

    The backward is :func:`bplib.functional.linear.linear_backward`.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Call ``linear_forward`` and save its cache ``(x, W)``."""
        z, cache = bf.linear_forward(x, W, b)
        _save_cache(ctx, cache)
        return z

    @staticmethod
    @_first_order
    def backward(ctx, dz: torch.Tensor) -> _Gradients:
        """``(dx, dW, db)`` by ``linear_backward``; no ``dx`` if ``x`` needs none."""
        input_grad = ctx.needs_input_grad[0]
        dx, dW, db = bf.linear_backward(dz, _load_cache(ctx), input_grad=input_grad)
        return dx, dW, db


class ActivationFunction(torch.autograd.Function):
    """An element-wise activation of :data:`bplib.functional.activations.ACTIVATIONS`, chosen by name."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, name: str) -> torch.Tensor:
        """Call the forward of the activation ``name`` (``"relu"``, ``"sigmoid"``, ``"tanh"``)."""
        check_choice("activation", "name", name, tuple(bf.ACTIVATIONS))
        a, cache = bf.ACTIVATIONS[name][0](z)
        _save_cache(ctx, cache)
        ctx.name = name
        return a

    @staticmethod
    @_first_order
    def backward(ctx, da: torch.Tensor) -> tuple[torch.Tensor | None, None]:
        """``dz = da * sigma'(z)`` by the activation's backward; ``None`` for the name."""
        return bf.ACTIVATIONS[ctx.name][1](da, _load_cache(ctx)), None


class SoftmaxFunction(torch.autograd.Function):
    """:math:`p = \\operatorname{softmax}(z)` along ``dim`` by :func:`bplib.functional.softmax.softmax_forward`."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, dim: int) -> torch.Tensor:
        """Call ``softmax_forward`` and save its cache ``(p, dim)``."""
        p, cache = bf.softmax_forward(z, dim)
        _save_cache(ctx, cache)
        return p

    @staticmethod
    @_first_order
    def backward(ctx, dp: torch.Tensor) -> tuple[torch.Tensor, None]:
        """``dz = p * (dp - <dp, p>)`` by ``softmax_backward``; ``None`` for ``dim``."""
        return bf.softmax_backward(dp, _load_cache(ctx)), None


class SoftmaxCrossEntropyFunction(torch.autograd.Function):
    """The mean cross-entropy of ``softmax(logits)``.

    By :func:`bplib.functional.losses.softmax_cross_entropy_forward` and its backward.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Call ``softmax_cross_entropy_forward`` and save its cache ``(p, Y)``."""
        loss, cache = bf.softmax_cross_entropy_forward(logits, y)
        _save_cache(ctx, cache)
        return loss

    @staticmethod
    @_first_order
    def backward(ctx, dloss: torch.Tensor) -> tuple[torch.Tensor, None]:
        """``dlogits = dloss * (p - Y) / m``; the labels get ``None``."""
        return bf.softmax_cross_entropy_backward(dloss, _load_cache(ctx)), None


class MSEFunction(torch.autograd.Function):
    """:math:`L = \\lVert \\hat Y - Y \\rVert^2 / (2m)` by :func:`bplib.functional.losses.mse_forward`."""

    @staticmethod
    def forward(ctx, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Call ``mse_forward`` and save its cache, the residual."""
        loss, cache = bf.mse_forward(y_hat, y)
        _save_cache(ctx, cache)
        return loss

    @staticmethod
    @_first_order
    def backward(ctx, dloss: torch.Tensor) -> tuple[torch.Tensor, None]:
        """``dy_hat = dloss * (y_hat - y) / m``; the targets get ``None``."""
        return bf.mse_backward(dloss, _load_cache(ctx)), None


class DropoutFunction(torch.autograd.Function):
    """Inverted dropout by :func:`bplib.functional.dropout.dropout_forward`: the mask is drawn once, in forward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float, train: bool, generator: torch.Generator | None) -> torch.Tensor:
        """Call ``dropout_forward`` (which draws the mask from ``generator``) and save the mask."""
        out, cache = bf.dropout_forward(x, p, train=train, generator=generator)
        _save_cache(ctx, cache)
        return out

    @staticmethod
    @_first_order
    def backward(ctx, dout: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        """``dx = dout * mask`` with the saved mask; nothing is drawn."""
        return bf.dropout_backward(dout, _load_cache(ctx)), None, None, None


class BatchNormFunction(torch.autograd.Function):
    """Batch normalisation by :func:`bplib.functional.normalisation.batch_norm_forward`."""

    @staticmethod
    def forward(
        ctx,
        x: torch.Tensor,
        gamma: torch.Tensor,
        beta: torch.Tensor,
        running_mean: torch.Tensor | None,
        running_var: torch.Tensor | None,
        train: bool,
        momentum: float,
        eps: float,
    ) -> torch.Tensor:
        """Call ``batch_norm_forward`` (which updates the running statistics in place in train mode)."""
        out, cache = bf.batch_norm_forward(
            x, gamma, beta, running_mean=running_mean, running_var=running_var, train=train, momentum=momentum, eps=eps
        )
        _save_cache(ctx, cache)
        return out

    @staticmethod
    @_first_order
    def backward(ctx, dout: torch.Tensor) -> _Gradients:
        """``(dx, dgamma, dbeta)`` by ``batch_norm_backward``; ``None`` for the statistics and options."""
        return (*bf.batch_norm_backward(dout, _load_cache(ctx)), None, None, None, None, None)


class LayerNormFunction(torch.autograd.Function):
    """Layer normalisation over the last dimension by :func:`bplib.functional.normalisation.layer_norm_forward`."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float) -> torch.Tensor:
        """Call ``layer_norm_forward`` and save its cache ``(xhat, gamma, rstd)``."""
        out, cache = bf.layer_norm_forward(x, gamma, beta, eps=eps)
        _save_cache(ctx, cache)
        return out

    @staticmethod
    @_first_order
    def backward(ctx, dout: torch.Tensor) -> _Gradients:
        """``(dx, dgamma, dbeta)`` by ``layer_norm_backward``; ``None`` for ``eps``."""
        return (*bf.layer_norm_backward(dout, _load_cache(ctx)), None)


class AttentionFunction(torch.autograd.Function):
    """Scaled dot-product attention by :func:`bplib.functional.attention.attention_forward`."""

    @staticmethod
    def forward(
        ctx, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, scale: float | None
    ) -> torch.Tensor:
        """Call ``attention_forward`` and save its cache ``(q, k, v, scale, (P, dim))``."""
        out, cache = bf.attention_forward(q, k, v, causal=causal, scale=scale)
        _save_cache(ctx, cache)
        return out

    @staticmethod
    @_first_order
    def backward(ctx, dout: torch.Tensor) -> _Gradients:
        """``(dq, dk, dv)`` by ``attention_backward``; ``None`` for the options."""
        return (*bf.attention_backward(dout, _load_cache(ctx)), None, None)


# ------------------------------------------------------------------------------ functions


def linear(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``x @ W.T + b`` through :class:`LinearFunction`: ``x`` (m, n_in), ``W`` (n_out, n_in), ``b`` (n_out,)."""
    return LinearFunction.apply(x, W, b)


def activation(z: torch.Tensor, name: str) -> torch.Tensor:
    """The activation ``name`` (``"relu"``, ``"sigmoid"``, ``"tanh"``) of ``z``, through :class:`ActivationFunction`."""
    return ActivationFunction.apply(z, name)


def softmax(z: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``softmax(z)`` along ``dim`` through :class:`SoftmaxFunction`."""
    return SoftmaxFunction.apply(z, dim)


def _check_target(fn: str, name: str, y: object) -> None:
    if isinstance(y, torch.Tensor) and y.requires_grad:
        raise ValueError(
            f"{fn}: argument '{name}' must not require a gradient: targets are data and bplib's loss backward "
            f"returns no gradient for them (pass {name}.detach())"
        )


def softmax_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``softmax(logits)`` against labels ``y`` (int64 indices or probability rows)."""
    _check_target("softmax_cross_entropy", "y", y)
    return SoftmaxCrossEntropyFunction.apply(logits, y)


def mse(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``sum((y_hat - y)**2) / (2m)`` through :class:`MSEFunction`."""
    _check_target("mse", "y", y)
    return MSEFunction.apply(y_hat, y)


def dropout(x: torch.Tensor, p: float, *, train: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
    """Inverted dropout through :class:`DropoutFunction`; ``generator`` is required when ``train`` and ``p > 0``."""
    return DropoutFunction.apply(x, p, train, generator)


def batch_norm(
    x: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    *,
    running_mean: torch.Tensor | None = None,
    running_var: torch.Tensor | None = None,
    train: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Batch normalisation of ``x`` (m, n) through :class:`BatchNormFunction`, with bplib's keywords."""
    return BatchNormFunction.apply(x, gamma, beta, running_mean, running_var, train, momentum, eps)


def layer_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, *, eps: float = 1e-5) -> torch.Tensor:
    """Layer normalisation of ``x`` (..., n) over its last dimension through :class:`LayerNormFunction`."""
    return LayerNormFunction.apply(x, gamma, beta, eps)


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = False, scale: float | None = None
) -> torch.Tensor:
    """``softmax(q @ k^T * scale) @ v`` through :class:`AttentionFunction`."""
    return AttentionFunction.apply(q, k, v, causal, scale)


# ------------------------------------------------------------------------------ modules


class BplibLinear(torch.nn.Module):
    """An affine layer whose forward and backward are bplib's: ``z = x @ weight.T + bias``.

    Parameters
    ----------
    n_in, n_out:
        Input and output widths.
    generator:
        Source of the initial weights, drawn by :func:`bplib.init.xavier` (``init="xavier"``) or
        :func:`bplib.init.he` (``init="he"``); the bias starts at 0.
    init:
        ``"xavier"`` or ``"he"``.
    dtype, device:
        Where the parameters live.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        generator: torch.Generator | None = None,
        init: str = "xavier",
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        fn = "BplibLinear"
        super().__init__()
        shape = _check_width(fn, "n_out", n_out), _check_width(fn, "n_in", n_in)
        draw = {"xavier": xavier, "he": he}[check_choice(fn, "init", init, ("xavier", "he"))]
        generator, dtype = check_generator(fn, generator), check_floating_dtype(fn, dtype)
        self.weight = torch.nn.Parameter(draw(shape, generator=generator, dtype=dtype, device=device))
        self.bias = torch.nn.Parameter(torch.zeros(n_out, dtype=dtype, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x @ weight.T + bias`` through :class:`LinearFunction`."""
        return linear(x, self.weight, self.bias)


class BplibMLP(torch.nn.Module):
    """A multi-layer perceptron of :class:`BplibLinear` layers and bplib activations: the logits.

    The same network as :class:`bplib.MLP` in its standard parameterisation (He's initialisation for
    ReLU, Xavier's otherwise, biases 0), with the loss left to the caller
    (:func:`softmax_cross_entropy`, :func:`mse`, or any torch loss).

    Parameters
    ----------
    sizes:
        Layer widths ``[n_0, ..., n_L]``, at least two entries.
    activation:
        ``"relu"``, ``"sigmoid"`` or ``"tanh"``, after every layer but the last.
    generator, dtype, device:
        As for :class:`BplibLinear`.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "relu",
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or len(sizes) < 2 or not all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in sizes
        ):
            raise ValueError(
                f"BplibMLP: argument 'sizes' must be a sequence of at least 2 positive ints, got {sizes!r}"
            )
        self.activation = check_choice("BplibMLP", "activation", activation, tuple(bf.ACTIVATIONS))
        generator, dtype = check_generator("BplibMLP", generator), check_floating_dtype("BplibMLP", dtype)
        scheme = "he" if activation == "relu" else "xavier"
        self.layers = torch.nn.ModuleList(
            BplibLinear(n_in, n_out, generator=generator, init=scheme, dtype=dtype, device=device)
            for n_in, n_out in zip(sizes[:-1], sizes[1:])
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logits: ``activation(layer(x))`` for every layer but the last, which stays affine."""
        check_tensor("BplibMLP.forward", "x", x, ndim=2, floating=True)
        *hidden, last = self.layers
        for layer in hidden:
            x = activation(layer(x), self.activation)
        return last(x)
