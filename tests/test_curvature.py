"""bplib.curvature: difference quotients of gradients == Hessian products of torch.autograd; power iteration ==
torch.linalg.eigh; every error path is reported."""

import math

import pytest
import torch

import bplib
from bplib.curvature import hessian_vector_product, power_iteration

F64 = torch.float64
EPS = torch.finfo(F64).eps


def symmetric_matrix(eigenvalues, generator):
    """Q diag(eigenvalues) Q^T with a random orthogonal Q (from a QR factorisation), and Q."""
    n = len(eigenvalues)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=F64))
    return Q @ torch.diag(torch.tensor(eigenvalues, dtype=F64)) @ Q.T, Q


def tanh_network_loss(generator):
    """The loss of a small tanh MLP with softmax-CE as a function of one parameter vector, its point and its gradient."""
    net = bplib.MLP([5, 4, 3], "tanh", "softmax_ce", dtype=F64, generator=generator)
    x = torch.randn(7, 5, generator=generator, dtype=F64)
    y = torch.randint(3, (7,), generator=generator)
    theta, unflatten = bplib.flatten(net.parameters)

    def loss(t):
        return net.loss(x, y, params=unflatten(t))

    def grad(t):
        return bplib.flatten(net.reference_loss_and_grads(x, y, params=unflatten(t))[1])[0]

    return loss, grad, theta


# ----------------------------------------------------------------------------- Hessian-vector products


def test_hvp_of_a_quadratic_is_exact_up_to_rounding():
    generator = torch.Generator().manual_seed(0)
    A, _ = symmetric_matrix([3.0, -1.0, 0.5, 2.0, 7.0], generator)
    b = torch.randn(5, generator=generator, dtype=F64)
    theta = torch.randn(5, generator=generator, dtype=F64)
    v = torch.randn(5, generator=generator, dtype=F64)
    hv = hessian_vector_product(lambda t: A @ t + b, theta, v, h=1e-3)
    # the gradient is affine, so the quotient has no truncation error; each gradient entry is rounded to a few
    # ulps of |A||t| + |b| (about 10), which the quotient divides by 2h = 2e-3
    bound = 16 * EPS * 10 / 2e-3
    torch.testing.assert_close(hv, A @ v, rtol=0.0, atol=bound)


def test_hvp_of_a_network_loss_matches_autograd():
    loss, grad, theta = tanh_network_loss(torch.Generator().manual_seed(1))
    v = torch.randn(theta.shape, generator=torch.Generator().manual_seed(2), dtype=F64)
    v = v / v.norm()
    _, expected = torch.autograd.functional.hvp(loss, theta, v)
    actual = hessian_vector_product(grad, theta, v)
    # h = 1e-5: truncation h^2/6 |D^3 g| and rounding eps |g| / h are both near 1e-11 for this loss
    torch.testing.assert_close(actual, expected, rtol=0.0, atol=1e-8 * expected.norm().item())


def test_hvp_error_falls_like_h_squared():
    loss, grad, theta = tanh_network_loss(torch.Generator().manual_seed(3))
    v = torch.randn(theta.shape, generator=torch.Generator().manual_seed(4), dtype=F64)
    v = v / v.norm()
    _, exact = torch.autograd.functional.hvp(loss, theta, v)
    errors = [(hessian_vector_product(grad, theta, v, h=h) - exact).norm().item() for h in (1e-2, 5e-3)]
    assert 3.0 < errors[0] / errors[1] < 5.0, f"halving h should divide the truncation error by 4, got {errors}"


def test_hvp_does_not_write_into_its_arguments():
    loss, grad, theta = tanh_network_loss(torch.Generator().manual_seed(5))
    v = torch.ones_like(theta)
    theta_before, v_before = theta.clone(), v.clone()
    hessian_vector_product(grad, theta, v)
    assert torch.equal(theta, theta_before) and torch.equal(v, v_before)


# ----------------------------------------------------------------------------- power iteration


@pytest.mark.parametrize("eigenvalues", [[5.0, 2.0, 1.0, -0.5], [-4.0, 1.0, 2.0, 0.1], [3.0, 3.0, 1.0, 0.0]])
def test_power_iteration_finds_the_eigenvalue_of_largest_modulus(eigenvalues):
    generator = torch.Generator().manual_seed(6)
    H, _ = symmetric_matrix(eigenvalues, generator)
    values, vectors = torch.linalg.eigh(H)
    top = values.abs().argmax()
    estimate, vector = power_iteration(
        lambda v: H @ v, torch.randn(4, generator=generator, dtype=F64), iterations=500, rtol=0.0
    )
    # rtol=0 stops when two estimates are equal to the last bit; the estimate's error is the square of the
    # vector's, so the vector is then accurate to about sqrt(u) = 1.5e-8 (times |lambda_1| = 5 in the residual)
    torch.testing.assert_close(estimate, values[top], rtol=1e-12, atol=0.0)
    torch.testing.assert_close(H @ vector, estimate * vector, rtol=0.0, atol=1e-6)
    eigenspace = vectors[:, (values - values[top]).abs() < 1e-10]  # two columns for the double eigenvalue 3
    assert (eigenspace.T @ vector).norm().item() == pytest.approx(1.0, abs=1e-12), "a unit vector of the eigenspace"
    assert vector.norm().item() == pytest.approx(1.0, abs=1e-14)


def test_power_iteration_stops_when_the_estimate_settles_and_errs_low():
    generator = torch.Generator().manual_seed(7)
    H, _ = symmetric_matrix([2.0, 1.9, 1.0, 0.5, 0.1], generator)
    calls = []

    def matvec(v):
        calls.append(1)
        return H @ v

    estimate, _ = power_iteration(matvec, torch.randn(5, generator=generator, dtype=F64), iterations=1000, rtol=1e-3)
    assert 1 < len(calls) < 1000, "a ratio 0.95 settles to 1e-3 within far fewer than 1000 steps"
    assert 1.0 < estimate.item() <= 2.0 + 1e-14, "a Rayleigh quotient never exceeds the largest eigenvalue"
    for iterations in range(1, 6):
        early, _ = power_iteration(lambda v: H @ v, torch.ones(5, dtype=F64), iterations=iterations)
        assert abs(early.item()) <= 2.0 + 1e-14, "stopped early, the estimate errs low"


def test_power_iteration_on_a_network_hessian_matches_eigvalsh():
    loss, grad, theta = tanh_network_loss(torch.Generator().manual_seed(8))
    hessian = torch.autograd.functional.hessian(loss, theta)
    values = torch.linalg.eigvalsh(hessian)
    top = values[values.abs().argmax()]
    estimate, _ = power_iteration(
        lambda v: hessian_vector_product(grad, theta, v),
        torch.randn(theta.shape, generator=torch.Generator().manual_seed(9), dtype=F64),
        iterations=2000,
        rtol=1e-12,
    )
    # each product carries an error near 1e-11 |H| (test above); the Rayleigh quotient inherits it
    torch.testing.assert_close(estimate, top, rtol=1e-7, atol=0.0)


# ----------------------------------------------------------------------------- error messages


def test_hvp_errors():
    theta = torch.zeros(3, dtype=F64)
    grad = lambda t: 2 * t  # noqa: E731
    with pytest.raises(TypeError, match=r"hessian_vector_product: argument 'grad' must be callable .* got int"):
        hessian_vector_product(3, theta, theta)
    with pytest.raises(TypeError, match=r"hessian_vector_product: argument 'theta' must be a torch.Tensor, got list"):
        hessian_vector_product(grad, [0.0], theta)
    with pytest.raises(TypeError, match=r"hessian_vector_product: argument 'theta' must have a floating dtype"):
        hessian_vector_product(grad, torch.zeros(3, dtype=torch.int64), theta)
    with pytest.raises(ValueError, match=r"hessian_vector_product: argument 'v' must have shape \(3,\) .* got \(4,\)"):
        hessian_vector_product(grad, theta, torch.zeros(4, dtype=F64))
    with pytest.raises(TypeError, match=r"hessian_vector_product: argument 'v' has dtype torch.float32 but 'theta'"):
        hessian_vector_product(grad, theta, torch.zeros(3))
    with pytest.raises(ValueError, match=r"hessian_vector_product: argument 'h' must be a finite number > 0, got 0"):
        hessian_vector_product(grad, theta, theta, h=0)
    with pytest.raises(TypeError, match=r"hessian_vector_product: argument 'h' must be a Python number, got str"):
        hessian_vector_product(grad, theta, theta, h="1e-5")
    with pytest.raises(TypeError, match=r"hessian_vector_product: argument 'grad' must return a tensor, got float"):
        hessian_vector_product(lambda t: 1.0, theta, theta)
    with pytest.raises(ValueError, match=r"argument 'grad' must return a tensor of the shape of its input \(3,\), got \(\)"):
        hessian_vector_product(lambda t: t.sum(), theta, theta)
    with pytest.raises(
        TypeError,
        match=r"hessian_vector_product: argument 'grad' must return a tensor of the dtype and device of its input "
        r"\(torch.float64, cpu\), got torch.float32, cpu",
    ):
        hessian_vector_product(lambda t: t.float(), theta, theta)


def test_power_iteration_errors():
    v0 = torch.ones(3, dtype=F64)
    identity = lambda v: v  # noqa: E731
    with pytest.raises(TypeError, match=r"power_iteration: argument 'matvec' must be callable .* got Tensor"):
        power_iteration(v0, v0)
    with pytest.raises(TypeError, match=r"power_iteration: argument 'v0' must be a torch.Tensor, got list"):
        power_iteration(identity, [1.0])
    with pytest.raises(ValueError, match=r"power_iteration: argument 'iterations' must be an int >= 1, got 0"):
        power_iteration(identity, v0, iterations=0)
    with pytest.raises(TypeError, match=r"power_iteration: argument 'iterations' must be an int, got float"):
        power_iteration(identity, v0, iterations=10.0)
    with pytest.raises(ValueError, match=r"power_iteration: argument 'rtol' must be a finite number >= 0, got -1"):
        power_iteration(identity, v0, rtol=-1)
    with pytest.raises(TypeError, match=r"power_iteration: argument 'rtol' must be a Python number, got NoneType"):
        power_iteration(identity, v0, rtol=None)
    with pytest.raises(ValueError, match=r"power_iteration: argument 'v0' must have a nonzero entry, got a zero tensor"):
        power_iteration(identity, torch.zeros(3, dtype=F64))
    with pytest.raises(ValueError, match=r"power_iteration: argument 'v0' must be finite, got a tensor with an inf or NaN"):
        power_iteration(identity, torch.tensor([1.0, math.nan, 0.0], dtype=F64))
    with pytest.raises(ValueError, match=r"power_iteration: argument 'matvec' mapped an iterate to zero"):
        power_iteration(lambda v: torch.zeros_like(v), v0)
    with pytest.raises(ValueError, match=r"power_iteration: argument 'matvec' must return finite vectors"):
        power_iteration(lambda v: v / 0, v0)
    with pytest.raises(ValueError, match=r"power_iteration: argument 'matvec' must return a tensor of the shape"):
        power_iteration(lambda v: v[:2], v0)
