"""`nqm.brent.minimize_bounded` against `scipy.optimize.minimize_scalar(method="bounded")`: the
same points evaluated in the same order and the same answer, bit for bit, on smooth,
flat-topped (ties), wiggly and partly infinite functions, tolerances from loose to tight and
budgets that end the search early."""

import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from nqm.brent import minimize_bounded


def _logged(f, log):
    """f, recording every point asked for."""
    def g(x):
        log.append(float(x))
        return f(x)
    return g


def _case(seed):
    rng = np.random.default_rng(seed)
    centre, scale = rng.normal(), rng.uniform(0.1, 10.0)
    step = float(rng.choice([0.0, 0.05, 0.5]))      # rounding makes ties
    wiggle = float(rng.choice([0.0, 0.3, 3.0]))
    wall = bool(rng.integers(0, 2))                  # +inf beyond x = 1.5

    def f(x):
        v = scale * (x - centre) ** 2 + wiggle * math.sin(20 * x)
        if step:
            v = round(v / step) * step
        return math.inf if wall and x > 1.5 else v

    lo = rng.uniform(-3, 1)
    hi = lo + rng.uniform(1e-6, 4)
    return f, lo, hi, float(rng.choice([1e-3, 1e-5, 0.1])), int(rng.choice([500, 3, 12]))


@pytest.mark.parametrize("block", range(4))
def test_same_points_same_order_same_answer_as_scipy(block):
    for seed in range(block * 150, (block + 1) * 150):
        f, lo, hi, xatol, maxiter = _case(seed)
        theirs, ours = [], []
        with np.errstate(invalid="ignore"):          # scipy's 0 * inf with a wall
            res = minimize_scalar(_logged(f, theirs), bounds=(lo, hi), method="bounded",
                                  options={"xatol": xatol, "maxiter": maxiter})
        x, fx = minimize_bounded(_logged(f, ours), lo, hi, xatol, maxiter)
        assert [np.float64(v).tobytes() for v in ours] == \
            [np.float64(v).tobytes() for v in theirs], seed
        assert np.float64(x).tobytes() == np.float64(res.x).tobytes(), seed
        assert np.float64(fx).tobytes() == np.float64(res.fun).tobytes(), seed


def test_finds_the_minimum_inside_the_bracket_and_on_its_edge():
    x, fx = minimize_bounded(lambda x: (x - 0.3) ** 2, -1.0, 1.0, 1e-8)
    assert abs(x - 0.3) < 1e-6 and fx < 1e-12
    x, _ = minimize_bounded(lambda x: (x - 0.3) ** 2, -1.0, 0.1, 1e-8)
    assert abs(x - 0.1) < 1e-6
