"""Noise that follows the model's loss (`nqm.loss_noise`) through the exact recurrence of
`nqm.coupled`: against a plain numpy recurrence, its limits (constant noise, least squares'
coupling), a Monte Carlo run, tuning, and bad inputs."""

import math

import numpy as np
import pytest

from nqm.coupled import CoupledNoise, expected_loss, first_crossing
from nqm.coupled_tuning import CoupledTuneConfig, tune
from nqm.dynamics import expected_loss as nqm_expected_loss
from nqm.errors import NQMInputError
from nqm.first_passage import ProtocolConfig, first_passage
from nqm.loss_noise import LossFollowingNoise
from nqm.optimizer import OptimizerConfig
from nqm.spectrum import Spectrum
from nqm.spectrum_noise import SpectrumNoise
from tests.helpers import second_moment_recurrence


def _spectrum(d=6, count=None):
    h = np.arange(1, d + 1, dtype=float) ** -1.0
    c = np.linspace(0.3, 1.1, d) * h
    s0 = np.linspace(0.5, 1.5, d)
    return Spectrum(h, c, s0, np.ones(d) if count is None else count)


def plain_recurrence(sp, l_noise, l_ref, scale, kind, lr, beta, precond, B, n):
    """The (s, u, m) recurrence written out in numpy with
    c_i(L) = max(scale c_i (L + l_noise) / (l_ref + l_noise), 0), L = 1/2 sum count h s."""
    def noise(s):
        loss = 0.5 * np.sum(sp.count * sp.h * s)
        rel = scale if math.isinf(l_noise) else max(scale * (loss + l_noise) / (l_ref + l_noise),
                                                    0.0)
        return rel * sp.c

    return second_moment_recurrence(sp, noise, kind, lr, beta, precond, B, n)


@pytest.mark.parametrize("kind,beta,precond,l_noise,l_ref,scale", [
    ("sgd", 0.0, 0.0, 0.2, 0.05, 1.0),
    ("sgd", 0.0, 0.5, 0.01, 0.3, 2.5),
    ("momentum", 0.8, 0.0, 0.2, 0.05, 0.7),
    ("momentum", 0.5, 0.3, 3.0, 1.0, 1.0),
    ("sgd", 0.0, 0.0, -5.0, 0.1, 1.0),          # noise that grows as the loss falls
    ("momentum", 0.6, 0.0, -1.2, 0.05, 1.0),    # ... and crosses zero above L = 1.2: clipped
    ("sgd", 0.0, 0.0, math.inf, 0.1, 1.7),      # constant noise
])
def test_matches_plain_recurrence(kind, beta, precond, l_noise, l_ref, scale):
    sp = _spectrum(count=np.array([1, 2, 1, 3.5, 1, 10]))
    noise = LossFollowingNoise(l_noise, l_ref, scale)
    lr = 0.9 if l_noise == -1.2 else 0.3
    conf = OptimizerConfig(kind, lr, beta, precond)
    got = expected_loss(sp, noise, conf, 3, 200)
    ref = plain_recurrence(sp, l_noise, l_ref, scale, kind, lr, beta, precond, 3, 200)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=0)
    if l_noise == -1.2:                          # the clip was exercised
        assert got.max() > 1.2


@pytest.mark.parametrize("kind,beta", [("sgd", 0.0), ("momentum", 0.7)])
def test_large_l_noise_is_the_constant_noise_nqm(kind, beta):
    sp = _spectrum()
    conf = OptimizerConfig(kind, 0.5, beta)
    const = Spectrum(sp.h, 1.3 * sp.c, sp.s0, sp.count)
    ref = nqm_expected_loss(const, conf, 2, 150)
    exact = expected_loss(sp, LossFollowingNoise(math.inf, 0.1, 1.3), conf, 2, 150)
    np.testing.assert_allclose(exact, ref, rtol=1e-9)
    near = expected_loss(sp, LossFollowingNoise(1e9, 0.1, 1.3), conf, 2, 150)
    np.testing.assert_allclose(near, ref, rtol=1e-7)
    following = expected_loss(sp, LossFollowingNoise(0.05, 0.1, 1.3), conf, 2, 150)
    assert following[5] > 1.5 * ref[5]           # above l_ref the noise is larger


def test_is_least_squares_coupling_without_its_own_direction_term():
    """c = (2 L_ref + sigma^2) h with l_noise = sigma^2 / 2 is h (2 L + sigma^2) = h S +
    sigma^2 h: least squares' noise less h^2 s_i, which vanishes with many directions per row."""
    sigma2, l_ref = 0.3, 0.2
    base = _spectrum()
    count = np.full(6, 1e3)
    sp = Spectrum(base.h, (2 * l_ref + sigma2) * base.h, base.s0 / 1e3, count)
    noise = LossFollowingNoise(sigma2 / 2, l_ref)
    diag, coup, add = noise.moment_coefficients(sp)
    _, ls_coup, ls_add = CoupledNoise(sigma2).moment_coefficients(sp)
    np.testing.assert_allclose(coup, ls_coup, rtol=1e-12)
    np.testing.assert_allclose(add, ls_add, rtol=1e-12)
    assert not diag.any()
    lr = 0.5 / np.sum(count * sp.h)             # noise gain about half the contraction
    for kind, beta in (("sgd", 0.0), ("momentum", 0.6)):
        conf = OptimizerConfig(kind, lr, beta)
        got = expected_loss(sp, noise, conf, 1, 3000)
        ls = expected_loss(sp, CoupledNoise(sigma2), conf, 1, 3000)
        const = expected_loss(sp, CoupledNoise(sigma2, coupling=False), conf, 1, 3000)
        np.testing.assert_allclose(got, ls, rtol=1e-3)
        assert np.max(np.abs(const / ls - 1)) > 0.05


def test_monte_carlo_sgd():
    """Sampled SGD whose noise variance is c_i(L_k) / B at the exact expected loss L_k."""
    sp = _spectrum(d=4)
    noise = LossFollowingNoise(0.1, 0.2, 1.0)
    lr, B, n, runs = 0.6, 2, 30, 40000
    exact = expected_loss(sp, noise, OptimizerConfig("sgd", lr), B, n)
    rng = np.random.default_rng(3)
    theta = np.tile(np.sqrt(sp.s0), (runs, 1)) * rng.choice([-1.0, 1.0], (runs, 4))
    losses = [0.5 * theta**2 @ sp.h]
    for k in range(n):
        var = noise.relative(exact[k]) * sp.c / B
        theta = theta - lr * (sp.h * theta + np.sqrt(var) * rng.standard_normal(theta.shape))
        losses.append(0.5 * theta**2 @ sp.h)
    losses = np.array(losses).T
    se = losses.std(0, ddof=1) / np.sqrt(runs)
    z = np.abs(losses.mean(0) - exact) / np.maximum(se, 1e-300)
    assert z[1:].max() < 4, z.max()


def test_first_crossing_and_tuning_with_infinite_l_noise_equal_spectrum_noise():
    sp = _spectrum()
    target = 0.3
    conf = OptimizerConfig("momentum", 0.4, 0.8)
    a = first_crossing(sp, LossFollowingNoise(math.inf, 0.1), conf, 4, target, 5000)
    b = first_crossing(sp, SpectrumNoise(), conf, 4, target, 5000)
    assert a == b and a[0] is not None
    cfg = CoupledTuneConfig(target, batch_sizes=(1, 16), max_steps=20000, grid=12)
    assert tune(sp, LossFollowingNoise(math.inf, 0.1), cfg) == tune(sp, SpectrumNoise(), cfg)
    # noise that grows above l_ref slows small batches more than large ones
    follow = tune(sp, LossFollowingNoise(0.01, 0.02), cfg)
    const = tune(sp, SpectrumNoise(), cfg)
    assert follow[0]["steps"] > const[0]["steps"]


def test_bad_inputs_name_the_field():
    with pytest.raises(NQMInputError, match="l_ref"):
        LossFollowingNoise(1.0, -0.1)
    with pytest.raises(NQMInputError, match="l_noise"):
        LossFollowingNoise(float("nan"), 0.1)
    with pytest.raises(NQMInputError, match="l_noise"):
        LossFollowingNoise(-0.1, 0.1)
    with pytest.raises(NQMInputError, match="scale"):
        LossFollowingNoise(1.0, 0.1, 0.0)
    with pytest.raises(NQMInputError, match="nesterov"):
        expected_loss(_spectrum(), LossFollowingNoise(1.0, 0.1),
                      OptimizerConfig("nesterov", 0.1, 0.5), 1, 3)
    with pytest.raises(NQMInputError, match="simulated sweep"):
        first_passage(_spectrum(), LossFollowingNoise(1.0, 0.1),
                      ProtocolConfig(target=0.1), np.random.default_rng(0))


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_capped_grid_pass_has_the_argmin_of_the_uncapped_one(optimizer):
    from nqm.coupled_tuning import _grid, _Scorer

    sp = _spectrum()
    cfg = CoupledTuneConfig(0.3, optimizer, max_steps=20000, grid=10)
    noise = LossFollowingNoise(0.05, 0.1)
    us = np.linspace(np.log(1e-4), np.log(4.0), cfg.grid)
    ws = np.linspace(np.log(1e-3), 0.0, 3)

    def fn(score):
        return score if optimizer == "sgd" else (lambda u: [score(u, w) for w in ws])

    capped = _Scorer(sp, noise, cfg, 1)
    vals = _grid(us, fn(capped), capped)
    plain = _Scorer(sp, noise, cfg, 1)
    ref = np.array([fn(plain)(u) for u in us])
    assert np.argmin(vals) == np.argmin(ref) and capped.best == plain.best
    assert capped.limit == cfg.max_steps


def test_local_search_from_an_optimum_keeps_it():
    sp = _spectrum()
    noise = LossFollowingNoise(0.05, 0.1)
    cfg = CoupledTuneConfig(0.3, "momentum", batch_sizes=(4,), max_steps=20000, grid=12)
    full = tune(sp, noise, cfg)[0]
    from nqm.coupled_tuning import tune_one

    warm = tune_one(sp, noise, cfg, 4, start=(full["lr"], full["momentum"]))
    assert warm["reached"] and warm["steps"] <= full["steps"] and warm["edges"] == []
