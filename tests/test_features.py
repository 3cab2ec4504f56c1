"""bplib.features: the random ReLU features == torch.relu of the product; the minimum-norm fit ==
torch.linalg.pinv and lstsq, with its defining properties; every error path is reported."""

import math

import pytest
import torch

import bplib
from bplib.features import LeastSquaresFit, min_norm_least_squares, relu_features
from bplib.testing import assert_close

F64 = torch.float64


def test_relu_features_match_torch_and_nest():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, generator=generator, dtype=F64)
    W = bplib.init.he((8, 3), generator=generator, dtype=F64)
    phi = relu_features(x, W)
    assert_close(phi, torch.relu(x @ W.T) / math.sqrt(8), claim="relu_features", against="torch")
    assert_close(
        relu_features(x, W[:5]) * math.sqrt(5), phi[:, :5] * math.sqrt(8), claim="nested features", against="torch"
    )
    assert phi.shape == (6, 8) and (phi >= 0).all()


@pytest.mark.parametrize("shape", [(5, 12), (12, 5), (7, 7)])
@pytest.mark.parametrize("targets", [1, 3])
def test_min_norm_fit_equals_the_pseudo_inverse(shape, targets):
    generator = torch.Generator().manual_seed(1)
    phi = torch.randn(shape, generator=generator, dtype=F64)
    y = torch.randn((shape[0], targets) if targets > 1 else (shape[0],), generator=generator, dtype=F64)
    fit = min_norm_least_squares(phi, y)
    assert isinstance(fit, LeastSquaresFit) and fit.rank == min(shape)
    assert_close(fit.coefficients, torch.linalg.pinv(phi) @ y, claim="min-norm fit", against="torch")
    assert_close(fit.singular_values, torch.linalg.svdvals(phi), claim="singular values", against="torch")
    if shape[0] <= shape[1]:  # full row rank: an interpolant
        assert_close(phi @ fit.coefficients, y, claim="interpolates", against="closed form")
    else:  # full column rank: the unique least-squares solution, which LAPACK's QR route also finds
        assert_close(fit.coefficients, torch.linalg.lstsq(phi, y).solution, claim="least squares", against="torch")


def test_min_norm_fit_has_the_least_norm_among_interpolants():
    generator = torch.Generator().manual_seed(2)
    phi = torch.randn(4, 9, generator=generator, dtype=F64)
    y = torch.randn(4, generator=generator, dtype=F64)
    theta = min_norm_least_squares(phi, y).coefficients
    null_space = torch.linalg.svd(phi).Vh[4:].T  # (9, 5), phi @ null_space = 0
    for _ in range(20):
        other = theta + null_space @ torch.randn(5, generator=generator, dtype=F64)
        assert_close(phi @ other, y, claim="another interpolant", against="closed form")
        assert other.norm() > theta.norm(), "every other interpolant is longer"
    assert_close(null_space.T @ theta, torch.zeros(5, dtype=F64), claim="orthogonal to the null space", against="closed form")


def test_min_norm_fit_drops_singular_values_below_the_cutoff():
    generator = torch.Generator().manual_seed(3)
    U, _ = torch.linalg.qr(torch.randn(5, 5, generator=generator, dtype=F64))
    V, _ = torch.linalg.qr(torch.randn(8, 5, generator=generator, dtype=F64))
    s = torch.tensor([3.0, 1.0, 0.5, 1e-9, 0.0], dtype=F64)
    phi = U @ torch.diag(s) @ V.T  # rank 3 up to a singular value of 1e-9 and an exact 0
    y = torch.randn(5, generator=generator, dtype=F64)
    coarse = min_norm_least_squares(phi, y, rtol=1e-6)
    assert coarse.rank == 3
    expected = V[:, :3] @ ((U[:, :3].T @ y) / s[:3])
    torch.testing.assert_close(coarse.coefficients, expected, rtol=1e-8, atol=1e-8)  # phi itself is rounded
    assert min_norm_least_squares(phi, y).rank == 4, "the default cutoff 8 eps s_1 keeps 1e-9"
    assert_close(
        coarse.coefficients, torch.linalg.pinv(phi, rtol=1e-6) @ y, claim="pinv with the same cutoff", against="torch"
    )


def test_errors():
    x = torch.zeros(4, 3, dtype=F64)
    with pytest.raises(TypeError, match=r"relu_features: argument 'x' must be a torch.Tensor, got list"):
        relu_features([[0.0]], x)
    with pytest.raises(ValueError, match=r"relu_features: argument 'x' must be 2-D, got a tensor of shape \(3,\)"):
        relu_features(torch.zeros(3, dtype=F64), x)
    with pytest.raises(ValueError, match=r"relu_features: argument 'weights' must have shape \(any, 3\) .* got \(5, 2\)"):
        relu_features(x, torch.zeros(5, 2, dtype=F64))
    with pytest.raises(TypeError, match=r"relu_features: argument 'weights' has dtype torch.float32 but 'x' has"):
        relu_features(x, torch.zeros(5, 3))
    with pytest.raises(TypeError, match=r"relu_features: argument 'x' must have a floating dtype"):
        relu_features(torch.zeros(4, 3, dtype=torch.int64), x)
    with pytest.raises(ValueError, match=r"min_norm_least_squares: argument 'features' must be 2-D"):
        min_norm_least_squares(torch.zeros(4, dtype=F64), torch.zeros(4, dtype=F64))
    with pytest.raises(ValueError, match=r"min_norm_least_squares: argument 'targets' must be 1-D or 2-D, got shape \(4, 1, 1\)"):
        min_norm_least_squares(x, torch.zeros(4, 1, 1, dtype=F64))
    with pytest.raises(ValueError, match=r"argument 'targets' must have shape \(4,\) \(one row per row of features\), got \(5,\)"):
        min_norm_least_squares(x, torch.zeros(5, dtype=F64))
    with pytest.raises(TypeError, match=r"min_norm_least_squares: argument 'targets' has dtype torch.float32"):
        min_norm_least_squares(x, torch.zeros(4))
    with pytest.raises(TypeError, match=r"min_norm_least_squares: argument 'rtol' must be a Python number or None, got str"):
        min_norm_least_squares(x, torch.zeros(4, dtype=F64), rtol="0")
    with pytest.raises(ValueError, match=r"min_norm_least_squares: argument 'rtol' must be in \[0, 1\), got 1.5"):
        min_norm_least_squares(x, torch.zeros(4, dtype=F64), rtol=1.5)
