r"""Scaled dot-product attention: forward and backward side by side.

For queries :math:`Q` (:math:`T_q \times d`), keys :math:`K` (:math:`T_k \times d`) and values
:math:`V` (:math:`T_k \times d_v`), one row per position, and a scale :math:`s` (by default
:math:`1/\sqrt d`), the forward pass is a chain of three steps,

.. math::

    S = s\, Q K^\top \quad (T_q \times T_k), \qquad
    P = \operatorname{softmax}(S) \text{ row by row}, \qquad
    O = P V \quad (T_q \times d_v),

and the backward pass walks it back, given :math:`\bar O = \partial L / \partial O`:

.. math::

    \bar P = \bar O V^\top, \quad \bar V = P^\top \bar O; \qquad
    \bar S = P \odot \big(\bar P - \operatorname{rowsum}(\bar P \odot P)\, \mathbf{1}^\top\big); \qquad
    \bar Q = s\, \bar S K, \quad \bar K = s\, \bar S^\top Q.

The middle step is the softmax vector–Jacobian product of :mod:`bplib.functional.softmax`, applied to
every row; the backward below calls that pair's kernel, so the code reads like the chain.  Any
leading (batch, head) dimensions are carried through every product: ``q`` (..., T_q, d), ``k``
(..., T_k, d), ``v`` (..., T_k, d_v) with the same leading shape.

**Causal masking** follows ``torch.nn.functional.scaled_dot_product_attention(is_causal=True)``:
query :math:`i` attends to keys :math:`j \le i` (0-based), that is, the mask is
``torch.ones(T_q, T_k).tril()`` aligned to the *top-left* corner of :math:`S`, also when
:math:`T_q \ne T_k`.  With :math:`T_q > T_k` the queries :math:`i \ge T_k - 1` attend to every key;
with :math:`T_q < T_k` the last :math:`T_k - T_q` keys are seen by no query (their :math:`\bar K`
and :math:`\bar V` rows are 0).  Every query sees key 0, so no row of :math:`P` is empty.  Masked
entries of :math:`S` are set to :math:`-\infty`, which makes :math:`P` and :math:`\bar S` exactly 0
there: the mask needs no backward step of its own.

Any finite ``scale`` is taken, 0 and negative ones included; the formula above holds for each.
(torch 2.13's fused CPU kernel, which ``scaled_dot_product_attention`` picks for 4-D inputs, returns
NaN for ``is_causal=True`` with a negative ``scale``; its 3-D path agrees with this function.)

Reference: A. Vaswani, N. Shazeer, N. Parmar, J. Uszkoreit, L. Jones, A. N. Gomez, Ł. Kaiser,
I. Polosukhin (2017), "Attention is all you need", NeurIPS.

Not done here: no projections or heads (``q``, ``k``, ``v`` arrive already projected and split),
no arbitrary ``attn_mask``, no dropout on :math:`P`, no broadcasting of leading dimensions, no
grouped-query attention, no memory-efficient (flash) variant: :math:`S` and :math:`P` are formed
in full and :math:`P` is kept for the backward pass.
"""

from __future__ import annotations

import math

import torch

from .._checks import argument, check_flag, check_real, check_same_dtype_and_device, check_shape, check_tensor
from .softmax import SoftmaxCache, _softmax_backward, _softmax_forward

AttentionCache = tuple[torch.Tensor, torch.Tensor, torch.Tensor, float, SoftmaxCache]


def _attention_forward(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, scale: float
) -> tuple[torch.Tensor, AttentionCache]:
    S = q @ k.mT * scale  # (..., T_q, T_k)
    if causal:
        T_q, T_k = S.shape[-2:]
        future = torch.ones(T_q, T_k, dtype=torch.bool, device=S.device).triu_(1)  # (T_q, T_k): key j > query i
        S.masked_fill_(future, -math.inf)
    P, softmax_cache = _softmax_forward(S, -1)  # (..., T_q, T_k), rows sum to 1
    out = P @ v  # (..., T_q, d_v)
    return out, (q, k, v, scale, softmax_cache)


def _attention_backward(
    dout: torch.Tensor, cache: AttentionCache
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    q, k, v, scale, softmax_cache = cache
    P, _ = softmax_cache
    # forward: out = P @ v
    dP = dout @ v.mT  # (..., T_q, T_k)
    dv = P.mT @ dout  # (..., T_k, d_v)
    # forward: P = softmax(S) along the keys
    dS = _softmax_backward(dP, softmax_cache)  # (..., T_q, T_k), 0 where S was masked
    # forward: S = q @ k.mT * scale
    dq = dS @ k * scale  # (..., T_q, d)
    dk = dS.mT @ q * scale  # (..., T_k, d)
    return dq, dk, dv


def attention_forward(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = False, scale: float | None = None
) -> tuple[torch.Tensor, AttentionCache]:
    """Return ``out = softmax(q @ k^T * scale) @ v`` and the cache ``(q, k, v, scale, softmax cache)``.

    Shapes: ``q`` (..., T_q, d), ``k`` (..., T_k, d), ``v`` (..., T_k, d_v), the same leading
    dimensions for all three -> ``out`` (..., T_q, d_v).  ``scale`` defaults to ``1 / sqrt(d)``;
    ``causal=True`` masks key ``j > i`` for query ``i``, as the module docstring says.  Equal to
    ``torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)``.
    """
    fn = "attention_forward"
    check_tensor(fn, "q", q, floating=True)
    if q.dim() < 2:
        raise ValueError(f"{fn}: argument 'q' must have at least 2 dimensions (..., T_q, d), got a {q.dim()}-D tensor")
    check_tensor(fn, "k", k, floating=True)
    check_tensor(fn, "v", v, floating=True)
    check_same_dtype_and_device(fn, ("q", q), ("k", k), ("v", v))
    *lead, _, d = q.shape
    check_shape(fn, "k", k, (*lead, None, d), "the leading dimensions of q, T_k, then d = q.shape[-1]")
    check_shape(fn, "v", v, (*lead, k.shape[-2], None), "the leading dimensions of q, T_k = k.shape[-2], then d_v")
    check_flag(fn, argument("causal"), causal)
    if scale is None:
        if d == 0:
            raise ValueError(f"{fn}: argument 'q' has d = q.shape[-1] = 0, so the default scale 1/sqrt(d) is undefined")
        scale = 1 / math.sqrt(d)
    else:
        scale = check_real(fn, argument("scale"), scale)
    return _attention_forward(q, k, v, causal, scale)


def attention_backward(
    dout: torch.Tensor, cache: AttentionCache
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return ``(dq, dk, dv)`` given ``dout = dL/dout`` of shape (..., T_q, d_v)."""
    q, _, v, _, _ = cache
    fn = "attention_backward"
    check_tensor(fn, "dout", dout, floating=True)
    check_same_dtype_and_device(fn, ("q (from cache)", q), ("dout", dout))
    check_shape(fn, "dout", dout, (*q.shape[:-1], v.shape[-1]), "the shape (..., T_q, d_v) of the forward output")
    return _attention_backward(dout, cache)
