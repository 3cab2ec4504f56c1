"""bplib.ntk: the analytic kernels against closed forms, quadrature and Monte Carlo; the empirical NTK against
torch.func's Jacobian contraction; the linearised dynamics against the ODE they solve.

Monte Carlo tolerances: an estimate is the mean of S independent draws, its standard error is the sample
standard deviation over sqrt(S), and an entry passes within Z_MC = 5 standard errors.  For a correct
formula a normal deviate exceeds 5 with probability 6e-7; the generator seeds are fixed, so the tests are
deterministic, and the margin says how surely a correct implementation passes on other seeds.
"""

import math

import numpy as np
import pytest
import sympy as sp
import torch

import bplib
from bplib.ntk import analytic_kernels, empirical_ntk, linearized_predictions
from bplib.testing import assert_close

F64 = torch.float64
Z_MC = 5.0


def assert_within_standard_errors(samples, expected, *, claim):
    """The mean of samples (S, ...) equals expected within Z_MC standard errors of the mean, entry by entry."""
    mean = samples.mean(dim=0)
    standard_error = samples.std(dim=0) / math.sqrt(samples.shape[0])
    z = ((mean - expected) / standard_error).abs().max().item()
    assert z <= Z_MC, f"{claim}: the estimate is {z:.1f} standard errors from the formula (allowed {Z_MC})"


def inputs(n, d, generator, dtype=F64):
    return torch.randn(n, d, generator=generator, dtype=dtype)


# ------------------------------------------------------------------------ closed forms on the diagonal


@pytest.mark.parametrize("depth", range(6))
def test_relu_diagonal_at_unit_weight_variance(depth, generator):
    # K^1 = q = |x|^2/d; K^{l+1}(x, x) = K^l/2, so K^{l+1} = q 2^{-l}; Theta^{l+1} = K^{l+1} + Theta^l/2.
    # With Theta^l = c_l q 2^{-(l-1)}: c_1 = 1 and c_{l+1} = c_l + 1, so Theta^{L+1}(x, x) = (L + 1) 2^{-L} q.
    x = inputs(6, 7, generator)
    q = (x * x).sum(dim=1) / 7
    nngp, ntk = analytic_kernels(x, depth=depth)
    assert_close(nngp.diagonal(), q * 2.0**-depth, claim="ReLU NNGP: K(x, x) = 2^{-L} |x|^2/d", against="closed form")
    assert_close(
        ntk.diagonal(), (depth + 1) * 2.0**-depth * q,
        claim="ReLU NTK: Theta(x, x) = (L + 1) 2^{-L} |x|^2/d at sigma_w^2 = 1, sigma_b^2 = 0", against="closed form",
    )  # fmt: skip


def diagonal_recursion(q, depth, activation, sigma_w2, sigma_b2):
    """K(x, x) and Theta(x, x) from K^1(x, x) = q, by the recursion at correlation 1, in Python floats."""
    k = theta = q
    for _ in range(depth):
        if activation == "relu":
            value, slope = k / 2, 0.5
        else:
            value, slope = 2 / math.pi * math.asin(2 * k / (1 + 2 * k)), 4 / math.pi / math.sqrt(1 + 4 * k)
        k = sigma_w2 * value + sigma_b2
        theta = k + sigma_w2 * slope * theta
    return k, theta


@pytest.mark.parametrize("activation", ["relu", "erf"])
@pytest.mark.parametrize("depth", [0, 1, 3, 8])
@pytest.mark.parametrize("sigma_w2, sigma_b2", [(1.0, 0.0), (2.0, 0.1), (0.7, 1.3)])
def test_diagonal_equals_its_closed_form_to_rounding(activation, depth, sigma_w2, sigma_b2, generator):
    x = inputs(5, 4, generator)
    x2 = torch.cat([x[3:], inputs(2, 4, generator), x[:3]])  # the rows of x again, among others
    nngp, ntk = analytic_kernels(x, depth=depth, activation=activation, sigma_w2=sigma_w2, sigma_b2=sigma_b2)
    cross_nngp, cross_ntk = analytic_kernels(x, x2, depth=depth, activation=activation, sigma_w2=sigma_w2,
                                             sigma_b2=sigma_b2)  # fmt: skip
    for i, row in enumerate(x):
        q = sigma_w2 * float(row @ row) / 4 + sigma_b2
        k, theta = diagonal_recursion(q, depth, activation, sigma_w2, sigma_b2)
        expected = torch.tensor([k, theta], dtype=F64)
        j = (i - 3) % 5 if i >= 3 else i + 4  # where row i of x sits in x2
        for got, where in ((torch.stack([nngp[i, i], ntk[i, i]]), "x2=None"),
                           (torch.stack([cross_nngp[i, j], cross_ntk[i, j]]), "a row of x2 equal to x")):  # fmt: skip
            assert not torch.isnan(got).any()
            torch.testing.assert_close(got, expected, rtol=1e-12, atol=0,
                                       msg=lambda m: f"{activation} K(x, x), Theta(x, x) ({where}), depth {depth}: {m}")  # fmt: skip


def test_depth_zero_is_the_linear_model(generator):
    x1, x2 = inputs(4, 3, generator), inputs(5, 3, generator)
    nngp, ntk = analytic_kernels(x1, x2, depth=0, sigma_w2=1.7, sigma_b2=0.4)
    assert_close(nngp, 1.7 * x1 @ x2.T / 3 + 0.4, claim="depth 0: K = sigma_w^2 x.x'/d + sigma_b^2", against="closed form")
    assert_close(ntk, nngp, claim="depth 0: Theta = K", against="closed form")


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_symmetry_and_the_two_ways_of_asking_for_it(activation, generator):
    x = inputs(300, 6, generator)  # several row blocks of the blocked computation
    nngp, ntk = analytic_kernels(x, depth=3, activation=activation, sigma_b2=0.2)
    assert torch.equal(nngp, nngp.T) and torch.equal(ntk, ntk.T), "x2=None gives exactly symmetric kernels"
    nngp2, ntk2 = analytic_kernels(x, x.clone(), depth=3, activation=activation, sigma_b2=0.2)
    assert_close(nngp2, nngp, claim="K(x1, x1 given again) equals K(x1)", against="second route")
    assert_close(ntk2, ntk, claim="Theta(x1, x1 given again) equals Theta(x1)", against="second route")
    blocks = [analytic_kernels(x[i : i + 7], x, depth=3, activation=activation, sigma_b2=0.2)[1] for i in range(0, 300, 7)]
    assert_close(torch.cat(blocks), ntk, claim="Theta computed by rows of x1 equals Theta at once", against="second route")


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_equal_rows_of_x1_alone_have_correlation_one(activation, generator):
    # With x2=None, two equal rows of x1 are a pair of equal inputs as much as a row and itself: their kernels
    # equal the diagonal's closed form to rounding, not to the sqrt(u) that arccos(1 - u) would give.
    x = inputs(5, 3, generator)
    x = torch.cat([x, x[[3, 0]], torch.zeros(1, 3, dtype=F64), x[:2]])  # rows 5, 6 and 8, 9 repeat 3, 0, 0, 1
    nngp, ntk = analytic_kernels(x, depth=3, activation=activation, sigma_w2=1.3, sigma_b2=0.2)
    assert torch.equal(nngp, nngp.T) and torch.equal(ntk, ntk.T)
    for i, j in [(5, 3), (6, 0), (8, 0), (8, 6), (9, 1)]:
        for kernel, name in ((nngp, "K"), (ntk, "Theta")):
            torch.testing.assert_close(kernel[i, j], kernel[j, j], rtol=1e-14, atol=0,
                                       msg=lambda m: f"{activation} {name} of rows {i} = {j} of x1: {m}")  # fmt: skip
    nngp2, ntk2 = analytic_kernels(x, x.clone(), depth=3, activation=activation, sigma_w2=1.3, sigma_b2=0.2)
    torch.testing.assert_close(ntk, ntk2, rtol=1e-14, atol=0)
    torch.testing.assert_close(nngp, nngp2, rtol=1e-14, atol=0)


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_parallel_antiparallel_and_zero_inputs_give_no_nan(activation):
    x = torch.tensor([[1.0, 2.0, -0.5], [3.0, 6.0, -1.5], [-1.0, -2.0, 0.5], [0.0, 0.0, 0.0]], dtype=F64)
    nngp, ntk = analytic_kernels(x, x[[1, 0, 2, 3]], depth=4, activation=activation)
    assert torch.isfinite(nngp).all() and torch.isfinite(ntk).all()
    if activation == "relu":  # x and 3x have correlation 1 at every layer, and relu is homogeneous of degree 1
        reference, reference_ntk = analytic_kernels(x[:1], depth=4)
        # distinct inputs: their correlation is computed, 1 - O(u), and arccos turns that into O(sqrt(u)) = 1e-8
        # in the derivative term (the documented limit); 100 sqrt(u) leaves room for the four layers
        root_u = math.sqrt(torch.finfo(F64).eps / 2)
        torch.testing.assert_close(nngp[0, 0], 3 * reference[0, 0], rtol=100 * root_u, atol=0)
        torch.testing.assert_close(ntk[0, 0], 3 * reference_ntk[0, 0], rtol=100 * root_u, atol=0)
        # correlation -1: the two ReLUs are never on together, K = Theta = 0 at depth 1 (to O(sqrt(u)) again,
        # arccos being as steep at -1 as at 1)
        one_layer = analytic_kernels(x[:1], -x[:1], depth=1)
        scale = analytic_kernels(x[:1], depth=1)[1].item()
        assert all(k.abs().item() < 100 * root_u * scale for k in one_layer), "K(x, -x) = Theta(x, -x) = 0 at depth 1"
        assert (nngp[3] == 0).all() and (ntk[3] == 0).all(), "a zero input with sigma_b = 0 never activates a unit"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_dtypes(dtype, generator):
    x = inputs(6, 3, generator)
    nngp, ntk = analytic_kernels(x, depth=2, activation="erf", sigma_b2=0.1)
    low = analytic_kernels(x.to(dtype), depth=2, activation="erf", sigma_b2=0.1)
    assert all(k.dtype == dtype for k in low)
    rounding = 0.02 if dtype is not torch.float32 else 1e-5  # the inputs' own rounding, 2^-8 for bfloat16
    torch.testing.assert_close(low[1].to(F64), ntk, rtol=rounding, atol=rounding)
    integers = torch.tensor([[1, 0, 2], [0, 3, -1]])
    k_int, theta_int = analytic_kernels(integers, depth=2)
    assert k_int.dtype == F64 and theta_int.dtype == F64, "integer inputs are read as float64"
    assert_close(theta_int, analytic_kernels(integers.to(F64), depth=2)[1], claim="integer inputs equal their float64 values")


@pytest.mark.cuda
def test_on_the_gpu_equals_the_cpu(generator):
    x1, x2 = inputs(40, 5, generator), inputs(30, 5, generator)
    for activation in ("relu", "erf"):
        gpu = analytic_kernels(x1.cuda(), x2.cuda(), depth=3, activation=activation, sigma_b2=0.3)
        cpu = analytic_kernels(x1, x2, depth=3, activation=activation, sigma_b2=0.3)
        for g_, c_ in zip(gpu, cpu):
            assert g_.device.type == "cuda"
            assert_close(g_.cpu(), c_, claim=f"{activation} kernels on the GPU equal the CPU's", against="second route")
    net = bplib.MLP([5, 64, 64, 1], "relu", "mse", dtype=F64, generator=generator, parameterization="ntk")
    expected = empirical_ntk(net, x1, x2)
    net.weights, net.biases = [w.cuda() for w in net.weights], [b.cuda() for b in net.biases]
    assert_close(empirical_ntk(net, x1.cuda(), x2.cuda()).cpu(), expected, claim="empirical NTK on the GPU", against="second route")


# ------------------------------------------------------------------- the Gaussian expectations, numerically


def covariance_inputs(a, b, c):
    """Two inputs in R^2 whose K^1 at sigma_w^2 = 2, sigma_b^2 = 0 (x.x'/d * 2 = x.x') is [[a, c], [c, b]]."""
    first = math.sqrt(a)
    second = c / first
    return torch.tensor([[first, 0.0], [second, math.sqrt(b - second**2)]], dtype=F64)


def expectations_from_kernels(a, b, c, activation):
    """E[phi(u)phi(v)] and E[phi'(u)phi'(v)] read off the depth-1 kernels: K = 2E[phi phi], Theta = K + 2E[phi' phi'] K^1."""
    nngp, ntk = analytic_kernels(covariance_inputs(a, b, c), depth=1, activation=activation, sigma_w2=2.0)
    return nngp[0, 1] / 2, (ntk[0, 1] - nngp[0, 1]) / (2 * c)


COVARIANCES = [(1.0, 1.0, 0.5), (0.3, 2.0, -0.6), (2.5, 0.8, 1.2), (1.0, 4.0, 1.999), (0.5, 0.5, 0.05)]


@pytest.mark.parametrize("a, b, c", COVARIANCES)
def test_erf_expectations_equal_gauss_hermite_quadrature(a, b, c):
    # (u, v) = C (xi_1, xi_2) with C the Cholesky factor of the covariance and xi standard normal:
    # E[g(u, v)] = (1/pi) sum_ij w_i w_j g(C (sqrt2 t_i, sqrt2 t_j)) with the Gauss-Hermite nodes t and weights w.
    # erf is entire, so the rule converges geometrically, the slower the more elongated the covariance: at
    # (1, 4, 1.999) the derivative term is off by 3e-5 with 60 nodes, 2e-10 with 120 and 1e-15 with 200.
    nodes, weights = np.polynomial.hermite.hermgauss(200)
    cholesky = np.linalg.cholesky(np.array([[a, c], [c, b]]))
    xi = np.sqrt(2) * np.stack(np.meshgrid(nodes, nodes, indexing="ij")).reshape(2, -1)
    u, v = cholesky @ xi
    w = np.outer(weights, weights).reshape(-1) / np.pi
    erf = np.vectorize(math.erf)
    derivative = lambda z: 2 / math.sqrt(math.pi) * np.exp(-z * z)  # noqa: E731
    expected = torch.tensor([w @ (erf(u) * erf(v)), w @ (derivative(u) * derivative(v))], dtype=F64)
    got = torch.stack(expectations_from_kernels(a, b, c, "erf"))
    torch.testing.assert_close(got, expected, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("a, b, c", COVARIANCES)
def test_relu_expectations_equal_monte_carlo(a, b, c):
    generator = torch.Generator().manual_seed(17)
    S = 400_000
    cholesky = torch.linalg.cholesky(torch.tensor([[a, c], [c, b]], dtype=F64))
    u, v = cholesky @ torch.randn(2, S, generator=generator, dtype=F64)
    samples = torch.stack([torch.relu(u) * torch.relu(v), ((u > 0) & (v > 0)).to(F64)], dim=1)  # (S, 2)
    expected = torch.stack(expectations_from_kernels(a, b, c, "relu"))
    assert_within_standard_errors(samples, expected, claim="ReLU's E[phi phi], E[phi' phi'] against sampled (u, v)")


# -------------------------------------------------------------------- against wide random networks


def relu_network_kernels(x, width, depth, sigma_w2, sigma_b2, generator):
    """One bplib network's empirical NTK and its NNGP estimate sigma_w^2 a^L.a'^L/n + sigma_b^2 (the readout averaged out)."""
    net = bplib.MLP([x.shape[1], *[width] * depth, 1], "relu", "mse", dtype=F64, generator=generator,
                    parameterization="ntk", sigma_w2=sigma_w2, sigma_b2=sigma_b2)  # fmt: skip
    _, caches = net.forward_with_caches(x)
    last_hidden = caches[-1][0][0]  # the input of the readout layer, (n, width)
    return sigma_w2 * last_hidden @ last_hidden.T / width + sigma_b2, empirical_ntk(net, x)


@pytest.mark.parametrize("depth, width, seeds", [(1, 2048, 48), (2, 512, 24)])
@pytest.mark.parametrize("sigma_w2, sigma_b2", [(1.0, 0.0), (2.0, 0.3)])
def test_relu_kernels_equal_the_mean_over_wide_networks(depth, width, seeds, sigma_w2, sigma_b2):
    # With one hidden layer both estimates are unbiased at every width: z^1 is exactly Gaussian and the readout
    # weights are independent of it.  With two, the mean of the empirical kernels differs from the limit by
    # O(1/width) (Hanin & Nica, 2020), below 1% at width 512, which the 5 standard errors (about 10% here) cover.
    generator = torch.Generator().manual_seed(3)
    x = torch.cat([inputs(3, 4, generator), torch.zeros(1, 4, dtype=F64)])
    draws = [relu_network_kernels(x, width, depth, sigma_w2, sigma_b2, generator) for _ in range(seeds)]
    nngp, ntk = analytic_kernels(x, depth=depth, sigma_w2=sigma_w2, sigma_b2=sigma_b2)
    if sigma_b2 == 0:  # the zero input: every unit is 0 in every network, and the kernel row is 0 exactly
        assert all((k[3] == 0).all() and (t[3] == 0).all() for k, t in draws) and (ntk[3] == 0).all()
        nngp, ntk, draws = nngp[:3, :3], ntk[:3, :3], [(k[:3, :3], t[:3, :3]) for k, t in draws]
    assert_within_standard_errors(torch.stack([k for k, _ in draws]), nngp, claim=f"ReLU NNGP, depth {depth}")
    assert_within_standard_errors(torch.stack([t for _, t in draws]), ntk, claim=f"ReLU NTK, depth {depth}")


def erf_network_kernels(x, width, depth, sigma_w2, sigma_b2, generator):
    """A plain-torch erf network in the NTK parameterisation: its NNGP estimate and its NTK by torch.func."""
    sizes = [x.shape[1], *[width] * depth, 1]
    params = [torch.randn(n_out, n_in, generator=generator, dtype=F64) for n_in, n_out in zip(sizes, sizes[1:])]
    params += [torch.randn(n_out, generator=generator, dtype=F64) for n_out in sizes[1:]]
    L = len(sizes) - 1

    def forward(params, x, hidden=False):
        a = x
        for l in range(L):
            z = math.sqrt(sigma_w2 / sizes[l]) * a @ params[l].T + math.sqrt(sigma_b2) * params[L + l]
            if l == L - 1:
                return a if hidden else z
            a = torch.erf(z)

    last_hidden = forward(params, x, hidden=True)
    jacobian = torch.func.jacrev(lambda p: forward(p, x).reshape(-1))(params)
    J = torch.cat([j.reshape(len(x), -1) for j in jacobian], dim=1)  # (n, P)
    return sigma_w2 * last_hidden @ last_hidden.T / width + sigma_b2, J @ J.T


@pytest.mark.parametrize("depth, width, seeds", [(1, 2048, 48), (2, 384, 24)])
def test_erf_kernels_equal_the_mean_over_wide_networks(depth, width, seeds):
    generator = torch.Generator().manual_seed(4)
    x = inputs(3, 4, generator)
    draws = [erf_network_kernels(x, width, depth, 1.5, 0.2, generator) for _ in range(seeds)]
    nngp, ntk = analytic_kernels(x, depth=depth, activation="erf", sigma_w2=1.5, sigma_b2=0.2)
    assert_within_standard_errors(torch.stack([k for k, _ in draws]), nngp, claim=f"erf NNGP, depth {depth}")
    assert_within_standard_errors(torch.stack([t for _, t in draws]), ntk, claim=f"erf NTK, depth {depth}")


def test_a_wrong_formula_fails_the_monte_carlo_test():
    # The test above has teeth: a kernel off by 5% (a missing sigma_b^2 in the derivative term would do more)
    # is rejected by the same draws.
    generator = torch.Generator().manual_seed(3)
    x = inputs(3, 4, generator)
    draws = torch.stack([relu_network_kernels(x, 2048, 1, 2.0, 0.3, generator)[1] for _ in range(48)])
    _, ntk = analytic_kernels(x, depth=1, sigma_w2=2.0, sigma_b2=0.3)
    with pytest.raises(AssertionError, match="standard errors"):
        assert_within_standard_errors(draws, 1.05 * ntk, claim="a kernel 5% off")


# --------------------------------------------------------------------- empirical NTK against torch.func


def jacobian_contraction(net, x1, x2):
    """J(x1) J(x2)^T with J the (n, P) Jacobian of the output in the stored parameters, by torch.func."""
    theta, unflatten = bplib.flatten(net.parameters)
    jacobian = torch.func.vmap(torch.func.jacrev(lambda t, x: net.forward(x[None], params=unflatten(t))[0, 0]),
                               in_dims=(None, 0))  # fmt: skip
    return jacobian(theta, x1) @ jacobian(theta, x2).T


@pytest.mark.parametrize("parameterization", ["standard", "ntk"])
@pytest.mark.parametrize("sizes", [[3, 5, 1], [3, 6, 4, 1], [4, 5, 3, 6, 1], [2, 1]])
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_empirical_ntk_equals_the_jacobian_contraction(parameterization, sizes, activation, generator):
    net = bplib.MLP(sizes, activation, "mse", dtype=F64, generator=generator, parameterization=parameterization,
                    sigma_w2=1.7, sigma_b2=0.3)  # fmt: skip
    for b in net.biases:  # non-zero biases in the standard parameterisation too
        b.normal_(generator=generator)
    x1, x2 = inputs(5, sizes[0], generator), inputs(3, sizes[0], generator)
    assert_close(empirical_ntk(net, x1, x2), jacobian_contraction(net, x1, x2),
                 claim="per-layer empirical NTK equals J(x1) J(x2)^T", against="torch.func")  # fmt: skip
    theta = empirical_ntk(net, x1)
    assert_close(theta, jacobian_contraction(net, x1, x1),
                 claim="per-layer empirical NTK (x2 = x1) equals J J^T", against="torch.func")  # fmt: skip
    assert torch.equal(theta, theta.T), "x2=None gives an exactly symmetric empirical NTK"


def test_empirical_ntk_in_float32_and_of_one_sample(generator):
    net = bplib.MLP([3, 16, 16, 1], "tanh", "mse", generator=generator, parameterization="ntk", sigma_b2=0.2)
    x = inputs(4, 3, generator, dtype=torch.float32)
    theta = empirical_ntk(net, x)
    assert theta.dtype == torch.float32 and theta.shape == (4, 4)
    assert_close(theta, jacobian_contraction(net, x, x), claim="float32 empirical NTK equals J J^T", against="torch.func")
    assert_close(empirical_ntk(net, x[:1], x[2:3]), theta[:1, 2:3], claim="one pair equals its entry", against="second route")


# ------------------------------------------------------------------------------- linearised dynamics


def kernel_problem(generator, n=6, n_test=3, k=None):
    A = inputs(n, n, generator)
    theta = A @ A.T + 0.05 * torch.eye(n, dtype=F64)  # positive definite
    shape = (n,) if k is None else (n, k)
    test_shape = (n_test,) if k is None else (n_test, k)
    return (theta, inputs(n_test, n, generator), torch.randn(shape, generator=generator, dtype=F64),
            torch.randn(test_shape, generator=generator, dtype=F64), torch.randn(shape, generator=generator, dtype=F64))


@pytest.mark.parametrize("k", [None, 2])
def test_start_and_end_of_the_flow(k, generator):
    theta, cross, f0, f0_test, y = kernel_problem(generator, k=k)
    f, f_test = linearized_predictions(theta, cross, f0, f0_test, y, learning_rate=0.7, times=[0.0, math.inf])
    assert f.shape == (2, *f0.shape) and f_test.shape == (2, *f0_test.shape)
    assert_close(f[0], f0, claim="t = 0 gives f_0 on the training set", against="closed form")
    assert_close(f_test[0], f0_test, claim="t = 0 gives f_0 on the test set", against="closed form")
    assert_close(f[1], y, claim="t = infinity interpolates the targets", against="closed form")
    assert_close(f_test[1], f0_test + cross @ torch.linalg.solve(theta, y - f0),
                 claim="t = infinity is kernel regression on the residual", against="closed form")  # fmt: skip


def test_the_closed_form_solves_the_ode(generator):
    # Central differences in t: error h^2/6 |f'''| + rounding u |f| / h.  With eta lambda_max of order 10 and
    # h = 1e-5 the truncation is about 1e-10 * |f'''| / |f'| relative and the rounding 1e-11 relative: 1e-7 covers both.
    theta, cross, f0, f0_test, y = kernel_problem(generator)
    eta, t, h = 0.3, 0.8, 1e-5
    (f_minus, f_now, f_plus), _ = linearized_predictions(theta, cross, f0, f0_test, y, learning_rate=eta,
                                                         times=[t - h, t, t + h])  # fmt: skip
    torch.testing.assert_close((f_plus - f_minus) / (2 * h), -eta * theta @ (f_now - y), rtol=1e-7, atol=1e-9)


def test_a_two_by_two_flow_equals_sympy():
    theta_values, start, target = [[2, 1], [1, 3]], [1, -2], [0, 1]
    eta, t = sp.Rational(1, 2), sp.Symbol("t", nonnegative=True)
    Theta = sp.Matrix(theta_values)
    f0, y = sp.Matrix(start), sp.Matrix(target)
    f_t = f0 + (sp.eye(2) - (-eta * Theta * t).exp()) * (y - f0)  # SymPy's matrix exponential
    assert sp.simplify(f_t.diff(t) + eta * Theta * (f_t - y)) == sp.zeros(2, 1), "SymPy: df/dt = -eta Theta (f - y)"
    times = [0.0, 0.25, 1.0, 3.0]
    expected = torch.tensor([[float(v) for v in f_t.subs(t, s)] for s in times], dtype=F64)
    as_tensor = lambda v: torch.tensor(v, dtype=F64)  # noqa: E731
    f, _ = linearized_predictions(as_tensor(theta_values), as_tensor([[1.0, 0.0]]), as_tensor(start), as_tensor([0.0]),
                                  as_tensor(target), learning_rate=0.5, times=times)  # fmt: skip
    assert_close(f, expected, claim="the eigendecomposition route equals SymPy's matrix exponential", against="SymPy")


def test_test_points_at_training_points_and_a_singular_kernel(generator):
    theta, _, f0, _, y = kernel_problem(generator)
    f, f_test = linearized_predictions(theta, theta[:2], f0, f0[:2], y, learning_rate=0.2, times=[0.5, 2.0])
    assert_close(f_test, f[:, :2], claim="a test point equal to a training point follows it", against="second route")
    v = inputs(6, 2, generator)
    singular = v @ v.T  # rank 2: eigenvalues 0 in the other directions
    f, f_test = linearized_predictions(singular, singular[:1], f0, f0[:1], y, learning_rate=0.2, times=[0.5, 2.0])
    assert torch.isfinite(f).all() and torch.isfinite(f_test).all()
    assert_close(f_test, f[:, :1], claim="with a singular kernel the test point still follows its training twin",
                 against="second route")  # fmt: skip


def test_gradient_descent_on_the_linear_model_approaches_the_flow(generator):
    # For f linear in its parameters the kernel is constant and GD with step s on the sum loss is
    # f_{k+1} = f_k - s Theta (f_k - y): as s -> 0 with k s = t it tends to the flow at time t.
    n, P = 5, 12
    J = inputs(n, P, generator)  # the Jacobian of a linear model f = J w
    y = torch.randn(n, generator=generator, dtype=F64)
    w = torch.zeros(P, dtype=F64)
    step, steps = 1e-4, 20_000
    for _ in range(steps):
        w -= step * J.T @ (J @ w - y)
    (flow,), _ = linearized_predictions(J @ J.T, J[:1] @ J.T, J @ torch.zeros(P, dtype=F64), torch.zeros(1, dtype=F64), y,
                                        learning_rate=1.0, times=[step * steps])  # fmt: skip
    # the gap is O(s): per mode (1 - s lambda)^k - exp(-s lambda k) ~ k s^2 lambda^2 / 2 exp(-...) <= s lambda / (2e)
    gap = (J @ w - flow).norm() / flow.norm()
    assert gap < step * torch.linalg.eigvalsh(J @ J.T).max() / (2 * math.e) * 2, gap


# ------------------------------------------------------------------------------------------ errors


def t(*shape, dtype=F64):
    return torch.zeros(*shape, dtype=dtype)


NET = bplib.MLP([3, 4, 1], "relu", "mse", dtype=F64, generator=torch.Generator().manual_seed(0), parameterization="ntk")
NET2 = bplib.MLP([3, 4, 2], "relu", "mse", dtype=F64, generator=torch.Generator().manual_seed(0))
GOOD = dict(theta_train=torch.eye(3, dtype=F64), theta_test_train=t(2, 3), f0_train=t(3), f0_test=t(2), y=t(3))


def linearized(**changes):
    args = {**GOOD, **changes}
    learning_rate, times = args.pop("learning_rate", 0.1), args.pop("times", [1.0])
    return linearized_predictions(*args.values(), learning_rate=learning_rate, times=times)


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda: analytic_kernels([[1.0]], depth=1), TypeError, r"analytic_kernels: argument 'x1' must be a torch.Tensor, got list"),
        (lambda: analytic_kernels(t(3), depth=1), ValueError, r"analytic_kernels: argument 'x1' must be 2-D, got a tensor of shape \(3,\)"),
        (lambda: analytic_kernels(t(2, 3), t(2, 3, 1), depth=1), ValueError, r"analytic_kernels: argument 'x2' must be 2-D"),
        (lambda: analytic_kernels(t(2, 3), t(4, 2), depth=1), ValueError, r"analytic_kernels: argument 'x2' must have shape \(any, 3\) \(n2 inputs of the dimension d = 3 of x1\), got \(4, 2\)"),
        (lambda: analytic_kernels(t(2, 3), t(2, 3, dtype=torch.float32), depth=1), TypeError, r"analytic_kernels: argument 'x2' has dtype torch.float32 but 'x1' has dtype torch.float64"),
        (lambda: analytic_kernels(t(2, 3, dtype=torch.complex64), depth=1), TypeError, r"analytic_kernels: argument 'x1' must be real \(a float or integer dtype\), got dtype torch.complex64"),
        (lambda: analytic_kernels(t(2, 0), depth=1), ValueError, r"analytic_kernels: argument 'x1' must have at least one column \(input dimension d >= 1\), got shape \(2, 0\)"),
        (lambda: analytic_kernels(t(2, 3), depth=-1), ValueError, r"analytic_kernels: argument 'depth' must be >= 0 \(the number of hidden layers\), got -1"),
        (lambda: analytic_kernels(t(2, 3), depth=2.0), TypeError, r"analytic_kernels: argument 'depth' must be an int \(the number of hidden layers\), got float 2.0"),
        (lambda: analytic_kernels(t(2, 3), depth=True), TypeError, r"analytic_kernels: argument 'depth' must be an int"),
        (lambda: analytic_kernels(t(2, 3), depth=1, activation="tanh"), ValueError, r"analytic_kernels: argument 'activation' must be one of 'relu', 'erf', got 'tanh'"),
        (lambda: analytic_kernels(t(2, 3), depth=1, sigma_w2=-1.0), ValueError, r"analytic_kernels: argument 'sigma_w2' must be >= 0, got -1.0 \(a variance\)"),
        (lambda: analytic_kernels(t(2, 3), depth=1, sigma_b2=float("nan")), ValueError, r"analytic_kernels: argument 'sigma_b2' must be >= 0, got nan"),
        (lambda: analytic_kernels(t(2, 3), depth=1, sigma_b2="0.1"), TypeError, r"analytic_kernels: argument 'sigma_b2' must be a real number, got str '0.1'"),
        (lambda: empirical_ntk("net", t(2, 3)), TypeError, r"empirical_ntk: argument 'net' must be a bplib.MLP, got str"),
        (lambda: empirical_ntk(NET2, t(2, 3)), ValueError, r"empirical_ntk: argument 'net' must have a scalar output \(sizes\[-1\] == 1\), got sizes \[3, 4, 2\]"),
        (lambda: empirical_ntk(NET, t(2, 4)), ValueError, r"empirical_ntk: argument 'x1' must have shape \(any, 3\) \(batch size, n_0 = 3 inputs of the network\), got \(2, 4\)"),
        (lambda: empirical_ntk(NET, t(3)), ValueError, r"empirical_ntk: argument 'x1' must be 2-D"),
        (lambda: empirical_ntk(NET, t(2, 3), t(2, 3, dtype=torch.float32)), TypeError, r"empirical_ntk: argument 'x2' has dtype torch.float32 but 'net.weights\[0\]' has dtype torch.float64"),
        (lambda: empirical_ntk(NET, torch.zeros(2, 3, dtype=torch.int64)), TypeError, r"empirical_ntk: argument 'x1' must have a floating dtype"),
        (lambda: linearized(theta_train=t(3, 2)), ValueError, r"linearized_predictions: argument 'theta_train' must have shape \(3, 3\) \(a square matrix, Theta\(X, X\)\), got \(3, 2\)"),
        (lambda: linearized(theta_test_train=t(2, 4)), ValueError, r"linearized_predictions: argument 'theta_test_train' must have shape \(any, 3\)"),
        (lambda: linearized(f0_train=t(4)), ValueError, r"linearized_predictions: argument 'f0_train' must have shape \(3,\) or \(3, k\), got \(4,\)"),
        (lambda: linearized(y=t(3, 1)), ValueError, r"linearized_predictions: argument 'y' must have shape \(3,\) \(the shape of f0_train\), got \(3, 1\)"),
        (lambda: linearized(f0_test=t(3)), ValueError, r"linearized_predictions: argument 'f0_test' must have shape \(2,\)"),
        (lambda: linearized(y=t(3, dtype=torch.float32)), TypeError, r"linearized_predictions: argument 'y' has dtype torch.float32 but 'theta_train' has dtype torch.float64"),
        (lambda: linearized(learning_rate=0.0), ValueError, r"linearized_predictions: argument 'learning_rate' must be > 0 \(a step size\), got 0.0"),
        (lambda: linearized(learning_rate=-0.1), ValueError, r"linearized_predictions: argument 'learning_rate' must be > 0 \(a step size\), got -0.1"),
        (lambda: linearized(learning_rate=None), TypeError, r"linearized_predictions: argument 'learning_rate' must be a real number, got NoneType"),
        (lambda: linearized(times=[1.0, -2.0]), ValueError, r"linearized_predictions: argument 'times' must hold times >= 0 \(math.inf allowed\), got \[1.0, -2.0\]"),
        (lambda: linearized(times=1.0), TypeError, r"linearized_predictions: argument 'times' must be a 1-D tensor or a sequence of times, got float"),
        (lambda: linearized(times=["1"]), TypeError, r"linearized_predictions: argument 'times' must hold real numbers, got str '1'"),
        (lambda: linearized(times=torch.ones(2, 2)), ValueError, r"linearized_predictions: argument 'times' must be 1-D"),
    ],
)
def test_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()
