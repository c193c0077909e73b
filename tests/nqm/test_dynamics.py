"""Exact dynamics: closed form and kernel recurrence vs a plain numpy recurrence, vs Monte Carlo,
and the steady states of the theory notes."""

import numpy as np
import pytest

from nqm.closed_form import Modes
from nqm.dynamics import expected_loss, monte_carlo, recurrence_losses
from nqm.optimizer import OptimizerConfig, lr_limit
from nqm.schedule import Schedule
from tests.helpers import moment_recurrence

CONFIGS = [
    OptimizerConfig("sgd", lr=0.9),
    OptimizerConfig("sgd", lr=1.7),                       # oscillating directions (x > 1)
    OptimizerConfig("sgd", lr=0.3, precond=0.5),
    OptimizerConfig("momentum", lr=0.5, momentum=0.9),
    OptimizerConfig("momentum", lr=0.05, momentum=0.5, precond=1.0),
    OptimizerConfig("nesterov", lr=0.6, momentum=0.8),
    OptimizerConfig("sgd", lr=0.5, ema=0.9),
    OptimizerConfig("momentum", lr=0.3, momentum=0.7, ema=0.95),
    OptimizerConfig("nesterov", lr=0.3, momentum=0.6, precond=0.25, ema=0.5),
]
IDS = [f"{c.kind}-lr{c.lr}-b{c.momentum}-p{c.precond}-ema{c.ema}" for c in CONFIGS]


def reference(spec, cfg, batch_size, n=None, lrs=None):
    return moment_recurrence(spec.h, spec.c, spec.s0, spec.count, cfg.kind, cfg.lr, cfg.momentum,
                             cfg.precond, cfg.ema, batch_size, lrs=lrs, n_steps=n)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_closed_form_matches_numpy_recurrence(small_spectrum, cfg):
    ref = reference(small_spectrum, cfg, 4.0, n=300)
    ks = np.arange(301)
    got = expected_loss(small_spectrum, cfg, 4.0, ks)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=0)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_kernel_recurrence_matches_numpy_recurrence(small_spectrum, cfg):
    lrs = cfg.lr * Schedule("cosine", warmup=0.1, final=0.05).multipliers(120)
    ref = reference(small_spectrum, cfg, 2.0, lrs=lrs)
    got, _ = recurrence_losses(small_spectrum, cfg, 2.0, lrs)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=0)


@pytest.mark.parametrize("sched", [Schedule("linear", final=0.1),
                                   Schedule("piecewise", boundaries=(0.3, 0.7),
                                            factors=(0.3, 0.05)),
                                   Schedule("constant", warmup=0.2)])
def test_schedules_match_numpy_recurrence(small_spectrum, sched):
    cfg = OptimizerConfig("momentum", lr=0.4, momentum=0.8)
    got = expected_loss(small_spectrum, cfg, 8.0, 200, schedule=sched)
    ref = reference(small_spectrum, cfg, 8.0, lrs=cfg.lr * sched.multipliers(200))
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=0)


def test_closed_form_far_steps_equal_recurrence(small_spectrum):
    """O(d) evaluation at a far step equals running every step in between."""
    cfg = OptimizerConfig("nesterov", lr=0.2, momentum=0.95, ema=0.99)
    modes = Modes.build(small_spectrum, cfg)
    curve, _ = recurrence_losses(small_spectrum, cfg, 3.0, np.full(5000, cfg.lr))
    for k in (1, 777, 4999, 5000):
        assert modes.loss(k, 3.0) == pytest.approx(curve[k], rel=1e-9)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_exact_matches_monte_carlo_within_4_se(small_spectrum, cfg):
    """Statistical test: at 6 checkpoints the exact expectation lies within 4 standard errors of
    the Monte Carlo mean of 4000 runs (seed fixed; a false alarm has probability < 4e-4)."""
    n = 150
    mean, se = monte_carlo(small_spectrum, cfg, 4.0, n, n_runs=4000, rng=11)
    exact = expected_loss(small_spectrum, cfg, 4.0, n)
    for k in (0, 1, 5, 20, 60, 150):
        assert abs(mean[k] - exact[k]) <= 4 * se[k] + 1e-14, (k, mean[k], exact[k], se[k])


def test_monte_carlo_seeded(small_spectrum):
    cfg = OptimizerConfig("momentum", lr=0.3, momentum=0.5)
    a = monte_carlo(small_spectrum, cfg, 2.0, 30, 50, rng=np.random.default_rng(3))
    b = monte_carlo(small_spectrum, cfg, 2.0, 30, 50, rng=np.random.default_rng(3))
    c = monte_carlo(small_spectrum, cfg, 2.0, 30, 50, rng=np.random.default_rng(4))
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


def test_steady_states_equal_theory_closed_forms(small_spectrum):
    s, B, alpha = small_spectrum, 5.0, 0.7
    h, c, w = s.h, s.c, s.count
    x = alpha * h
    sgd = Modes.build(s, OptimizerConfig("sgd", lr=alpha)).steady_state(B)
    per_dir_sgd = 0.5 * h * (alpha**2 * c / B) / (1 - (1 - x) ** 2)
    assert sgd == pytest.approx(np.sum(w * per_dir_sgd), rel=1e-12)

    beta = 0.9
    mom = Modes.build(s, OptimizerConfig("momentum", lr=alpha, momentum=beta)).steady_state(B)
    per_dir = (1 + beta) * alpha * c / (2 * B * (2 * beta + 2 - alpha * h) * (1 - beta))
    assert mom == pytest.approx(np.sum(w * per_dir), rel=1e-10)

    gamma = 0.8
    ema = Modes.build(s, OptimizerConfig("sgd", lr=alpha, ema=gamma)).steady_state(B)
    r = 1 - x
    factor = (1 - gamma) * (1 + r * gamma) / ((1 + gamma) * (1 - r * gamma))
    assert ema == pytest.approx(np.sum(w * per_dir_sgd * factor), rel=1e-10)


def test_stability_limit_is_where_the_spectral_radius_reaches_one(small_spectrum):
    for kind, beta in (("sgd", 0.0), ("momentum", 0.9), ("nesterov", 0.9), ("nesterov", 0.3)):
        lim = lr_limit(small_spectrum.h, kind, beta, 0.0)
        below = Modes.build(small_spectrum, OptimizerConfig(kind, lr=0.999 * lim, momentum=beta))
        above = Modes.build(small_spectrum, OptimizerConfig(kind, lr=1.001 * lim, momentum=beta))
        assert below.stable and not above.stable, kind


def test_critically_damped_direction_stays_accurate():
    """A direction with a double eigenvalue (x = (1 - sqrt(beta))^2) is handled by splitting it
    by 1e-7: the splitting error (~1e-7) and the cancellation (~1e-16 / 1e-14) balance near 1e-6,
    which is the stated accuracy for an exactly defective direction."""
    from nqm.spectrum import Spectrum
    beta = 0.81
    h = np.array([1.0, (1 - np.sqrt(beta)) ** 2, 0.3])
    s = Spectrum(h=h, c=h, s0=np.ones(3), count=np.ones(3))
    cfg = OptimizerConfig("momentum", lr=1.0, momentum=beta)
    got = expected_loss(s, cfg, 1.0, 400)
    ref = reference(s, cfg, 1.0, n=400)
    np.testing.assert_allclose(got, ref, rtol=1e-5)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_recurrence_parts_give_every_batch_size(small_spectrum, cfg):
    """D_t + N_t / B from one run equals the direct recurrence at each B, and the run stops
    where the smallest batch size first reaches the target."""
    from nqm.dynamics import recurrence_parts
    lrs = cfg.lr * Schedule("cosine", warmup=0.1, final=0.05).multipliers(150)
    full, _ = recurrence_losses(small_spectrum, cfg, 2.0, lrs)
    target = 0.5 * (full.min() + full[0]) if full.min() < full[0] else -1.0
    D, N = recurrence_parts(small_spectrum, cfg, lrs, target, 2.0)
    stop = int(np.flatnonzero(full <= target)[0]) if target > 0 else lrs.size
    assert D.size == N.size == stop + 1
    for b in (2.0, 16.0, 1024.0):
        ref, _ = recurrence_losses(small_spectrum, cfg, b, lrs)
        np.testing.assert_allclose(D + N / b, ref[:stop + 1], rtol=1e-12, atol=0)
