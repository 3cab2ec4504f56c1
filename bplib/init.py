r"""Weight initialisers that keep the variance of activations and gradients steady.

For a weight matrix of shape (n_out, n_in), :math:`n_\text{in}` is the fan-in
and :math:`n_\text{out}` the fan-out.

=====================  =============================================  ==================================
name                   target variance                                paper
=====================  =============================================  ==================================
Xavier / Glorot        :math:`2 / (n_\text{in} + n_\text{out})`       Glorot & Bengio (2010)
He / Kaiming           :math:`2 / n_\text{in}`                        He et al. (2015)
=====================  =============================================  ==================================

The *uniform* variants draw from :math:`U(-r, r)` with :math:`r = \sqrt{3\,\mathrm{Var}}`
(the variance of :math:`U(-r, r)` is :math:`r^2/3`); the *normal* variants from
:math:`N(0, \mathrm{Var})`.  Randomness comes only from the ``generator`` given.
"""

from __future__ import annotations

import math

import torch

from ._checks import argument, check_choice, check_floating_dtype, check_generator, check_real

_DISTRIBUTIONS = ("normal", "uniform")


def _fans(fn: str, shape: tuple[int, int]) -> tuple[int, int]:
    if len(shape) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
        raise ValueError(f"{fn}: argument 'shape' must be (n_out, n_in) with positive integers, got {shape!r}")
    n_out, n_in = shape
    return n_in, n_out


def _check_draw(fn: str, distribution: str, generator: object, dtype: object) -> None:
    """Check the arguments every initialiser shares: the distribution, the generator and the dtype."""
    check_choice(fn, "distribution", distribution, _DISTRIBUTIONS)
    check_generator(fn, generator)
    check_floating_dtype(fn, dtype)


def _draw(
    variance: float,
    shape: tuple[int, int],
    distribution: str,
    generator: torch.Generator | None,
    dtype: torch.dtype,
    device: torch.device | str | None,
) -> torch.Tensor:
    w = torch.empty(shape, dtype=dtype, device=device)
    if distribution == "normal":
        return w.normal_(0.0, math.sqrt(variance), generator=generator)
    bound = math.sqrt(3.0 * variance)
    return w.uniform_(-bound, bound, generator=generator)


def xavier(
    shape: tuple[int, int],
    *,
    distribution: str = "uniform",
    gain: float = 1.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Glorot/Xavier initialisation: ``Var[W] = gain**2 * 2 / (n_in + n_out)``, ``gain >= 0``.

    The rule of ``torch.nn.init.xavier_uniform_`` and ``xavier_normal_`` (same ``gain``), for a
    ``shape`` of ``(n_out, n_in)`` as torch's weights have.
    """
    n_in, n_out = _fans("xavier", shape)
    _check_draw("xavier", distribution, generator, dtype)
    gain = check_real("xavier", argument("gain"), gain, 0.0, why="the factor on the standard deviation")
    return _draw(gain**2 * 2.0 / (n_in + n_out), shape, distribution, generator, dtype, device)


def he(
    shape: tuple[int, int],
    *,
    distribution: str = "normal",
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """He/Kaiming initialisation for ReLU layers: ``Var[W] = 2 / n_in``.

    The rule of ``torch.nn.init.kaiming_normal_`` and ``kaiming_uniform_`` with ``mode="fan_in"`` and
    ``nonlinearity="relu"`` (gain :math:`\\sqrt 2`), for a ``shape`` of ``(n_out, n_in)`` as torch's weights have.
    """
    n_in, _ = _fans("he", shape)
    _check_draw("he", distribution, generator, dtype)
    return _draw(2.0 / n_in, shape, distribution, generator, dtype, device)
