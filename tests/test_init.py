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
