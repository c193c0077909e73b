"""The simulated sweep protocol (`nqm.first_passage`) against a direct numpy simulation."""

import math

import numpy as np
import pytest
from scipy.stats import qmc

from nqm.coupled import CoupledNoise, expected_loss
from nqm.errors import NQMInputError
from nqm.first_passage import ProtocolConfig, eval_schedule, first_passage, sweep_once
from nqm.optimizer import OptimizerConfig
from nqm.spectrum import Spectrum


def _spectrum():
    h = np.array([1.0, 0.5, 0.2, 0.1])
    return Spectrum(h, np.zeros(4), np.array([1.0, 0.8, 1.5, 0.6]), np.ones(4))


def direct_run(h, theta0, sigma2, kappa, B, lr, beta, z):
    """One run, written the obvious way: the loss after each step t = 1..len(z)."""
    theta, v = theta0.copy(), np.zeros_like(theta0)
    out = []
    for zt in z:           # zt: (d + 1,), or (runs, d + 1) with theta0 (runs, d)
        quad = np.sum(h * theta**2, axis=-1, keepdims=True)
        eps = (kappa * zt[..., :1] * h * theta
               + np.sqrt(kappa * h * quad + sigma2 * h) * zt[..., 1:]) / np.sqrt(B)
        v = beta * v - lr * (h * theta + eps)
        theta = theta + v
        out.append(0.5 * np.sum(h * theta**2, axis=-1))
    return np.array(out)


def direct_sweep(sp, sigma2, cfg, B, rng):
    """The protocol of the module docstring with every trial run to the end of its round."""
    evals = set(eval_schedule(cfg.budget, cfg.eval_ratio))
    theta0 = np.sqrt(sp.s0)
    diverge = cfg.diverge_factor * (sp.initial_loss() + sigma2 / 2) - sigma2 / 2
    lr_range, best = list(cfg.lr_range), None
    for _ in range(cfg.max_widen + 1):
        dims = 1 if cfg.optimizer == "sgd" else 2
        u = qmc.Sobol(d=dims, scramble=True, seed=rng).random(cfg.n_trials)
        lrs = np.exp(np.log(lr_range[0]) + u[:, 0] * np.log(lr_range[1] / lr_range[0]))
        lb = np.log(cfg.one_minus_beta_range)
        betas = (np.zeros(cfg.n_trials) if dims == 1
                 else 1 - np.exp(lb[0] + u[:, 1] * (lb[1] - lb[0])))
        n = cfg.budget if best is None else best[0]
        z = rng.standard_normal((n, sp.n_rows + 1))
        for j in range(cfg.n_trials):
            loss = direct_run(sp.h, theta0, sigma2, 1.0, B, lrs[j], betas[j], z)
            bad = np.flatnonzero(~(loss <= diverge))
            hit = [t for t in range(1, n + 1) if t in evals and loss[t - 1] <= cfg.target]
            if hit and (not bad.size or bad[0] + 1 > hit[0]):
                if best is None or hit[0] < best[0]:
                    best = (hit[0], lrs[j], betas[j])
        if best is None:
            break
        lo, hi = np.log(lr_range)
        x = (math.log(best[1]) - lo) / (hi - lo)
        if cfg.outer <= x <= 1 - cfg.outer:
            break
        if x < cfg.outer:
            lr_range[0] = float(np.exp(lo - (hi - lo) / 2))
        else:
            lr_range[1] = float(np.exp(hi + (hi - lo) / 2))
    return best


@pytest.mark.parametrize("optimizer,lr_range", [("sgd", (1e-3, 3.0)), ("sgd", (1e-3, 0.05)),
                                                ("momentum", (1e-2, 1.0))])
def test_sweep_matches_direct_simulation(optimizer, lr_range):
    sp = _spectrum()
    cfg = ProtocolConfig(0.05, optimizer, n_trials=8, budget=300, lr_range=lr_range)
    for seed in range(3):
        got = sweep_once(sp, CoupledNoise(0.2), cfg, 2, np.random.default_rng(seed))
        ref = direct_sweep(sp, 0.2, cfg, 2, np.random.default_rng(seed))
        assert (got["steps"], got["lr"], got["momentum"]) == ref
    if lr_range[1] < 0.1:                   # the best lr sits at the top: widened
        assert got["rounds"] > 1


def test_single_runs_average_to_the_expected_loss():
    sp = _spectrum()
    rng = np.random.default_rng(3)
    n = 20000
    runs = direct_run(sp.h, np.tile(np.sqrt(sp.s0), (n, 1)), 0.3, 1.0, 2, 0.5, 0.0,
                      rng.standard_normal((30, n, 5))).T
    exact = expected_loss(sp, CoupledNoise(0.3), OptimizerConfig("sgd", 0.5), 2, 30)[1:]
    se = runs.std(0, ddof=1) / np.sqrt(runs.shape[0])
    assert (np.abs(runs.mean(0) - exact) / se).max() < 4


def test_first_passage_is_deterministic_given_the_seed():
    sp = _spectrum()
    cfg = ProtocolConfig(0.05, n_trials=4, budget=200, repeats=3, batch_sizes=(1, 8))
    a = first_passage(sp, CoupledNoise(0.2), cfg, np.random.default_rng(11))
    b = first_passage(sp, CoupledNoise(0.2), cfg, np.random.default_rng(11))
    c = first_passage(sp, CoupledNoise(0.2), cfg, np.random.default_rng(12))
    assert a == b
    assert a != c
    assert a[0]["steps_q16"] <= a[0]["steps"] <= a[0]["steps_q84"]


def test_best_of_many_crosses_before_the_expected_loss():
    sp = _spectrum()
    noise = CoupledNoise(0.2)
    cfg = ProtocolConfig(0.03, n_trials=16, budget=2000, repeats=5, batch_sizes=(1,),
                         lr_range=(0.05, 0.5))
    fp = first_passage(sp, noise, cfg, np.random.default_rng(0))[0]
    grid = np.exp(np.linspace(np.log(0.05), np.log(0.5), 60))
    curves = [expected_loss(sp, noise, OptimizerConfig("sgd", lr), 1, 2000) for lr in grid]
    mean_best = min(int(np.argmax(c <= 0.03)) if (c <= 0.03).any() else 10**9 for c in curves)
    assert fp["steps"] < mean_best


@pytest.mark.slow
def test_eval_schedule_is_the_sweeps():
    population = pytest.importorskip("empirical.population")
    for budget, ratio in [(40000, 1.05), (137, 1.2)]:
        assert eval_schedule(budget, ratio) == population.eval_schedule(budget, ratio)


def test_bad_inputs_name_the_field():
    with pytest.raises(NQMInputError, match="n_trials"):
        ProtocolConfig(0.1, n_trials=0)
    with pytest.raises(NQMInputError, match="lr_range"):
        ProtocolConfig(0.1, lr_range=(1.0, 0.1))
    with pytest.raises(NQMInputError, match="theta0"):
        first_passage(_spectrum(), CoupledNoise(0.1), ProtocolConfig(0.1, repeats=1),
                      np.random.default_rng(0), theta0=np.ones(3))


def test_sampled_data_agrees_with_gaussian_noise_at_large_batch():
    """At B = 64 the minibatch gradient is close to Gaussian: both noise models give nearly
    the same simulated sweep; the data mode is deterministic given the seed."""
    sp = _spectrum()
    base = dict(n_trials=8, budget=400, repeats=6, batch_sizes=(64,), lr_range=(0.05, 2.0))
    gauss = first_passage(sp, CoupledNoise(0.2), ProtocolConfig(0.03, **base),
                          np.random.default_rng(1))[0]
    cfg = ProtocolConfig(0.03, noise="data", **base)
    data = first_passage(sp, CoupledNoise(0.2), cfg, np.random.default_rng(1))[0]
    assert data == first_passage(sp, CoupledNoise(0.2), cfg, np.random.default_rng(1))[0]
    assert abs(data["steps"] - gauss["steps"]) <= 0.1 * gauss["steps"]
    with pytest.raises(NQMInputError, match="coupling"):
        first_passage(sp, CoupledNoise(0.2, coupling=False), cfg, np.random.default_rng(1))
