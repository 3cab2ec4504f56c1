"""Curvature of a loss from its gradients alone: Hessian--vector products and the largest eigenvalue.

For a twice differentiable :math:`f: \\mathbb{R}^P \\to \\mathbb{R}` with gradient :math:`g = \\nabla f`
(for a network, ``loss_and_grads`` through :func:`bplib.params.flatten`), the central difference of the
gradient along a direction :math:`v` is

.. math::

    \\frac{g(\\theta + h v) - g(\\theta - h v)}{2h} = \\nabla^2 f(\\theta)\\, v
    + \\frac{h^2}{6}\\, D^3 g(\\theta)[v, v, v] + O(h^4),

the even terms of the two Taylor series cancelling as in :mod:`bplib.gradcheck`.  Each gradient is
rounded to about :math:`\\varepsilon \\lVert g \\rVert`, which the quotient turns into an error of about
:math:`\\varepsilon \\lVert g \\rVert / h`; for a unit :math:`v` in float64 the sum of the two is smallest
near :math:`h = 10^{-5}` (the default), where both are about :math:`10^{-11}` relative to
:math:`\\lVert g \\rVert` and the third derivative.  Two gradients buy one product with the
:math:`P \\times P` Hessian, which is never formed.  (Exact products cost the same by differentiating
the gradient once more, in forward mode -- B. A. Pearlmutter (1994), "Fast exact multiplication by the
Hessian", *Neural Computation* 6(1); the difference quotient needs nothing but the gradient, see
J. Nocedal and S. J. Wright (2006), *Numerical Optimization*, 2nd ed., section 8.1.)

With products alone, *power iteration* finds the eigenvalue of largest modulus of a symmetric matrix
:math:`H`: :math:`v_{k+1} = H v_k / \\lVert H v_k \\rVert`, with the Rayleigh quotient
:math:`\\lambda_k = v_k^\\top H v_k` as the estimate.  If :math:`|\\lambda_1| > |\\lambda_2| \\ge \\dots`,
the error of :math:`v_k` falls like :math:`|\\lambda_2/\\lambda_1|^k` and that of :math:`\\lambda_k` like its
square (G. H. Golub and C. F. Van Loan (2013), *Matrix Computations*, 4th ed., section 8.2.1).  Every
:math:`\\lambda_k` is a Rayleigh quotient, so :math:`|\\lambda_k| \\le \\lVert H \\rVert_2`: stopped early, the
estimate errs low.  For a Hessian, :math:`\\lVert \\nabla^2 f(\\theta) \\rVert_2` is the local smoothness
constant of :math:`f` at :math:`\\theta`.

Not done here: no Lanczos (it would find several eigenvalues at once, faster), no deflation, no
exact products.  When :math:`\\lambda` and :math:`-\\lambda` are both extreme, the vectors do not settle and
the estimate need not converge.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._checks import argument, check_positive, check_same_dtype_and_device, check_shape, check_tensor

VectorFunction = Callable[[torch.Tensor], torch.Tensor]


def _check_callable(fn: str, name: str, value: object, what: str) -> None:
    if not callable(value):
        raise TypeError(f"{fn}: argument '{name}' must be callable ({what}), got {type(value).__name__}")


def _checked_output(fn: str, name: str, out: object, like: torch.Tensor) -> torch.Tensor:
    """The value of a tensor -> tensor function, checked to have the shape, dtype and device of its input."""
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{fn}: argument '{name}' must return a tensor, got {type(out).__name__}")
    if out.shape != like.shape:
        raise ValueError(
            f"{fn}: argument '{name}' must return a tensor of the shape of its input {tuple(like.shape)}, "
            f"got {tuple(out.shape)}"
        )
    if out.dtype != like.dtype or out.device != like.device:
        raise TypeError(
            f"{fn}: argument '{name}' must return a tensor of the dtype and device of its input "
            f"({like.dtype}, {like.device}), got {out.dtype}, {out.device}"
        )
    return out


def hessian_vector_product(grad: VectorFunction, theta: torch.Tensor, v: torch.Tensor, *, h: float = 1e-5) -> torch.Tensor:
    """:math:`\\nabla^2 f(\\theta)\\, v` by central differences of the gradient: two calls of ``grad``.

    .. math::

        \\nabla^2 f(\\theta)\\, v \\approx \\frac{\\nabla f(\\theta + h v) - \\nabla f(\\theta - h v)}{2h},

    with an error of :math:`O(h^2)` from the Taylor series and about :math:`\\varepsilon\\lVert g \\rVert / h`
    from rounding (module docstring): for a unit ``v`` in float64, ``h = 1e-5`` makes both about
    :math:`10^{-11}`.  The step is taken along ``v`` as given, so scale ``v`` to unit length (or ``h``
    by :math:`1/\\lVert v \\rVert`) for that balance.

    Parameters
    ----------
    grad:
        :math:`\\theta \\mapsto \\nabla f(\\theta)`, a tensor of the shape, dtype and device of its argument;
        must not write into its argument.
    theta:
        The point, a floating tensor of any shape; never written.
    v:
        The direction, of the shape, dtype and device of ``theta``.
    h:
        The step, a finite number > 0.
    """
    fn = "hessian_vector_product"
    _check_callable(fn, "grad", grad, "a tensor -> tensor function, the gradient")
    check_tensor(fn, "theta", theta, floating=True)
    check_tensor(fn, "v", v, floating=True)
    check_shape(fn, "v", v, tuple(theta.shape), "the shape of theta")
    check_same_dtype_and_device(fn, ("theta", theta), ("v", v))
    check_positive(fn, argument("h"), h)
    forward = _checked_output(fn, "grad", grad(theta + h * v), theta)
    backward = _checked_output(fn, "grad", grad(theta - h * v), theta)
    return (forward - backward) / (2 * h)


def power_iteration(
    matvec: VectorFunction, v0: torch.Tensor, *, iterations: int = 100, rtol: float = 1e-8
) -> tuple[torch.Tensor, torch.Tensor]:
    """The eigenvalue of largest modulus of a symmetric linear map, and a unit eigenvector, by power iteration.

    From :math:`v_0 / \\lVert v_0 \\rVert`, repeat :math:`w = H v_k`, :math:`\\lambda_k = v_k^\\top w`,
    :math:`v_{k+1} = w / \\lVert w \\rVert`, until two successive estimates agree,
    :math:`|\\lambda_k - \\lambda_{k-1}| \\le \\mathrm{rtol}\\, |\\lambda_k|`, or ``iterations`` products have
    been taken.  Returns :math:`(\\lambda_k, v_k)`: the estimate as a 0-d tensor and its unit vector.  The
    estimate is a Rayleigh quotient, so :math:`|\\lambda_k| \\le \\lVert H \\rVert_2` whenever it stops
    (module docstring), and its error is about the square of the vector's: when the estimate has settled
    to ``rtol``, the vector may still be off by about :math:`\\sqrt{\\mathrm{rtol}}`.  With :math:`H = \\nabla^2 f(\\theta)` and ``matvec`` a
    :func:`hessian_vector_product`, :math:`|\\lambda_k|` estimates the local smoothness constant.

    Parameters
    ----------
    matvec:
        :math:`v \\mapsto H v` for a symmetric :math:`H`, a tensor of the shape, dtype and device of ``v``.
    v0:
        The start, a floating tensor of any shape with a nonzero entry; draw it at random (with a seeded
        ``torch.Generator``) so that it is not orthogonal to the eigenvector sought.
    iterations:
        The largest number of products, an int >= 1.
    rtol:
        The relative change of the estimate at which to stop, a number >= 0 (0: run every iteration).

    Raises
    ------
    ValueError
        When ``v0`` is zero or not finite, or ``matvec`` maps an iterate to zero (then :math:`H v_k = 0`,
        and the eigenvalue found is 0 only if the start lay in the null space: start elsewhere) or to a
        vector with an inf or NaN entry.
    """
    fn = "power_iteration"
    _check_callable(fn, "matvec", matvec, "a tensor -> tensor function, v -> H v")
    check_tensor(fn, "v0", v0, floating=True)
    check_positive(fn, argument("iterations"), iterations, integer=True)
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)):
        raise TypeError(f"{fn}: argument 'rtol' must be a Python number, got {type(rtol).__name__}")
    if not (rtol >= 0 and math.isfinite(rtol)):
        raise ValueError(f"{fn}: argument 'rtol' must be a finite number >= 0, got {rtol!r}")
    norm = torch.linalg.vector_norm(v0)
    if norm == 0:
        raise ValueError(f"{fn}: argument 'v0' must have a nonzero entry, got a zero tensor of shape {tuple(v0.shape)}")
    if not torch.isfinite(norm):
        raise ValueError(f"{fn}: argument 'v0' must be finite, got a tensor with an inf or NaN entry")
    v = v0 / norm
    previous = None
    for k in range(iterations):
        w = _checked_output(fn, "matvec", matvec(v), v)
        w_norm = torch.linalg.vector_norm(w)
        if w_norm == 0:
            raise ValueError(f"{fn}: argument 'matvec' mapped an iterate to zero; start 'v0' outside the null space")
        if not torch.isfinite(w_norm):
            raise ValueError(f"{fn}: argument 'matvec' must return finite vectors, got one with an inf or NaN entry")
        estimate = torch.sum(v * w)  # the Rayleigh quotient v^T H v, ||v|| = 1
        settled = previous is not None and abs(estimate - previous) <= rtol * abs(estimate)
        if settled or k == iterations - 1:
            return estimate, v
        previous, v = estimate, w / w_norm
