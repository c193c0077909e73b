"""Loss-following noise (`nqm.coupled`, `nqm.coupled_tuning`): exact dynamics against a plain
recurrence, against real minibatch least squares, and the constant-noise NQM as its limit."""

import numpy as np
import pytest

from nqm.coupled import CoupledNoise, expected_loss, first_crossing
from nqm.coupled_tuning import CoupledTuneConfig, tune
from nqm.dynamics import expected_loss as nqm_expected_loss
from nqm.errors import NQMInputError
from nqm.optimizer import OptimizerConfig
from nqm.spectrum import Spectrum
from tests.helpers import second_moment_recurrence


def _spectrum(d=6, count=None):
    h = np.arange(1, d + 1, dtype=float) ** -1.0
    s0 = np.linspace(0.5, 1.5, d)
    return Spectrum(h, np.zeros(d), s0, np.ones(d) if count is None else count)


def plain_recurrence(sp, sigma2, kind, lr, beta, precond, B, n, kappa=1.0):
    """The module docstring's (s, u, m) recurrence written out in numpy, one step at a time."""
    h, w = sp.h, sp.count
    return second_moment_recurrence(
        sp, lambda s: kappa * (h**2 * s + h * np.sum(w * h * s)) + sigma2 * h,
        kind, lr, beta, precond, B, n)


@pytest.mark.parametrize("kind,beta,precond", [("sgd", 0.0, 0.0), ("sgd", 0.0, 0.5),
                                               ("momentum", 0.8, 0.0), ("momentum", 0.5, 0.3)])
def test_matches_plain_recurrence(kind, beta, precond):
    sp = _spectrum(count=np.array([1, 2, 1, 3.5, 1, 10]))
    conf = OptimizerConfig(kind, 0.3, beta, precond)
    got = expected_loss(sp, CoupledNoise(0.3), conf, 3, 200)
    ref = plain_recurrence(sp, 0.3, kind, 0.3, beta, precond, 3, 200)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=0)


@pytest.mark.parametrize("kind,beta", [("sgd", 0.0), ("momentum", 0.7)])
def test_coupling_off_is_the_constant_noise_nqm(kind, beta):
    sp = _spectrum()
    sigma2 = 0.4
    conf = OptimizerConfig(kind, 0.5, beta)
    got = expected_loss(sp, CoupledNoise(sigma2, coupling=False), conf, 2, 150)
    const = Spectrum(sp.h, sigma2 * sp.h, sp.s0, sp.count)
    ref = nqm_expected_loss(const, conf, 2, 150)
    np.testing.assert_allclose(got, ref, rtol=1e-9)
    coupled = expected_loss(sp, CoupledNoise(sigma2), conf, 2, 150)
    assert coupled[-1] > 1.05 * got[-1]          # the coupling raises the noise floor


def minibatch_least_squares(h, theta0, sigma, B, lr, beta, n_steps, runs, rng):
    """Real minibatch SGD / heavy ball on sampled data x ~ N(0, diag(h)), y = x'w* + sigma xi
    (w* = 0, so theta is delta); returns the excess loss 1/2 theta'H theta per run and step."""
    d = h.size
    theta = np.tile(theta0, (runs, 1))
    v = np.zeros_like(theta)
    out = [0.5 * (theta**2) @ h]
    for _ in range(n_steps):
        x = rng.standard_normal((runs, B, d)) * np.sqrt(h)
        y = sigma * rng.standard_normal((runs, B))
        resid = np.einsum("rbd,rd->rb", x, theta) - y
        g = np.einsum("rbd,rb->rd", x, resid) / B
        v = beta * v - lr * g
        theta = theta + v
        out.append(0.5 * (theta**2) @ h)
    return np.array(out).T


@pytest.mark.parametrize("kind,beta,B", [("sgd", 0.0, 1), ("sgd", 0.0, 4), ("momentum", 0.6, 2)])
def test_matches_real_minibatch_least_squares(kind, beta, B):
    h = np.array([1.0, 0.5, 0.25, 0.1])
    theta0 = np.array([1.0, -0.7, 1.2, 0.5])
    sigma = 0.6
    sp = Spectrum(h, np.zeros(4), theta0**2, np.ones(4))
    lr, n = 0.4, 25
    losses = minibatch_least_squares(h, theta0, sigma, B, lr, beta, n, 20000,
                                     np.random.default_rng(7))
    mean = losses.mean(0)
    se = losses.std(0, ddof=1) / np.sqrt(losses.shape[0])
    exact = expected_loss(sp, CoupledNoise(sigma**2), OptimizerConfig(kind, lr, beta), B, n)
    z = np.abs(mean - exact) / se
    assert z[1:].max() < 4, z.max()
    # and the constant-noise model with the same additive part is clearly off here
    off = expected_loss(sp, CoupledNoise(sigma**2, False), OptimizerConfig(kind, lr, beta), B, n)
    assert (np.abs(mean - off) / se)[1:].max() > 4


def test_first_crossing_is_the_first_step_below_target():
    sp = _spectrum()
    noise = CoupledNoise(0.2)
    conf = OptimizerConfig("momentum", 0.4, 0.9)
    curve = expected_loss(sp, noise, conf, 4, 3000)
    target = 0.5 * curve[40]
    k, x = first_crossing(sp, noise, conf, 4, target, 3000)
    assert k == int(np.flatnonzero(curve <= target)[0])
    assert k - 1 < x <= k
    assert first_crossing(sp, noise, conf, 4, 1e-9, 3000) == (None, float("inf"))


@pytest.mark.slow
def test_tuning_matches_a_fine_grid():
    sp = _spectrum(d=8)
    noise = CoupledNoise(0.1)
    target = 0.02
    recs = tune(sp, noise, CoupledTuneConfig(target, batch_sizes=(1, 16), max_steps=20000))
    for rec in recs:
        grid = np.exp(np.linspace(np.log(1e-3), np.log(3.0), 400))
        ks = [first_crossing(sp, noise, OptimizerConfig("sgd", lr), rec["batch_size"],
                             target, 20000)[0] for lr in grid]
        best = min(k for k in ks if k is not None)
        assert rec["reached"] and rec["steps"] <= best
        assert rec["steps"] >= 0.99 * best
        assert not rec["at_edge"]


def test_bad_inputs_name_the_field():
    with pytest.raises(NQMInputError, match="sigma2"):
        CoupledNoise(-1.0)
    with pytest.raises(NQMInputError, match="nesterov"):
        expected_loss(_spectrum(), CoupledNoise(0.1), OptimizerConfig("nesterov", 0.1, 0.5), 1, 3)
    with pytest.raises(NQMInputError, match="grid"):
        CoupledTuneConfig(0.1, grid=2)
    with pytest.raises(NQMInputError, match="one_minus_beta"):
        CoupledTuneConfig(0.1, one_minus_beta=(0.5, 0.1))
