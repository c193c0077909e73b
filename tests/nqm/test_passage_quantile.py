"""The first-passage predictor: its moments against a plain recurrence, its quantile against
sampling, its tuning against a brute-force grid and its steps against the simulated sweep."""

import math

import numpy as np
import pytest
from scipy.stats import gamma

from nqm.closed_form import Modes
from nqm.errors import NQMInputError
from nqm.first_passage import ProtocolConfig, eval_schedule, first_passage
from nqm.optimizer import OptimizerConfig, lr_limit
from nqm.passage_quantile import (
    PassageConfig,
    crossing_steps,
    gamma_quantile,
    loss_moments,
    quantile_for_trials,
    responses,
    tune_passage,
)
from nqm.spectrum import Spectrum
from nqm.spectrum_noise import SpectrumNoise


def _spectrum():
    """Four single directions and two bulk rows with counts (one fractional)."""
    h = np.array([1.0, 0.5, 0.2, 0.1, 0.03, 0.01])
    return Spectrum(h=h, c=0.3 * h, s0=np.array([1.0, 2.0, 1.0, 0.5, 1.0, 3.0]),
                    count=np.array([1.0, 1.0, 1.0, 1.0, 12.0, 0.4]))


def _plain_moments(spec, kind, lr, beta, ks, batch_size):
    """E L and Var L by stepping each direction's mean and 2x2 covariance forward one step at
    a time (z = (theta, v), z' = A z + b eps, Var eps = c / B; Var L = 1/2 sum r w^2 h^2
    (v^2 + 2 m^2 v) for Gaussian theta)."""
    out_m, out_v = [], []
    reps = np.maximum(np.rint(spec.count), 1)
    for i, h in enumerate(spec.h):
        A = np.array([[1 - lr * h, beta], [-lr * h, beta]]) if kind == "momentum" else \
            np.array([[1 - lr * h, 0.0], [0.0, 0.0]])
        b = np.array([-lr, -lr]) if kind == "momentum" else np.array([-lr, 0.0])
        mean, cov = np.array([math.sqrt(spec.s0[i]), 0.0]), np.zeros((2, 2))
        row_m, row_v, k = [], [], 0
        for kk in ks:
            while k < kk:
                mean, cov = A @ mean, A @ cov @ A.T + np.outer(b, b) * spec.c[i] / batch_size
                k += 1
            m2, v = mean[0] ** 2, cov[0, 0]
            row_m.append(0.5 * spec.count[i] * h * (m2 + v))
            row_v.append(0.5 * spec.count[i] ** 2 / reps[i] * h**2 * (v**2 + 2 * m2 * v))
        out_m.append(row_m)
        out_v.append(row_v)
    return np.sum(out_m, axis=0), np.sum(out_v, axis=0)


@pytest.mark.parametrize("kind, lr, beta", [("sgd", 0.7, 0.0), ("sgd", 1.9, 0.0),
                                            ("momentum", 0.3, 0.8), ("momentum", 2.5, 0.5)])
def test_moments_match_a_plain_recurrence(kind, lr, beta):
    spec = _spectrum()
    ks = np.array([1, 2, 3, 7, 20, 55, 150])
    modes = Modes.build(spec, OptimizerConfig(kind=kind, lr=lr, momentum=beta))
    d, n = responses(modes, ks)
    mean, var = loss_moments(spec, d, n, 4.0)
    ref_mean, ref_var = _plain_moments(spec, kind, lr, beta, ks, 4.0)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-9)
    np.testing.assert_allclose(var, ref_var, rtol=1e-9)
    np.testing.assert_allclose(mean, modes.losses(ks, 4.0), rtol=1e-9)


def test_loss_variance_against_sampled_runs():
    """Var L of independent Gaussian directions (count 12 -> 12 directions) by sampling."""
    spec = _spectrum()
    modes = Modes.build(spec, OptimizerConfig(lr=0.5))
    ks = np.array([30])
    d, n = responses(modes, ks)
    mean, var = loss_moments(spec, d, n, 2.0)
    rng = np.random.default_rng(3)
    reps = np.maximum(np.rint(spec.count), 1).astype(int)
    h = np.repeat(spec.h, reps)
    w = np.repeat(spec.count / reps, reps)
    m = np.repeat(np.sqrt(spec.s0) * d[0], reps)
    sd = np.sqrt(np.repeat(spec.c * n[0] / 2.0, reps))
    losses = 0.5 * ((m + sd * rng.standard_normal((200_000, h.size))) ** 2 @ (w * h))
    assert losses.mean() == pytest.approx(mean[0], rel=0.01)
    assert losses.var() == pytest.approx(var[0], rel=0.03)       # ~1% standard error


def test_gamma_quantile_has_the_moments_and_the_mean_without_noise():
    q = gamma_quantile(np.array([2.0, 1.0]), np.array([0.5, 0.0]), 0.2)
    a, scale = 2.0**2 / 0.5, 0.5 / 2.0
    assert gamma.cdf(q[0], a, scale=scale) == pytest.approx(0.2, abs=1e-9)
    assert q[1] == 1.0


def test_quantile_one_half_without_noise_is_the_expected_crossing():
    """With c = 0 the loss is deterministic: the q-crossing is the expected loss's crossing
    read at the evaluated steps."""
    s = _spectrum()
    spec = Spectrum(h=s.h, c=0.0 * s.c, s0=s.s0, count=s.count)
    cfg = OptimizerConfig(lr=0.9)
    ks = np.asarray(eval_schedule(10**5))
    target = 0.01 * spec.initial_loss()
    exact = Modes.build(spec, cfg).first_crossings([1], target, 10**5)[0]
    got = crossing_steps(spec, cfg, [1], target, ks, 0.5)[0]
    assert got == ks[np.searchsorted(ks, exact)]


def test_tuning_matches_a_brute_force_lr_grid():
    spec = _spectrum()
    target = 0.02 * spec.initial_loss()
    ks = np.asarray(eval_schedule(10**5))
    cfg = PassageConfig(quantile=0.2)
    tuned = tune_passage(spec, "sgd", (1, 16, 256), target, max_steps=10**5, config=cfg)
    limit = lr_limit(spec.h, "sgd", 0.0, 0.0)
    grid = limit * np.exp(np.linspace(math.log(1e-4), math.log(1 - 1e-9), 600))
    for p in tuned:
        brute = min(s for lr in grid
                    for s in crossing_steps(spec, OptimizerConfig(lr=lr), [p.batch_size],
                                            target, ks, 0.2) if s is not None)
        assert p.reached and brute <= p.steps <= 1.03 * brute + 1
        assert crossing_steps(spec, OptimizerConfig(lr=p.lr), [p.batch_size], target, ks,
                              0.2)[0] == p.steps


def test_momentum_tuning_never_loses_to_sgd():
    spec = _spectrum()
    target = 0.02 * spec.initial_loss()
    sgd = tune_passage(spec, "sgd", (1, 64), target, max_steps=10**5)
    mom = tune_passage(spec, "momentum", (1, 64), target, max_steps=10**5)
    for a, b in zip(sgd, mom):
        assert b.steps <= a.steps


def test_quantile_rule_and_bad_settings():
    assert quantile_for_trials(64) == pytest.approx(0.2)
    assert quantile_for_trials(16) == pytest.approx(1 / 3)
    for bad in (dict(quantile=0.0), dict(quantile=1.0), dict(eval_ratio=1.0),
                dict(lr_points=1), dict(one_minus_beta_range=(0.5, 0.1))):
        with pytest.raises(NQMInputError, match=next(iter(bad))):
            PassageConfig(**bad)
    with pytest.raises(NQMInputError, match="trials"):
        quantile_for_trials(0)
    with pytest.raises(NQMInputError, match="nesterov"):
        tune_passage(_spectrum(), "nesterov", (1,), 0.1)


@pytest.mark.slow
def test_predicted_steps_agree_with_the_simulated_sweep():
    """Against `nqm.first_passage` (64 Sobol trials, 16 repeats, seed 0) on a power-law
    spectrum of 64 single directions: every batch size within 1.35x of the simulated median
    (the approximation's stated tolerance; measured 1.02, 0.85, 0.96)."""
    h = 1.0 / np.arange(1, 65)
    spec = Spectrum(h=h, c=0.25 * h, s0=np.ones(64), count=np.ones(64))
    target = 0.02 * spec.initial_loss()
    sizes = (1, 16, 256)
    got = tune_passage(spec, "sgd", sizes, target, max_steps=40000,
                       config=PassageConfig(quantile=quantile_for_trials(64)))
    sim = first_passage(spec, SpectrumNoise(), ProtocolConfig(target=target, batch_sizes=sizes,
                                                              repeats=16),
                        np.random.default_rng(0))
    for p, s in zip(got, sim):
        assert 1 / 1.35 <= p.steps / s["steps"] <= 1.35, (p, s["steps"])
