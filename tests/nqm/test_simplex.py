"""`nqm.simplex.nelder_mead` against scipy's Nelder-Mead with bounds: the same points evaluated
in the same order and the same answer, bit for bit, on smooth, flat-topped (ties), wiggly and
partly infinite functions, simplexes on a bound, and budgets that end a search mid-step; also
when the function answers +inf wherever its value exceeds the `above` it is given."""

import math

import numpy as np
import pytest
from scipy.optimize import minimize

from nqm.simplex import nelder_mead


def _case(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 4))
    centre = rng.normal(size=n)
    a = rng.normal(size=(n, n))
    a = a @ a.T + 0.1 * np.eye(n)
    step = float(rng.choice([0.0, 0.05, 0.5]))      # rounding makes ties
    wiggle = float(rng.choice([0.0, 0.3]))
    wall = bool(rng.integers(0, 2))                  # +inf beyond x_0 = 1.5

    def f(x):
        d = x - centre
        v = float(d @ a @ d) + wiggle * math.sin(20 * x[0])
        if step:
            v = round(v / step) * step
        return math.inf if wall and x[0] > 1.5 else v

    lo = rng.uniform(-2, 0, size=n)
    hi = lo + rng.uniform(0.2, 3, size=n)
    if rng.integers(0, 2):
        hi[-1] = 0.0
    z0 = rng.uniform(lo, hi)
    if rng.integers(0, 3) == 0:
        z0[-1] = hi[-1]                              # start on a bound
    half = rng.uniform(0.05, 1.0, size=n)
    simplex = [z0] + [np.clip(z0 + half[j] * np.eye(n)[j] * (1 if z0[j] < (lo[j] + hi[j]) / 2
                                                            else -1), lo, hi)
                      for j in range(n)]
    return (f, np.array(simplex), np.stack([lo, hi], axis=1), float(rng.choice([0.05, 1e-3])),
            float(rng.choice([1e-3, 0.1, 0.0])), int(rng.choice([100 * n, 7, 30])))


def _logged(f, log):
    """f, recording every point asked for."""
    def g(x, above=math.inf):
        log.append(x.tobytes())
        return f(x)
    return g


def _lazy(f, log):
    """`_logged`, answering +inf wherever f(x) > above: the least that `above` allows."""
    def g(x, above=math.inf):
        log.append(x.tobytes())
        v = f(x)
        return math.inf if v > above else v
    return g


@pytest.mark.parametrize("block", range(4))
def test_same_points_same_order_same_answer_as_scipy(block):
    for seed in range(block * 150, (block + 1) * 150):
        f, simplex, bounds, xatol, fatol, maxfev = _case(seed)
        theirs = []

        with np.errstate(invalid="ignore"):       # scipy's inf - inf in its convergence test
            res = minimize(_logged(f, theirs), simplex[0], method="Nelder-Mead", bounds=bounds,
                           options={"initial_simplex": simplex, "xatol": xatol,
                                    "fatol": fatol, "maxfev": maxfev})
        for wrap in (_logged, _lazy):
            ours = []
            z, fun = nelder_mead(wrap(f, ours), simplex, bounds.tolist(), xatol, fatol, maxfev)
            assert ours == theirs, seed
            assert z.tobytes() == res.x.tobytes(), seed
            assert np.float64(fun).tobytes() == np.float64(res.fun).tobytes(), seed


def test_finds_the_minimum_of_a_bowl_inside_the_box_and_on_its_edge():
    bowl = lambda x, above: (x[0] - 0.3) ** 2 + 2.0 * (x[1] + 0.7) ** 2      # noqa: E731
    x, fun = nelder_mead(bowl, [[0.0, 0.0], [0.5, 0.0], [0.0, 0.5]], [(-1, 1), (-1, 1)],
                         1e-8, 1e-12, 400)
    np.testing.assert_allclose(x, [0.3, -0.7], atol=1e-4)
    assert fun < 1e-8
    x, _ = nelder_mead(bowl, [[0.0, 0.0], [0.5, 0.0], [0.0, 0.5]], [(-1, 1), (-0.5, 1)],
                       1e-8, 1e-12, 400)
    np.testing.assert_allclose(x, [0.3, -0.5], atol=1e-4)
