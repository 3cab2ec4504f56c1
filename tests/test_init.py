"""Initialiser statistics match their formulas (Monte Carlo, with a tolerance from the sampling error)."""

import math

import pytest
import torch

from bplib import init


@pytest.mark.parametrize("distribution", ["normal", "uniform"])
@pytest.mark.parametrize("rule, variance", [(init.xavier, lambda n_in, n_out: 2 / (n_in + n_out)), (init.he, lambda n_in, n_out: 2 / n_in)])
def test_variance_matches_formula(rule, variance, distribution):
    n_out, n_in = 300, 500
    w = rule((n_out, n_in), distribution=distribution, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = variance(n_in, n_out)
    # the sample variance of N = 150 000 draws has relative standard error sqrt(2/N) ~ 0.4 % (normal)
    # and less for the uniform; 2 % is five standard errors
    assert abs(w.var().item() / expected - 1) < 0.02
    assert abs(w.mean().item()) < 5 * math.sqrt(expected / w.numel())
    if distribution == "uniform":
        assert w.abs().max().item() <= math.sqrt(3 * expected)


@pytest.mark.parametrize("shape", [(300, 500), (500, 300)])
@pytest.mark.parametrize(
    "rule, kwargs, torch_rule",
    [
        (init.xavier, {"distribution": "uniform"}, torch.nn.init.xavier_uniform_),
        (init.xavier, {"distribution": "normal"}, torch.nn.init.xavier_normal_),
        (init.xavier, {"distribution": "uniform", "gain": 5 / 3}, lambda w: torch.nn.init.xavier_uniform_(w, gain=5 / 3)),
        (init.he, {"distribution": "normal"}, lambda w: torch.nn.init.kaiming_normal_(w, nonlinearity="relu")),
        (init.he, {"distribution": "uniform"}, lambda w: torch.nn.init.kaiming_uniform_(w, nonlinearity="relu")),
    ],
)
def test_rules_are_torchs_for_torchs_weight_shape(rule, kwargs, torch_rule, shape):
    # torch's weights are (out, in), as bplib's: the same shape must give the same distribution.  Both draws
    # have N = 150 000 entries; their variances agree within five standard errors of the difference,
    # 5 sqrt(2 * 2/N) ~ 1.8 % for normal draws (less for uniform ones), and uniform draws share their bound.
    ours = rule(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64, **kwargs)
    with torch.random.fork_rng(devices=[]):  # torch.nn.init draws from the global generator: seed it, then restore it
        torch.manual_seed(2)
        theirs = torch_rule(torch.empty(shape, dtype=torch.float64))
    assert abs(ours.var().item() / theirs.var().item() - 1) < 5 * math.sqrt(4 / ours.numel())
    if kwargs["distribution"] == "uniform":  # the largest of N uniform draws is within about bound / N of the bound
        assert abs(ours.abs().max().item() / theirs.abs().max().item() - 1) < 1e-3


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda: init.he((True, 3)), ValueError, r"he: argument 'shape' must be \(n_out, n_in\) with positive integers, got \(True, 3\)"),
        (lambda: init.he((2, 2), dtype=torch.int64), TypeError, r"he: argument 'dtype' must be a floating torch.dtype, got torch.int64"),
        (lambda: init.xavier((2, 2), generator=0), TypeError, r"xavier: argument 'generator' must be a torch.Generator or None, got int"),
        (lambda: init.xavier((2, 2), gain="1"), TypeError, r"xavier: argument 'gain' must be a real number, got str '1'"),
        (lambda: init.xavier((2, 2), gain=-1.0), ValueError, r"xavier: argument 'gain' must be >= 0, got -1.0"),
        (lambda: init.xavier((2, 2), gain=math.inf), ValueError, r"xavier: argument 'gain' must be >= 0, got inf"),
    ],
)
def test_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()
