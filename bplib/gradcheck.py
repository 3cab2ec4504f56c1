"""Gradient checking: finite differences against a hand-written gradient.

For a scalar function :math:`f: \\mathbb{R}^P \\to \\mathbb{R}` (a loss as a function of
the parameters) and a claimed gradient :math:`g \\approx \\nabla f(x)`, the central
difference along the i-th basis vector :math:`e_i` is

.. math::

    \\hat g_i = \\frac{f(x + h e_i) - f(x - h e_i)}{2h}.

Taylor's theorem, :math:`f(x \\pm h e_i) = f \\pm h\\,\\partial_i f + \\tfrac{h^2}{2}\\partial_i^2 f
\\pm \\tfrac{h^3}{6}\\partial_i^3 f + O(h^4)`, makes the even terms cancel:

.. math::

    \\hat g_i = \\partial_i f(x) + \\frac{h^2}{6}\\,\\partial_i^3 f(x) + O(h^4),

a truncation error of order :math:`h^2` (the one-sided quotient
:math:`(f(x + h e_i) - f(x))/h` keeps :math:`\\tfrac{h}{2}\\partial_i^2 f`, of order :math:`h`).
Each evaluation of :math:`f` is also rounded, to about :math:`\\varepsilon |f|` with
:math:`\\varepsilon` a small multiple of the unit round-off :math:`u`, and the
difference divided by :math:`2h` turns that into an error of about
:math:`\\varepsilon |f| / h`.  The total, :math:`\\tfrac{h^2}{6}|\\partial_i^3 f| + \\varepsilon|f|/h`,
is smallest at :math:`h^\\ast = (3\\varepsilon|f|/|\\partial_i^3 f|)^{1/3}`: for
:math:`|f| \\approx |\\partial_i^3 f|` about :math:`7\\times10^{-6}` in float64 and
:math:`6\\times10^{-3}` in float32.  The step :math:`h = 10^{-7}` of the usual textbook loop sits on the
rounding side of that optimum in float64: about :math:`10^{-9}|f|` in each entry, which over
:math:`P` entries adds up to a relative error of about
:math:`\\sqrt{P}\\,\\varepsilon|f| / (2h\\lVert\\nabla f\\rVert)` -- :math:`4\\times10^{-8}` for the
13,130 parameters of ``bench/gradcheck.py``, still inside the "correct" band below,
but closer to its edge as :math:`P` grows.  In float32 that step is useless: check in
float64.  Griewank & Walther (2008), *Evaluating Derivatives*, 2nd ed., SIAM, set out
this trade-off of difference quotients, and why they serve to check derivatives
rather than to compute them.

The two gradients are compared by their normalised difference

.. math::

    \\operatorname{err}(\\hat g, g) = \\frac{\\lVert \\hat g - g \\rVert_2}{\\lVert \\hat g \\rVert_2 + \\lVert g \\rVert_2}
    \\qquad (0 \\text{ when both are } 0),

which lies in [0, 1].  It is the measure of the gradient-checking exercise of Ng's *Deep Learning
Specialization* (deeplearning.ai), which reads a value below :math:`10^{-7}` as a correct gradient; the
CS231n notes (Karpathy, "Gradient checks") read their entry-wise relative error on a similar scale.
The band between and the bound from which a gradient counts as wrong are this book's choice, made
for float64 and measured in its chapter on gradient checking:

=========================================  =======================
error                                      verdict
=========================================  =======================
< :data:`CORRECT_BELOW` (1e-7)             correct
[1e-7, :data:`WRONG_FROM` (1e-5))          maybe a problem (kinks
                                           of ReLU, a too small h)
>= 1e-5                                    wrong
=========================================  =======================

Three routes, from the chapter's baseline to the fast check:

* :func:`loop_numerical_gradient`: the element-by-element loop, one entry at a time,
  :math:`2P` calls of ``f`` from Python.
* :func:`numerical_gradient`: the same :math:`2P` points, evaluated in chunks by
  ``torch.func.vmap`` when ``f`` is made of vmappable torch operations, and by the
  loop otherwise; :func:`gradient_check` wraps it.
* :func:`directional_check`: :math:`2k` evaluations along :math:`k` random
  directions, for parameter vectors too long for :math:`2P` evaluations.

Not done here: no complex step, no Richardson extrapolation, no Jacobians of
vector-valued functions (check each output, or a random projection of it), no
autograd (the whole point is a route independent of any derivative code).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from ._checks import argument, check_generator, check_positive, check_same_dtype_and_device, check_shape, check_tensor

Scalar = torch.Tensor | float
ScalarFunction = Callable[[torch.Tensor], Scalar]

CORRECT_BELOW = 1e-7
"""Relative errors below this (float64) mean the analytic gradient is correct."""

WRONG_FROM = 1e-5
"""Relative errors from this on (float64) mean the analytic gradient is wrong."""

CHUNK_BYTES = {"cpu": 2**25, "cuda": 2**28}
"""Default memory, per device type, for the perturbed copies of ``x`` that one ``vmap`` call evaluates:
32 MiB on the CPU; 256 MiB on a GPU, where larger chunks mean fewer, fuller kernel launches.  Other device
types use the CPU figure."""


# ----------------------------------------------------------------------------- validation


def _check_function(fn: str, f: object) -> None:
    if not callable(f):
        raise TypeError(f"{fn}: argument 'f' must be callable (a tensor -> scalar function), got {type(f).__name__}")




def _check_point(fn: str, x: object, h: object) -> torch.Tensor:
    check_tensor(fn, "x", x, floating=True)
    check_positive(fn, argument("h"), h)
    return x


def _check_analytic(fn: str, x: torch.Tensor, analytic_grad: object) -> torch.Tensor:
    check_tensor(fn, "analytic_grad", analytic_grad, floating=True)
    check_shape(fn, "analytic_grad", analytic_grad, tuple(x.shape), "the shape of x")
    check_same_dtype_and_device(fn, ("x", x), ("analytic_grad", analytic_grad))
    return analytic_grad


def _check_chunk_size(fn: str, chunk_size: object) -> None:
    if chunk_size is not None:
        check_positive(fn, argument("chunk_size"), chunk_size, integer=True)


def _scalar(fn: str, value: object) -> Scalar:
    """Return ``value`` if it is what ``f`` must return: a 0-d floating tensor or a Python real number."""
    if isinstance(value, torch.Tensor):
        if value.dim() != 0:
            raise ValueError(
                f"{fn}: argument 'f' must return a scalar (a 0-d tensor or a Python float), "
                f"got a tensor of shape {tuple(value.shape)}; reduce it to one number, e.g. with .sum()"
            )
        if not value.is_floating_point():
            raise TypeError(f"{fn}: argument 'f' must return a floating scalar, got a tensor of dtype {value.dtype}")
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    raise TypeError(
        f"{fn}: argument 'f' must return a scalar (a 0-d tensor or a Python float), got {type(value).__name__}"
    )


# ----------------------------------------------------------------------------- the metric


def relative_error(numerical: torch.Tensor, analytic: torch.Tensor) -> float:
    """Return ``‖numerical - analytic‖ / (‖numerical‖ + ‖analytic‖)``, and 0 when both are zero (the normalised difference).

    Euclidean norms over all entries, whatever the shape.  The value lies in [0, 1]:
    1 when one of the two is zero and the other is not, or when they point in opposite
    directions.  No tolerance is added to the denominator, so a zero gradient checked
    against a zero gradient gives exactly 0 and anything else is measured.
    """
    fn = "relative_error"
    check_tensor(fn, "numerical", numerical, floating=True)
    check_tensor(fn, "analytic", analytic, floating=True)
    check_shape(fn, "analytic", analytic, tuple(numerical.shape), "the shape of numerical")
    check_same_dtype_and_device(fn, ("numerical", numerical), ("analytic", analytic))
    numerator = torch.linalg.vector_norm(numerical - analytic)
    denominator = torch.linalg.vector_norm(numerical) + torch.linalg.vector_norm(analytic)
    if denominator == 0:
        return 0.0
    return float(numerator / denominator)


# ----------------------------------------------------------------------------- evaluating f at many points


def _batched_scalars(fn: str, values: object, n: int) -> torch.Tensor:
    """Check that vmap(f) returned one floating number per point, shape (n,), and return it."""
    if isinstance(values, torch.Tensor) and values.shape == (n,) and values.is_floating_point():
        return values
    # f ran but did not return one number per point: report what one call returned, as the loop would
    _scalar(fn, values[0] if isinstance(values, torch.Tensor) and values.dim() > 0 else values)
    raise AssertionError("unreachable: _scalar raises for every non-scalar output")  # pragma: no cover


def _try_vmap(fn: str, f: ScalarFunction, points: torch.Tensor) -> torch.Tensor | None:
    """``f`` at every row of ``points`` by one ``torch.func.vmap`` call, or ``None`` if vmap cannot run ``f``.

    Any exception inside the batched call means "not vmappable": vmap refuses ``.item()``,
    ``float(tensor)``, Python control flow on values, ``out=`` and other writes into batched
    tensors, and functions that return Python numbers.  A genuine error in ``f`` (or running
    out of memory) is raised again, with its own traceback, by the unbatched calls the
    caller then falls back to, which call ``f`` exactly as written.
    """
    try:
        values = torch.func.vmap(f)(points)
    except Exception:  # noqa: BLE001 -- see the docstring
        return None
    return _batched_scalars(fn, values, points.shape[0])


def _chunk_rows(x: torch.Tensor, chunk_size: int | None) -> int:
    """How many entries of ``x`` one vmap call perturbs: 2 copies of ``x`` per entry, within the memory budget."""
    if chunk_size is not None:
        return chunk_size
    budget = CHUNK_BYTES.get(x.device.type, CHUNK_BYTES["cpu"])
    return max(1, budget // (2 * x.numel() * x.element_size()))


def _perturbed_chunks(
    x_flat: torch.Tensor, x_plus: torch.Tensor, x_minus: torch.Tensor, k: int
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Yield ``(start, stop, points)`` for the entries [start, stop) of ``x``, k at a time.

    ``points`` has shape (2n, P), n = stop - start: row 2j is :math:`x + h e_{start+j}`, row
    2j + 1 is :math:`x - h e_{start+j}`.  The perturbed entries are copied from
    ``x_plus = x + h`` and ``x_minus = x - h``, the very numbers the element loop writes, so
    both routes evaluate ``f`` at bit-identical points.  One (2k, P) buffer serves every
    chunk: each writes its 2n entries and puts ``x``'s back once the caller is done with it,
    O(k) work per chunk instead of a fresh O(kP) copy (on the CPU, first touches of freshly
    allocated memory cost as much as evaluating ``f``).
    """
    P = x_flat.numel()
    points = x_flat.expand(2 * k, P).clone()  # (2k, P)
    rows = torch.arange(k, device=x_flat.device)  # (k,)
    for start in range(0, P, k):
        stop = min(start + k, P)
        n = stop - start
        plus, minus, cols = 2 * rows[:n], 2 * rows[:n] + 1, rows[:n] + start  # (n,) each
        points[plus, cols] = x_plus[start:stop]
        points[minus, cols] = x_minus[start:stop]
        yield start, stop, points[: 2 * n]
        points[plus, cols] = x_flat[start:stop]
        points[minus, cols] = x_flat[start:stop]


def _central_differences(
    fn: str, f: ScalarFunction, x: torch.Tensor, h: float, *, batched: bool, chunk_size: int | None
) -> torch.Tensor:
    """The gradient by central differences, shaped like ``x``: batched by vmap if asked and possible, else looped."""
    x = x.detach()
    shape = x.shape
    x_flat = x.reshape(-1)  # (P,)
    x_plus, x_minus = x_flat + h, x_flat - h  # (P,): computed once, in x's dtype, for both routes
    grad = torch.empty_like(x_flat)  # (P,)
    P = x_flat.numel()
    with torch.no_grad():  # f's graph, if it would record one, is not needed
        if batched and P > 0:
            f_row = lambda row: f(row.view(shape))  # noqa: E731 -- one row of a batch, in f's shape
            chunks = _perturbed_chunks(x_flat, x_plus, x_minus, min(_chunk_rows(x, chunk_size), P))
            start, stop, points = next(chunks)
            values = _try_vmap(fn, f_row, points)  # (2n,) or None
            if values is not None:  # vmappable: the first chunk is done, the others follow without a net
                grad[start:stop] = (values[0::2] - values[1::2]) / (2 * h)
                batched_f = torch.func.vmap(f_row)
                for start, stop, points in chunks:
                    values = _batched_scalars(fn, batched_f(points), points.shape[0])  # (2n,)
                    grad[start:stop] = (values[0::2] - values[1::2]) / (2 * h)
                return grad.view(shape)
        # the element loop: perturb one entry of a private copy, evaluate, the other way, evaluate, restore
        work = x_flat.clone()  # (P,)
        point = work.view(shape)
        for i in range(P):
            work[i] = x_plus[i]
            f_plus = _scalar(fn, f(point))
            work[i] = x_minus[i]
            f_minus = _scalar(fn, f(point))
            work[i] = x_flat[i]
            grad[i] = (f_plus - f_minus) / (2 * h)
    return grad.view(shape)


# ----------------------------------------------------------------------------- the public functions


def loop_numerical_gradient(f: ScalarFunction, x: torch.Tensor, h: float = 1e-7) -> torch.Tensor:
    """Central differences of ``f`` at ``x``, one entry at a time: the textbook element loop, in torch.

    For every entry i of ``x`` (any shape, visited in row-major order):

    .. math::

        \\hat g_i = \\frac{f(x + h e_i) - f(x - h e_i)}{2h},

    error :math:`\\tfrac{h^2}{6}\\partial_i^3 f + O(\\varepsilon |f| / h)` (see the module docstring).
    ``f`` maps a tensor shaped like ``x`` to a scalar (0-d tensor or Python float) and is
    called :math:`2P` times, :math:`P` = ``x.numel()``.  The result has the shape, dtype
    and device of ``x``.

    Two details differ from the loop as textbooks print it, neither in cost: it perturbs a private copy,
    so the caller's ``x`` is never written, and it restores each entry by copying the
    saved value back rather than by adding ``h`` again (in floating point
    :math:`x + h - 2h + h` need not round back to :math:`x`).  As in the textbook loop, ``f`` receives
    the working copy itself: it must not write into its argument, nor keep it past the call.
    """
    fn = "loop_numerical_gradient"
    _check_function(fn, f)
    x = _check_point(fn, x, h)
    return _central_differences(fn, f, x, h, batched=False, chunk_size=None)


def numerical_gradient(
    f: ScalarFunction, x: torch.Tensor, h: float = 1e-7, *, chunk_size: int | None = None
) -> torch.Tensor:
    """Central differences of ``f`` at ``x``, the :math:`2P` perturbed points evaluated in batches.

    The same numbers as :func:`loop_numerical_gradient` (same points, bit for bit, and the
    same formula), computed faster when ``f`` is vmappable: the points
    :math:`x \\pm h e_i` for ``chunk_size`` consecutive entries are stacked into one
    (2 * chunk_size, P) tensor and ``torch.func.vmap(f)`` evaluates them in one call, so a
    matrix product inside ``f`` becomes a batched matrix product instead of :math:`2P`
    small ones issued from Python.  The values agree with the loop's up to the rounding of
    ``f`` itself (a batched reduction may add in another order): a difference of about
    :math:`u|f|/h` in each entry, below the finite-difference error.

    When ``torch.func.vmap`` cannot run ``f`` on the first chunk -- ``f`` calls
    ``.item()``, ``float(tensor)`` or ``int(tensor)`` on a value that depends on ``x``,
    branches in Python on such a value, writes into ``out=`` buffers, or returns a Python
    number -- every entry is done by the element loop instead (the fallback is silent;
    the numbers are the same).  A network's pure loss, ``net.loss(x, y, params=unflatten(theta))``
    (see :func:`bplib.params.flatten`), is vmappable: it is made of the public forward functions of
    :mod:`bplib.functional`, which allocate their outputs, and whose argument checks read
    only shapes, dtypes and the labels, none of which depends on ``theta``.

    Parameters
    ----------
    f:
        Maps a tensor shaped like ``x`` to a scalar tensor (or a Python float); must not write
        into its argument (a row of a buffer that later chunks reuse, or the loop's working copy).
    x:
        The point, a floating tensor of any shape; never written.
    h:
        The step, > 0; see the module docstring for the choice (float64: 1e-7 to 1e-5).
    chunk_size:
        Entries perturbed per vmap call; by default as many as fit their
        2 * chunk_size copies of ``x`` in :data:`CHUNK_BYTES` (the memory ``f`` needs for
        its own intermediates, per point, comes on top: lower ``chunk_size`` if that is large).
    """
    fn = "numerical_gradient"
    _check_function(fn, f)
    x = _check_point(fn, x, h)
    _check_chunk_size(fn, chunk_size)
    return _central_differences(fn, f, x, h, batched=True, chunk_size=chunk_size)


def gradient_check(
    f: ScalarFunction,
    x: torch.Tensor,
    analytic_grad: torch.Tensor,
    h: float = 1e-7,
    *,
    chunk_size: int | None = None,
) -> float:
    """Relative error between the central-difference gradient of ``f`` at ``x`` and ``analytic_grad``.

    Returns :func:`relative_error` of :func:`numerical_gradient` ``(f, x, h)`` and
    ``analytic_grad``: :math:`\\lVert \\hat g - g \\rVert / (\\lVert \\hat g \\rVert + \\lVert g \\rVert)`,
    0 when both are zero.  In float64, below :data:`CORRECT_BELOW` (1e-7) the gradient is
    correct, from :data:`WRONG_FROM` (1e-5) on it is wrong (the table in the module
    docstring).  Costs :math:`2P` evaluations of ``f``; for large :math:`P` use
    :func:`directional_check`, and this function on a small network, entry by entry, to
    find *which* gradient is wrong.

    ``analytic_grad`` must have the shape, dtype and device of ``x``.
    """
    fn = "gradient_check"
    _check_function(fn, f)
    x = _check_point(fn, x, h)
    analytic_grad = _check_analytic(fn, x, analytic_grad)
    _check_chunk_size(fn, chunk_size)
    numerical = _central_differences(fn, f, x, h, batched=True, chunk_size=chunk_size)
    return relative_error(numerical, analytic_grad)


def directional_check(
    f: ScalarFunction,
    x: torch.Tensor,
    analytic_grad: torch.Tensor,
    *,
    directions: int = 8,
    h: float = 1e-6,
    generator: torch.Generator | None = None,
) -> float:
    """Compare ``analytic_grad`` with ``f`` along ``directions`` random unit directions: 2k evaluations, not 2P.

    Draw :math:`k` = ``directions`` vectors :math:`d_j` with independent standard normal
    entries (shape of ``x``) and normalise them, :math:`\\lVert d_j \\rVert_2 = 1`; their
    directions are then uniform on the unit sphere.  Along each, the central difference
    of the directional derivative and the analytic one are

    .. math::

        D^{\\text{num}}_j = \\frac{f(x + h d_j) - f(x - h d_j)}{2h}
                        = \\nabla f(x) \\cdot d_j + \\frac{h^2}{6} D^3 f(x)[d_j, d_j, d_j] + O(h^4),
        \\qquad
        D^{\\text{ana}}_j = g \\cdot d_j,

    and the returned error is the normalised difference over the k directions,

    .. math::

        \\operatorname{err} = \\frac{\\lVert D^{\\text{num}} - D^{\\text{ana}} \\rVert_2}
                                {\\lVert D^{\\text{num}} \\rVert_2 + \\lVert D^{\\text{ana}} \\rVert_2}
        \\quad (0 \\text{ when both are } 0),

    read with the same thresholds as :func:`gradient_check`.

    Why it catches a wrong gradient: if :math:`g' = g + e` with :math:`e \\ne 0`, then
    :math:`D^{\\text{ana}}_j - \\nabla f \\cdot d_j = e \\cdot d_j`, which vanishes only on the
    hyperplane :math:`e^\\perp`, a set of probability 0 for a random direction.  More
    than non-zero, it is of the right size: :math:`E[(e \\cdot d)^2] = \\lVert e \\rVert^2 / P`
    and :math:`E[(g \\cdot d)^2] = \\lVert g \\rVert^2 / P`, so the error is about
    :math:`\\lVert e \\rVert / (2\\lVert g \\rVert)`: a gradient 1 % off (:math:`g' = 1.01\\,g`, or
    1 % noise) gives about 5e-3, where a correct one gives the finite-difference noise,
    1e-8 or so in float64.  A few directions guard against one unlucky draw.

    When it cannot: an error orthogonal to every sampled direction (improbable, unless
    the error lies in a tiny subspace and few directions are drawn: an error in one
    entry of size :math:`\\eta |g_i|` moves the error by only about
    :math:`\\eta |g_i| / (2\\lVert g \\rVert)`), and any error whose relative size is below
    the finite-difference noise, :math:`h^2|D^3 f|/6 + \\varepsilon |f| / h` divided by
    :math:`|\\nabla f \\cdot d| \\approx \\lVert g \\rVert/\\sqrt P`, which grows with :math:`P`.
    It says *that* a gradient is wrong, not *where*: :func:`gradient_check` on a small
    network does that.

    ``generator`` is the only source of randomness: the directions are drawn on its
    device and moved to ``x``'s; without one, a fresh CPU generator seeded with 0 is used,
    so the check is deterministic either way.  ``f`` is evaluated at the 2k points
    :math:`x \\pm h d_j` by one vmap call, or one by one when ``f`` is not vmappable
    (see :func:`numerical_gradient`).
    """
    fn = "directional_check"
    _check_function(fn, f)
    x = _check_point(fn, x, h)
    analytic_grad = _check_analytic(fn, x, analytic_grad)
    check_positive(fn, argument("directions"), directions, integer=True)
    if check_generator(fn, generator) is None:
        generator = torch.Generator().manual_seed(0)

    x = x.detach()
    if x.numel() == 0:  # no direction to draw; both derivatives are empty sums
        return 0.0
    d = torch.randn(directions, x.numel(), generator=generator, dtype=x.dtype, device=generator.device)
    d = (d / torch.linalg.vector_norm(d, dim=1, keepdim=True)).to(x.device)  # (k, P), unit rows
    x_flat = x.reshape(-1)  # (P,)
    points = torch.cat([x_flat + h * d, x_flat - h * d]).view(2 * directions, *x.shape)  # (2k, *x.shape)
    with torch.no_grad():
        values = _try_vmap(fn, f, points)  # (2k,)
        if values is None:  # not vmappable: one call per point, the differences taken in float64
            values = torch.tensor([float(_scalar(fn, f(point))) for point in points], dtype=torch.float64)
    numerical = ((values[:directions] - values[directions:]) / (2 * h)).to(dtype=x.dtype, device=x.device)  # (k,)
    analytic = d @ analytic_grad.detach().reshape(-1)  # (k,)
    return relative_error(numerical, analytic)
