"""Random features and the minimum-norm least-squares fit: a network whose first layer is never trained.

A *random-features model* (A. Rahimi and B. Recht (2007), "Random features for large-scale kernel
machines", NeurIPS) draws the first layer once and fits only the last:

.. math::

    \\phi(x) = \\frac{1}{\\sqrt{p}}\\, \\operatorname{ReLU}(W x) \\in \\mathbb{R}^p, \\qquad
    \\hat f(x) = \\theta^\\top \\phi(x), \\qquad W \\in \\mathbb{R}^{p \\times d} \\text{ random, fixed}.

On :math:`n` samples (rows of :math:`X`), the feature matrix :math:`\\Phi \\in \\mathbb{R}^{n \\times p}` has
rows :math:`\\phi(x_i)^\\top`, and fitting :math:`\\theta` by least squares is a linear problem.  When
:math:`p \\ge n` it has many exact solutions (interpolants); :func:`min_norm_least_squares` returns the one
of least norm, :math:`\\theta = \\Phi^+ y`, the fit whose test error traces the *double descent* of
M. Belkin, D. Hsu, S. Ma and S. Mandal (2019), "Reconciling modern machine-learning practice and the
classical bias-variance trade-off", PNAS 116(32); T. Hastie, A. Montanari, S. Rosset and
R. J. Tibshirani (2022), "Surprises in high-dimensional ridgeless least squares interpolation",
Annals of Statistics 50(2); S. Mei and A. Montanari (2022), "The generalization error of random
features regression", CPAM 75(4).

The factor :math:`1/\\sqrt{p}` keeps :math:`\\lVert \\phi(x) \\rVert` of order one as :math:`p` grows; it changes
no prediction of the minimum-norm fit (scaling :math:`\\Phi` by :math:`c` scales :math:`\\Phi^+` by
:math:`1/c`).  Draw :math:`W` with :func:`bplib.init.he`, so that the pre-activations have the variance
of a ReLU layer of a network.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ._checks import check_same_dtype_and_device, check_shape, check_tensor
from .functional import relu_forward


def relu_features(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The random ReLU features of every row of ``x``: :math:`\\Phi = \\operatorname{ReLU}(X W^\\top) / \\sqrt{p}`.

    Parameters
    ----------
    x:
        Samples, shape (n, d), one per row; floating.
    weights:
        :math:`W`, shape (p, d), of the dtype and device of ``x``.

    Returns
    -------
    torch.Tensor
        :math:`\\Phi`, shape (n, p): row :math:`i` is :math:`\\phi(x_i)^\\top`.  The first :math:`q` columns
        are the features of ``weights[:q]`` times :math:`\\sqrt{q/p}` (the normalisation differs), so nested
        models share their features up to a factor, which changes no prediction of the minimum-norm fit.
    """
    fn = "relu_features"
    check_tensor(fn, "x", x, ndim=2, floating=True)
    check_tensor(fn, "weights", weights, ndim=2, floating=True)
    check_shape(fn, "weights", weights, (None, x.shape[1]), "(p, d): one row per feature, d = x.shape[1]")
    check_same_dtype_and_device(fn, ("x", x), ("weights", weights))
    features, _ = relu_forward(x @ weights.T)  # (n, p)
    return features / math.sqrt(weights.shape[0])


class LeastSquaresFit(NamedTuple):
    """What :func:`min_norm_least_squares` returns."""

    coefficients: torch.Tensor
    """:math:`\\theta = \\Phi^+ y`, shape (p,) or (p, k) like the targets."""
    singular_values: torch.Tensor
    """Every singular value of :math:`\\Phi`, shape (min(n, p),), in decreasing order."""
    rank: int
    """The number of singular values above the cutoff, those the fit inverts."""


def min_norm_least_squares(features: torch.Tensor, targets: torch.Tensor, *, rtol: float | None = None) -> LeastSquaresFit:
    """The least-squares fit of least norm, :math:`\\theta = \\Phi^+ y`, from one singular value decomposition.

    With :math:`\\Phi = U \\operatorname{diag}(s) V^\\top` and :math:`r` the number of singular values above
    :math:`\\mathrm{rtol} \\cdot s_1`,

    .. math::

        \\theta = \\sum_{i=1}^{r} \\frac{u_i^\\top y}{s_i}\\, v_i ,

    which minimises :math:`\\lVert \\Phi\\theta - y \\rVert` and, among all minimisers, :math:`\\lVert \\theta \\rVert`
    (the Moore--Penrose pseudo-inverse; ``torch.linalg.pinv(features) @ targets`` with the same cutoff).
    For :math:`p \\ge n` and :math:`\\Phi` of rank :math:`n`, it interpolates, :math:`\\Phi\\theta = y`.  Its
    size is governed by the smallest inverted singular value: :math:`\\lVert \\theta \\rVert \\le
    \\lVert y \\rVert / s_r`, and noise in :math:`y` along :math:`u_r` is amplified by :math:`1/s_r`.  The
    singular values come back with the fit, so that this can be seen.

    Parameters
    ----------
    features:
        :math:`\\Phi`, shape (n, p), floating.
    targets:
        :math:`y`, shape (n,) or (n, k), of the dtype and device of ``features``.
    rtol:
        The relative cutoff; singular values at or below ``rtol * s_1`` are treated as zero.  By default
        :math:`\\max(n, p)\\, \\epsilon`, with :math:`\\epsilon` the machine epsilon of the dtype (the default of
        ``torch.linalg.pinv`` and of LAPACK's rank decisions).
    """
    fn = "min_norm_least_squares"
    check_tensor(fn, "features", features, ndim=2, floating=True)
    check_tensor(fn, "targets", targets)
    if targets.dim() not in (1, 2):
        raise ValueError(f"{fn}: argument 'targets' must be 1-D or 2-D, got shape {tuple(targets.shape)}")
    check_shape(fn, "targets", targets, (features.shape[0], *targets.shape[1:]), "one row per row of features")
    check_same_dtype_and_device(fn, ("features", features), ("targets", targets))
    if rtol is None:
        rtol = max(features.shape) * torch.finfo(features.dtype).eps
    elif isinstance(rtol, bool) or not isinstance(rtol, (int, float)):
        raise TypeError(f"{fn}: argument 'rtol' must be a Python number or None, got {type(rtol).__name__}")
    elif not (0 <= rtol < 1):
        raise ValueError(f"{fn}: argument 'rtol' must be in [0, 1), got {rtol!r}")
    U, s, Vh = torch.linalg.svd(features, full_matrices=False)  # (n, q), (q,), (q, p), q = min(n, p)
    rank = int((s > rtol * s[0]).sum()) if s.numel() else 0
    projections = U[:, :rank].T @ targets  # u_i^T y, (r,) or (r, k)
    scaled = projections / (s[:rank] if targets.dim() == 1 else s[:rank, None])
    return LeastSquaresFit(Vh[:rank].T @ scaled, s, rank)
