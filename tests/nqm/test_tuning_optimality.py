"""The tuner against a brute-force fine grid over the whole metaparameter box
(`tests.helpers.brute_force`: exact first crossings), for every optimizer at small, knee and large
batch sizes, and the independence of each batch size's result from the others requested."""

import numpy as np
import pytest

from nqm.spectrum import power_law
from nqm.tuning import tune
from tests.helpers import brute_force

TARGET = 0.005
BUDGET = 10**7


def _check(spec, kind, bs, precond=0.0, ema=False, **grid):
    ref, _ = brute_force(spec, kind, bs, TARGET, BUDGET, precond=precond, ema=ema, **grid)
    got = tune(spec, kind, bs, TARGET, precond=precond, ema=ema, max_steps=BUDGET)
    for b, r, g in zip(bs, ref, got):
        assert r is not None and g.steps is not None, (b, r, g)
        assert g.steps <= 1.01 * r, (kind, precond, ema, b, g.steps, r)


def test_sgd_matches_brute_force_fast():
    _check(power_law(d=50), "sgd", [1, 64, 65536], lr_ratios=np.geomspace(1e-9, 1 - 1e-6, 601))


def test_momentum_beta_near_one_at_small_batch_fast():
    """At B = 1 the optimum has 1 - beta ~ 3e-4 and lr / lr_limit ~ 3e-7 (18% fewer steps
    than SGD on this spectrum); a brute force over a box around that regime agrees."""
    spec = power_law(d=50)
    _check(spec, "momentum", [1], lr_ratios=np.geomspace(1e-8, 1e-5, 61),
           one_minus_betas=np.geomspace(1e-5, 1e-2, 16))


@pytest.mark.slow
@pytest.mark.parametrize("kind,precond,ema", [
    ("sgd", 0.0, False), ("sgd", 0.5, False), ("momentum", 0.0, False),
    ("nesterov", 0.0, False), ("sgd", 0.0, True)])
def test_every_optimizer_matches_brute_force(kind, precond, ema):
    grid = {"lr_ratios": np.geomspace(1e-12, 1 - 1e-6, 121),
            "one_minus_betas": np.geomspace(1e-7, 1.0, 22),
            "one_minus_gammas": np.geomspace(1e-7, 1.0, 22)}
    _check(power_law(d=50), kind, [1, 256, 65536], precond=precond, ema=ema, **grid)


@pytest.mark.slow
def test_momentum_with_ema_matches_brute_force():
    grid = {"lr_ratios": np.geomspace(1e-12, 1 - 1e-6, 49),
            "one_minus_betas": np.geomspace(1e-7, 1.0, 12),
            "one_minus_gammas": np.geomspace(1e-7, 1.0, 12)}
    _check(power_law(d=30), "momentum", [1, 4096], ema=True, **grid)


@pytest.mark.parametrize("kind", ["sgd", "momentum"])
def test_batch_size_alone_equals_inside_the_list(kind):
    spec = power_law(d=100)
    bs = [2**i for i in range(0, 21, 2)]
    inside = {p.batch_size: p for p in tune(spec, kind, bs, TARGET, max_steps=BUDGET)}
    for b in (1, 256, 65536):
        assert tune(spec, kind, [b], TARGET, max_steps=BUDGET)[0] == inside[b]


@pytest.mark.parametrize("kind,narrow", [
    ("sgd", {"lr_ratio": (0.5, 1 - 1e-6)}),
    ("momentum", {"one_minus_momentum": (1e-2, 1.0)})])
def test_widening_reaches_an_optimum_outside_the_initial_box(kind, narrow):
    """B = 1: SGD's optimum lies far below lr_limit / 2, momentum's at 1 - beta ~ 3e-4."""
    from nqm.search_space import SearchSpace
    spec = power_law(d=50)
    wide = tune(spec, kind, [1], TARGET, max_steps=BUDGET)[0]
    got = tune(spec, kind, [1], TARGET, max_steps=BUDGET, space=SearchSpace(**narrow))[0]
    assert not got.at_edge, got.edges
    assert got.steps <= 1.01 * wide.steps, (got.steps, wide.steps)
