r"""The neural tangent kernel: analytic (infinite width), empirical (a bplib network) and the linearised dynamics.

**Parameterisation.**  A fully connected network with :math:`L` hidden layers of widths :math:`n_1, \dots, n_L`,
input dimension :math:`d = n_0` and a scalar readout, in the *NTK parameterisation* of Jacot, Gabriel &
Hongler (2018), every stored weight and bias a standard normal draw:

.. math::

    z^1 = \sqrt{\sigma_w^2 / d}\; W^1 x + \sigma_b b^1, \qquad
    z^{l+1} = \sqrt{\sigma_w^2 / n_l}\; W^{l+1} \phi(z^l) + \sigma_b b^{l+1}, \qquad
    f(x) = z^{L+1} \in \mathbb{R}.

This is ``bplib.MLP([d, n_1, ..., n_L, 1], parameterization="ntk", sigma_w2=..., sigma_b2=...)``, and the
conventions of neural-tangents' ``stax.Dense(..., W_std=sigma_w, b_std=sigma_b, parameterization="ntk")``
(Novak et al., 2020).

**The empirical NTK** of a network with parameters :math:`\theta \in \mathbb{R}^P` is the Gram matrix of its
parameter gradients, :math:`\hat\Theta(x, x') = \sum_{p} \partial_p f(x)\, \partial_p f(x')`, taken with respect
to the *stored* variables.  Layer :math:`l` contributes (:func:`empirical_ntk`)

.. math::

    \hat\Theta(x, x') = \sum_{l=1}^{L+1} \big(\delta^l \cdot \delta'^l\big)
        \big(c_l^2\, a^{l-1} \cdot a'^{l-1} + c_b^2\big), \qquad \delta^l = \partial f / \partial z^l,

with :math:`(c_l, c_b)` the layer's scales (:attr:`bplib.MLP.scales`) and :math:`a^0 = x`.

**The analytic kernels** (Neal, 1996; Lee et al., 2018; Jacot et al., 2018; Arora et al., 2019): as
:math:`n_1, \dots, n_L \to \infty` the output is a Gaussian process with covariance :math:`K^{L+1}` (the NNGP
kernel) and the empirical NTK converges to a deterministic :math:`\Theta^{L+1}`, given by the recursion

.. math::

    K^1(x, x') = \sigma_w^2\, x \cdot x' / d + \sigma_b^2, \qquad \Theta^1 = K^1, \\
    K^{l+1} = \sigma_w^2\, \mathbb{E}[\phi(u)\phi(v)] + \sigma_b^2, \qquad
    \Theta^{l+1} = K^{l+1} + \sigma_w^2\, \mathbb{E}[\phi'(u)\phi'(v)]\, \Theta^l,

with :math:`(u, v) \sim N\big(0, \big(\begin{smallmatrix} K^l(x, x) & K^l(x, x') \\ K^l(x, x') & K^l(x', x')
\end{smallmatrix}\big)\big)`.  With variances :math:`a, b`, covariance :math:`c` and correlation
:math:`\rho = c / \sqrt{ab} = \cos\vartheta`, the two expectations are, for ReLU (the arc-cosine kernels of
Cho & Saul, 2009; :math:`\phi'(0) = 0` as in :mod:`bplib.functional.activations`)

.. math::

    \mathbb{E}[\phi(u)\phi(v)] = \frac{\sqrt{ab}}{2\pi}\big(\sin\vartheta + (\pi - \vartheta)\cos\vartheta\big),
    \qquad \mathbb{E}[\phi'(u)\phi'(v)] = \frac{\pi - \vartheta}{2\pi},

and for :math:`\phi = \operatorname{erf}` (Williams, 1997)

.. math::

    \mathbb{E}[\phi(u)\phi(v)] = \frac{2}{\pi} \arcsin \frac{2c}{\sqrt{(1 + 2a)(1 + 2b)}}, \qquad
    \mathbb{E}[\phi'(u)\phi'(v)] = \frac{4}{\pi} \frac{1}{\sqrt{(1 + 2a)(1 + 2b) - 4c^2}}.

**Training** by gradient flow on :math:`\mathcal{L} = \tfrac12 \lVert f(X) - y \rVert^2` moves the outputs by
:math:`\mathrm{d}f/\mathrm{d}t = -\eta\, \hat\Theta_t (f - y)`.  The network linearised at initialisation keeps
:math:`\hat\Theta_0`, and the flow has a closed form (Lee et al., 2019), :func:`linearized_predictions`.

References: A. Jacot, F. Gabriel, C. Hongler (2018), "Neural tangent kernel: convergence and generalization
in neural networks", NeurIPS 31; J. Lee et al. (2019), "Wide neural networks of any depth evolve as linear
models under gradient descent", NeurIPS 32; S. Arora et al. (2019), "On exact computation with an
infinitely wide neural net", NeurIPS 32; Y. Cho, L. Saul (2009), "Kernel methods for deep learning", NIPS 22;
C. K. I. Williams (1997), "Computing with infinite networks", NIPS 9; R. Novak et al. (2020), "Neural
Tangents: fast and easy infinite neural networks in Python", ICLR.

Not done here: no convolutional or attention kernels, no vector outputs (each output of a wide network has
the same kernel), no Jacobian is ever formed (see :func:`empirical_ntk`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ._checks import argument, check_choice, check_real, check_same_dtype_and_device, check_shape, check_tensor
from .functional.activations import ACTIVATIONS
from .mlp import MLP

KERNEL_ACTIVATIONS = ("relu", "erf")
"""The activations whose Gaussian expectations :func:`analytic_kernels` knows in closed form."""

_TWO_PI = 2 * math.pi


# ------------------------------------------------------------------------------ the analytic kernels


def _relu_expectations(
    a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, same: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """E[relu(u) relu(v)] and E[step(u) step(v)] for variances a, b and covariance c (broadcastable to c).

    ``same`` marks the pairs of equal inputs, whose correlation is 1 exactly (None: no such pair).
    """
    root_a, root_b = a.sqrt(), b.sqrt()
    inverse_a = torch.where(a > 0, 1 / root_a, 0.0)  # a zero variance: u = 0, and phi(u) = phi'(u) = 0
    inverse_b = torch.where(b > 0, 1 / root_b, 0.0)
    # products of the two scales first: a_i b_j = b_j a_i exactly, so a symmetric c gives a symmetric result
    rho = c * (inverse_a * inverse_b)  # the correlation cos(theta)
    if same is not None:
        rho.masked_fill_(same, 1.0)  # equal inputs: exactly 1, so that theta = 0 exactly
    rho.clamp_(-1.0, 1.0)  # rounding can push |rho| past 1, where arccos is NaN
    one_minus = 1 - rho  # exact near rho = 1 (Sterbenz)
    sine = one_minus.mul_(2 - one_minus).sqrt_()  # sin(theta) = sqrt((1 - rho)(1 + rho)), accurate near rho = 1
    slope = torch.arccos(rho).neg_().add_(math.pi).div_(_TWO_PI)  # (pi - theta) / (2 pi) = E[step(u) step(v)]
    # E[relu(u) relu(v)] = sqrt(ab) (sin(theta) + (pi - theta) cos(theta)) / (2 pi)
    value = sine.div_(_TWO_PI).addcmul_(slope, rho).mul_(root_a * root_b)
    if not (bool((a > 0).all()) and bool((b > 0).all())):
        slope.mul_((a > 0) & (b > 0))  # phi'(0) = 0, as bplib's relu_backward takes it
    return value, slope


def _erf_expectations(
    a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, same: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """E[erf(u) erf(v)] and E[erf'(u) erf'(v)] for variances a, b and covariance c (broadcastable to c)."""
    if same is not None:
        c = torch.where(same, (a * b).sqrt(), c)  # equal inputs: c = sqrt(ab), correlation 1
    one_a, one_b = 1 + 2 * a, 1 + 2 * b
    # (2/pi) arcsin(2c / sqrt((1 + 2a)(1 + 2b))); |argument| < 1 always, the clamp only guards rounding
    argument = (2 * c) * (one_a.rsqrt() * one_b.rsqrt())
    value = argument.clamp_(-1.0, 1.0).arcsin_().mul_(2 / math.pi)
    # (4/pi) / sqrt((1 + 2a)(1 + 2b) - 4c^2): the determinant of I + 2 Sigma, >= 1 + 2a + 2b > 0
    slope = (one_a * one_b).sub(4 * c * c).rsqrt_().mul_(4 / math.pi)
    return value, slope


_EXPECTATIONS = {"relu": _relu_expectations, "erf": _erf_expectations}


def _as_floating(fn: str, name: str, x: object) -> tuple[torch.Tensor, torch.dtype]:
    """A 2-D real input and the dtype of the result: its own if floating, float64 for integers and booleans.

    The computation runs in that dtype, except for float16 and bfloat16, which are computed in float32.
    """
    check_tensor(fn, name, x, ndim=2)
    if x.is_complex():
        raise TypeError(f"{fn}: argument '{name}' must be real (a float or integer dtype), got dtype {x.dtype}")
    result = x.dtype if x.is_floating_point() else torch.float64
    compute = torch.float32 if torch.finfo(result).bits < 32 else result
    return x.to(compute), result


def _check_depth(fn: str, depth: object) -> int:
    if isinstance(depth, bool) or not isinstance(depth, int):
        raise TypeError(
            f"{fn}: argument 'depth' must be an int (the number of hidden layers), got {type(depth).__name__} {depth!r}"
        )
    if depth < 0:
        raise ValueError(f"{fn}: argument 'depth' must be >= 0 (the number of hidden layers), got {depth}")
    return depth


def _equal_rows(x1: torch.Tensor, x2: torch.Tensor | None) -> torch.Tensor | None:
    """The (n1, n2) mask of pairs of equal rows of x1 and x2, or None when there is none.

    ``x2=None`` pairs x1 with itself, and gives None when no two rows of x1 are equal: then only the
    diagonal pairs are equal, and the caller marks them without a mask of every pair.  Rows whose first
    entries differ pairwise are all distinct, which one sort of a column tells, ten times faster than
    sorting the rows.
    """
    if x2 is None and len(torch.unique(x1[:, 0])) == len(x1):
        return None
    rows = x1 if x2 is None else torch.cat([x1, x2])
    unique, inverse = torch.unique(rows, dim=0, return_inverse=True)
    if x2 is None:
        return None if len(unique) == len(x1) else inverse[:, None] == inverse[None, :]
    same = inverse[: len(x1), None] == inverse[None, len(x1) :]
    return same if bool(same.any()) else None


def analytic_kernels(
    x1: torch.Tensor,
    x2: torch.Tensor | None = None,
    *,
    depth: int,
    activation: str = "relu",
    sigma_w2: float = 1.0,
    sigma_b2: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The infinite-width NNGP kernel :math:`K^{L+1}` and NTK :math:`\\Theta^{L+1}` between the rows of two inputs.

    Parameters
    ----------
    x1, x2:
        Inputs, one per row: shapes (n1, d) and (n2, d).  ``x2=None`` means ``x2 = x1``; the kernels are
        then symmetric exactly.  Floating inputs keep their dtype (float16 and bfloat16 are computed in
        float32 and the result converted back); integer and boolean inputs are read as float64, the
        default.  The result lives on the inputs' device.
    depth:
        :math:`L`, the number of hidden layers (the readout layer comes on top): ``depth=0`` is the linear
        model :math:`f = \\sqrt{\\sigma_w^2/d}\\, W x + \\sigma_b b`, with :math:`K = \\Theta = K^1`.
    activation:
        ``"relu"`` or ``"erf"`` (:data:`KERNEL_ACTIVATIONS`).
    sigma_w2, sigma_b2:
        :math:`\\sigma_w^2 \\ge 0` and :math:`\\sigma_b^2 \\ge 0`, as in :class:`bplib.MLP` with
        ``parameterization="ntk"``.

    Returns
    -------
    tuple[torch.Tensor, torch.Tensor]
        ``(nngp, ntk)``, each of shape (n1, n2): :math:`K^{L+1}(x_i, x'_j)` and :math:`\\Theta^{L+1}(x_i, x'_j)`, the
        recursion of the module docstring.

    Equal inputs have correlation 1 exactly at every layer: wherever a row of ``x1`` equals a row of
    ``x2`` (with ``x2`` None: on the diagonal, and between equal rows of ``x1``) the correlation is set to 1,
    so that the kernels there equal their closed forms (for ReLU
    :math:`K^{l+1}(x, x) = \\sigma_w^2 K^l(x, x)/2 + \\sigma_b^2`) to rounding, instead of going through
    :math:`\\arccos(1 \\pm \\varepsilon)`, and ``analytic_kernels(x)`` equals ``analytic_kernels(x, x)`` to
    rounding.  Elsewhere the correlation is clamped to :math:`[-1, 1]`; for two *distinct* inputs that are
    nearly parallel, the ReLU NTK's :math:`\\arccos` amplifies the rounding of the correlation (its slope is
    infinite at 1): a relative error of a few :math:`\\sqrt{u}` (:math:`u` the unit round-off; about
    :math:`10^{-8}` in float64).
    """
    fn = "analytic_kernels"
    check_tensor(fn, "x1", x1, ndim=2)
    if x2 is not None:
        check_tensor(fn, "x2", x2, ndim=2)
        check_same_dtype_and_device(fn, ("x1", x1), ("x2", x2))
        check_shape(fn, "x2", x2, (None, x1.shape[1]), f"n2 inputs of the dimension d = {x1.shape[1]} of x1")
        x2, _ = _as_floating(fn, "x2", x2)
    x1, result_dtype = _as_floating(fn, "x1", x1)
    if x1.shape[1] == 0:
        raise ValueError(
            f"{fn}: argument 'x1' must have at least one column (input dimension d >= 1), got shape {tuple(x1.shape)}"
        )
    depth = _check_depth(fn, depth)
    activation = check_choice(fn, "activation", activation, KERNEL_ACTIVATIONS)
    sigma_w2 = check_real(fn, argument("sigma_w2"), sigma_w2, 0.0, why="a variance")
    sigma_b2 = check_real(fn, argument("sigma_b2"), sigma_b2, 0.0, why="a variance")
    expectations = _EXPECTATIONS[activation]
    symmetric = x2 is None
    x2 = x1 if symmetric else x2
    scale = sigma_w2 / x1.shape[1]  # sigma_w^2 / d
    rows = _variances(expectations, x1, depth, scale, sigma_w2, sigma_b2)  # K^l(x, x), l = 1 .. L + 1
    columns = rows if symmetric else _variances(expectations, x2, depth, scale, sigma_w2, sigma_b2)
    same = _equal_rows(x1, None if symmetric else x2)
    n1, n2 = len(x1), len(x2)
    nngp = x1 @ x2.T  # the inputs' dot products, (n1, n2); each block overwrites its part with K^{L+1}
    ntk = x1.new_empty(n1, n2)
    # Row blocks small enough for the cache: every element-wise step of every layer then runs on data in
    # the cache, instead of streaming the whole (n1, n2) matrices through memory at each step.
    step = max(1, _BLOCK_ELEMENTS // max(n2, 1))
    for r0 in range(0, n1, step):
        r1 = min(n1, r0 + step)
        c0 = r0 if symmetric else 0  # the upper triangle only: the lower one is its mirror image
        if same is not None:
            block_same = same[r0:r1, c0:]
        elif symmetric:  # no two rows of x1 are equal: the diagonal pairs alone
            block_same = torch.eye(r1 - r0, n2 - c0, dtype=torch.bool, device=x1.device)
        else:
            block_same = None
        k, theta = _kernels_block(
            expectations, nngp[r0:r1, c0:].clone(), [v[r0:r1] for v in rows], [v[c0:] for v in columns],
            block_same, scale, sigma_w2, sigma_b2,
        )  # fmt: skip
        for out, block in ((nngp, k), (ntk, theta)):
            if symmetric:
                square = block[:, : r1 - r0]  # the block's own diagonal square: its upper triangle, mirrored
                square.copy_(square.triu() + square.triu(1).T)
                out[r1:, r0:r1] = block[:, r1 - r0 :].T
            out[r0:r1, c0:] = block
    return nngp.to(result_dtype), ntk.to(result_dtype)


_BLOCK_ELEMENTS = 1 << 14
"""Entries per row block of :func:`analytic_kernels` (128 KiB in float64): a few such blocks fit in a cache.

It is also below PyTorch's grain size for splitting an element-wise operation across threads (32768
elements), so each step on a block runs on one thread: on blocks this small the synchronisation of a
parallel region per step costs more than a second thread gains, and much more on a busy machine."""


def _variances(expectations, x: torch.Tensor, depth: int, scale: float, sigma_w2: float, sigma_b2: float) -> list:
    """:math:`K^l(x, x)` for :math:`l = 1, \\dots, L + 1`, one entry per row of x, by the recursion at correlation 1."""
    variance = (x * x).sum(dim=1).mul_(scale).add_(sigma_b2)  # K^1(x, x)
    out = [variance]
    for _ in range(depth):
        value, _ = expectations(variance, variance, variance, torch.ones_like(variance, dtype=torch.bool))
        variance = value.mul_(sigma_w2).add_(sigma_b2)
        out.append(variance)
    return out


def _kernels_block(expectations, gram, rows, columns, same, scale, sigma_w2, sigma_b2):
    """The recursion on one block: ``gram`` the inputs' dot products, ``rows``/``columns`` the variances per layer."""
    nngp = gram.mul_(scale).add_(sigma_b2)  # K^1
    ntk = nngp.clone()  # Theta^1 = K^1
    for a, b in zip(rows[:-1], columns[:-1]):  # layer l + 1 from layer l
        value, slope = expectations(a[:, None], b[None, :], nngp, same)
        nngp = value.mul_(sigma_w2).add_(sigma_b2)  # K^{l+1}
        ntk = slope.mul_(ntk).mul_(sigma_w2).add_(nngp)  # Theta^{l+1} = K^{l+1} + sigma_w^2 E[phi' phi'] Theta^l
    return nngp, ntk


# ------------------------------------------------------------------------------ the empirical kernel


def _check_network_input(fn: str, name: str, x: object, net: MLP) -> torch.Tensor:
    check_tensor(fn, name, x, ndim=2, floating=True)
    check_shape(fn, name, x, (None, net.sizes[0]), f"batch size, n_0 = {net.sizes[0]} inputs of the network")
    check_same_dtype_and_device(fn, ("net.weights[0]", net.weights[0]), (name, x))
    return x


def empirical_ntk(net: MLP, x1: torch.Tensor, x2: torch.Tensor | None = None) -> torch.Tensor:
    """The empirical NTK :math:`\\hat\\Theta(x_i, x'_j)` of a scalar-output network, layer by layer, shape (n1, n2).

    .. math::

        \\hat\\Theta = \\sum_{l=1}^{L} \\big(\\Delta^l_1 (\\Delta^l_2)^\\top\\big) \\odot
            \\big(c_l^2\\, A^{l-1}_1 (A^{l-1}_2)^\\top + c_b^2\\big),

    where, for the inputs ``x1`` (subscript 1) and ``x2`` (subscript 2), row :math:`i` of :math:`A^{l-1}` is the
    input of layer :math:`l` at sample :math:`i` and row :math:`i` of :math:`\\Delta^l` is
    :math:`\\partial f(x_i) / \\partial z^l`, and :math:`(c_l, c_b)` = ``net.scales[l - 1]``.  Layer
    :math:`l`'s parameter gradients at sample :math:`i` are :math:`c_l\\, \\delta^l_i (a^{l-1}_i)^\\top` and
    :math:`c_b\\, \\delta^l_i`, so the sum over that layer's entries of the products of two such gradients
    factorises as written: the :math:`N \\times P` Jacobian is never formed.

    The :math:`\\Delta^l` come from one forward pass (:meth:`bplib.MLP.forward_with_caches`, both inputs in one
    batch) and the backward recursion with :math:`\\Delta^L = \\mathbf{1}` (the output is :math:`f` itself):
    :math:`\\Delta^{l} = (\\Delta^{l+1} c_{l+1} W^{l+1}) \\odot \\sigma'(Z^{l})`, by the activation's backward pair
    of :mod:`bplib.functional.activations`.  Because each row of a batch is a sample of its own, row
    :math:`i` of this recursion is :math:`\\partial f(x_i)/\\partial z^l` alone.  Memory:
    :math:`O(N^2 + N \\sum_l n_l)` for :math:`N = n_1 + n_2`; time: :math:`O(n_1 n_2 \\sum_l (n_{l-1} + n_l))`.

    Parameters
    ----------
    net:
        A :class:`bplib.MLP` with one output (``sizes[-1] == 1``), in either parameterisation; the
        gradients are with respect to its stored parameters (:attr:`bplib.MLP.parameters`).
    x1, x2:
        Inputs, shapes (n1, n_0) and (n2, n_0), of the network's dtype and device; ``x2=None`` means
        ``x2 = x1``, and the kernel is then symmetric exactly.
    """
    fn = "empirical_ntk"
    if not isinstance(net, MLP):
        raise TypeError(f"{fn}: argument 'net' must be a bplib.MLP, got {type(net).__name__}")
    if net.sizes[-1] != 1:
        raise ValueError(
            f"{fn}: argument 'net' must have a scalar output (sizes[-1] == 1), got sizes {net.sizes}; "
            f"the NTK of a vector output is one kernel per pair of outputs"
        )
    _check_network_input(fn, "x1", x1, net)
    if x2 is not None:
        _check_network_input(fn, "x2", x2, net)
    n1 = len(x1)
    x = x1 if x2 is None else torch.cat([x1, x2])  # one batch: (n1 + n2, n_0)

    def halves(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (t, t) if x2 is None else (t[:n1], t[n1:])

    _, caches = net.forward_with_caches(x)
    _, activation_backward = ACTIVATIONS[net.activation]
    delta = x.new_ones(len(x), 1)  # Delta^L = df/dz^L = 1, (N, 1)
    theta = x.new_zeros(n1, len(x) - n1 if x2 is not None else n1)
    for l in range(len(caches) - 1, -1, -1):  # layer l + 1 of the book, from the output down
        (a_prev, acting_weight), _ = caches[l]  # A^{l}, (N, n_l), and c_w W^{l+1} as it acts
        c_w, c_b = net.scales[l]
        (a1, a2), (d1, d2) = halves(a_prev), halves(delta)
        inputs = torch.addmm(a1.new_tensor(c_b * c_b), a1, a2.T, alpha=c_w * c_w)  # c_w^2 A A'^T + c_b^2
        theta.addcmul_(d1 @ d2.T, inputs)  # (Delta Delta'^T) * (c_w^2 A A'^T + c_b^2)
        if l > 0:
            # forward: z^{l+1} = (c_w W^{l+1}) a^l + c_b b^{l+1}, a^l = sigma(z^l)
            delta = activation_backward(delta @ acting_weight, caches[l - 1][1])  # Delta^l, (N, n_l)
    if x2 is None:  # a matrix product A A^T need not round symmetrically: average it with its transpose
        theta = (theta + theta.T).mul_(0.5)
    return theta


# ------------------------------------------------------------------------------ the linearised dynamics


def _check_times(fn: str, times: object, like: torch.Tensor) -> torch.Tensor:
    if isinstance(times, torch.Tensor):
        check_tensor(fn, "times", times, ndim=1)
        if times.is_complex():
            raise TypeError(f"{fn}: argument 'times' must be real, got dtype {times.dtype}")
        values = times.to(dtype=like.dtype, device=like.device)
    elif isinstance(times, Sequence) and not isinstance(times, str):
        for t in times:
            if isinstance(t, bool) or not isinstance(t, (int, float)):
                raise TypeError(f"{fn}: argument 'times' must hold real numbers, got {type(t).__name__} {t!r}")
        values = like.new_tensor(list(times)).reshape(-1)
    else:
        raise TypeError(
            f"{fn}: argument 'times' must be a 1-D tensor or a sequence of times, got {type(times).__name__}"
        )
    if bool(torch.isnan(values).any()) or bool((values < 0).any()):
        raise ValueError(f"{fn}: argument 'times' must hold times >= 0 (math.inf allowed), got {values.tolist()}")
    return values


def linearized_predictions(
    theta_train: torch.Tensor,
    theta_test_train: torch.Tensor,
    f0_train: torch.Tensor,
    f0_test: torch.Tensor,
    y: torch.Tensor,
    *,
    learning_rate: float,
    times: Sequence[float] | torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs of the linearised network trained by gradient flow, at the given times (Lee et al., 2019).

    The loss is the *sum* :math:`\\mathcal{L} = \\tfrac12 \\lVert f(X) - y \\rVert^2` and the flow
    :math:`\\dot\\theta = -\\eta \\nabla_\\theta \\mathcal{L}`; with the kernel fixed at :math:`\\Theta = \\Theta(X, X)`
    the outputs follow :math:`\\dot f = -\\eta\\, \\Theta (f - y)`, whose solution is

    .. math::

        f_t(X) = f_0(X) + \\big(I - e^{-\\eta \\Theta t}\\big)\\big(y - f_0(X)\\big), \\qquad
        f_t(x^\\ast) = f_0(x^\\ast)
            + \\Theta(x^\\ast, X)\\, \\Theta^{-1} \\big(I - e^{-\\eta \\Theta t}\\big)\\big(y - f_0(X)\\big).

    For the *mean* loss :math:`\\tfrac{1}{2m} \\lVert f(X) - y \\rVert^2` of ``bplib.MLP(loss="mse")`` on
    :math:`m` training points, pass ``learning_rate / m``.  Gradient descent with step :math:`\\eta` for
    :math:`k` steps approximates the flow at :math:`t = k` when :math:`\\eta \\lambda_{\\max}(\\Theta)` is small.

    Evaluated through the eigendecomposition :math:`\\Theta = V \\operatorname{diag}(\\lambda) V^\\top`:
    :math:`I - e^{-\\eta\\Theta t} = V \\operatorname{diag}(-\\operatorname{expm1}(-\\eta\\lambda t)) V^\\top` and
    :math:`\\Theta^{-1}(I - e^{-\\eta\\Theta t}) = V \\operatorname{diag}(g(\\lambda)) V^\\top` with
    :math:`g(\\lambda) = -\\operatorname{expm1}(-\\eta \\lambda t)/\\lambda`, which is :math:`\\eta t` at
    :math:`\\lambda = 0`: no inverse is formed, and at finite times a singular :math:`\\Theta` is harmless.
    At :math:`t = \\infty` (``math.inf``), :math:`g = 1/\\lambda`: kernel regression, which needs
    :math:`\\Theta` positive definite.

    Parameters
    ----------
    theta_train:
        :math:`\\Theta(X, X)`, shape (n, n), symmetric (only its lower triangle is read).
    theta_test_train:
        :math:`\\Theta(X^\\ast, X)`, shape (n_test, n).
    f0_train, f0_test, y:
        Outputs at initialisation on the training and test inputs and the targets: shapes (n,) or (n, k),
        (n_test,) or (n_test, k), and that of ``f0_train``.
    learning_rate:
        :math:`\\eta > 0`.
    times:
        Times :math:`t \\ge 0` (a 1-D tensor or a sequence; ``math.inf`` allowed).

    Returns
    -------
    tuple[torch.Tensor, torch.Tensor]
        ``(f_train, f_test)``, of shapes (T, n) and (T, n_test) (with a trailing k for two-dimensional targets), for the T times.
    """
    fn = "linearized_predictions"
    check_tensor(fn, "theta_train", theta_train, ndim=2, floating=True)
    n = theta_train.shape[0]
    check_shape(fn, "theta_train", theta_train, (n, n), "a square matrix, Theta(X, X)")
    check_tensor(fn, "theta_test_train", theta_test_train, ndim=2, floating=True)
    check_shape(fn, "theta_test_train", theta_test_train, (None, n), f"n_test, n = {n} training points")
    check_tensor(fn, "f0_train", f0_train, floating=True)
    if f0_train.dim() not in (1, 2) or f0_train.shape[0] != n:
        raise ValueError(f"{fn}: argument 'f0_train' must have shape ({n},) or ({n}, k), got {tuple(f0_train.shape)}")
    check_tensor(fn, "y", y, floating=True)
    check_shape(fn, "y", y, tuple(f0_train.shape), "the shape of f0_train")
    check_tensor(fn, "f0_test", f0_test, floating=True)
    check_shape(fn, "f0_test", f0_test, (theta_test_train.shape[0], *f0_train.shape[1:]),
                "n_test rows of theta_test_train, and the columns of f0_train")  # fmt: skip
    check_same_dtype_and_device(
        fn, ("theta_train", theta_train), ("theta_test_train", theta_test_train), ("f0_train", f0_train),
        ("f0_test", f0_test), ("y", y),
    )  # fmt: skip
    eta = check_real(fn, argument("learning_rate"), learning_rate)  # a finite real number
    if eta <= 0:
        raise ValueError(f"{fn}: argument 'learning_rate' must be > 0 (a step size), got {learning_rate!r}")
    t = _check_times(fn, times, theta_train)

    eigenvalues, V = torch.linalg.eigh(theta_train)  # Theta = V diag(lambda) V^T
    residual = (y - f0_train).reshape(n, -1)  # y - f_0, (n, k)
    projected = V.T @ residual  # (n, k), the residual in the eigenbasis
    rate = (eta * t)[:, None] * eigenvalues[None, :]  # (T, n): eta lambda t
    rate = torch.where(torch.isinf(t)[:, None], torch.where(eigenvalues > 0, math.inf, 0.0), rate)  # 0 * inf
    decayed = -torch.expm1(-rate)  # 1 - exp(-eta lambda t), (T, n)
    safe = torch.where(eigenvalues == 0, 1.0, eigenvalues)
    gain = torch.where(eigenvalues == 0, (eta * t)[:, None], decayed / safe)  # (1 - exp(-eta lambda t)) / lambda
    f_train = f0_train + torch.einsum("ij,tj,jk->tik", V, decayed, projected).reshape(len(t), *f0_train.shape)
    test_basis = theta_test_train @ V  # Theta(X*, X) V, (n_test, n)
    f_test = f0_test + torch.einsum("ij,tj,jk->tik", test_basis, gain, projected).reshape(len(t), *f0_test.shape)
    return f_train, f_test
