"""The tuner's compiled local searches (`nqm.tuning.compiled_searches`:
`nqm._kernels.local_searches_pair`, every search of a 2 x 2 state map in one call) against their
oracle, the Python searches (`nqm.simplex.nelder_mead` on `nqm.tuning._Objective`): the same
optimum and value, bit for bit, for momentum, Nesterov and SGD + EMA, with and without
preconditioning, at small, knee and large batch sizes, targets that some points miss within the
step budget (by a little, and by more than the penalty's cap, where the surrogate is flat and
the simplex shrinks), budgets that end a search mid-step and a vertex above an upper bound;
whole `tune` runs that agree point for point; and `surrogate_at` against the built modes."""

import math

import numpy as np
import pytest

import nqm._kernels as kernels
import nqm.tuning as tuning
from nqm.search_space import SearchSpace
from nqm.simplex import nelder_mead
from nqm.spectrum import Spectrum, power_law

CASES = [("momentum", False, 0.0), ("nesterov", False, 0.0), ("sgd", True, 0.0),
         ("momentum", False, 0.5), ("nesterov", False, 0.25)]


def _spectrum(seed: int) -> Spectrum:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 40))
    h = np.sort(rng.lognormal(-2.0, 2.0, n))[::-1]
    return Spectrum(h=h, c=h * rng.uniform(0.2, 3.0, n), s0=rng.uniform(0.1, 2.0, n),
                    count=rng.integers(1, 50, n).astype(np.float64))


def _both(monkeypatch, problem, starts, spacing, fatol, b, hint):
    """(python, kernel) results of `_local_searches` on fresh objectives."""
    out = []
    for flag in (False, True):
        monkeypatch.setattr(tuning, "USE_SEARCH_KERNEL", flag)
        objective = tuning._Objective(problem, b, hint=hint, best=np.inf, reached=(np.inf, None))
        out.append(tuning._local_searches(problem, objective, starts, spacing, fatol))
    return out


def _problem(seed, kind, ema, precond):
    """A random spectrum's problem; every third seed has a target so far below the reach of
    its small budget that the penalty's excess sits on its cap (a flat surrogate) or near it
    (partly flat)."""
    rng = np.random.default_rng(100 + seed)
    spec = _spectrum(seed)
    if seed % 3 == 2:
        target = float(rng.choice([1e-40, 1e-22, 1e-21])) * spec.initial_loss()
        max_steps = int(rng.integers(2, 8))
    else:
        target = float(spec.initial_loss() * rng.choice([0.3, 0.01, 1e-4]))
        max_steps = int(rng.choice([60, 10**4, 10**8]))     # 60: many points miss the target
    return rng, tuning._Problem(spec, kind, precond, ema, None, target, max_steps,
                                SearchSpace())


@pytest.mark.parametrize("kind,ema,precond", CASES)
def test_kernel_searches_equal_python_searches_bit_for_bit(monkeypatch, kind, ema, precond):
    for seed in range(18):
        rng, problem = _problem(seed, kind, ema, precond)
        grid, axes = tuning._grid(problem)
        spacing = np.array([ax[1] - ax[0] for ax in axes])
        starts = [grid[i] for i in rng.choice(grid.shape[0], 3, replace=False)]
        starts.append(problem.bounds[:, 1].copy())                # a start on the upper bounds
        for b in (1.0, 64.0, 2.0**18):
            hint = float(rng.choice([1.0, 30.0, 5000.0]))
            fatol = float(rng.choice([1e-3, 0.05]))
            for fev in (1, 4, 5, 6, 7, 9, 30, tuning.SIMPLEX_FEV):   # budgets ending searches early
                monkeypatch.setattr(tuning, "SIMPLEX_FEV", fev)
                python, kernel = _both(monkeypatch, problem, starts, spacing, fatol, b, hint)
                assert len(python) == len(kernel) == len(starts)
                for (zp, vp), (zk, vk) in zip(python, kernel):
                    assert zp.tobytes() == zk.tobytes(), (seed, b, fev)
                    assert np.float64(vp).tobytes() == np.float64(vk).tobytes(), (seed, b, fev)


@pytest.mark.parametrize("kind,ema,precond", CASES[:3])
def test_a_vertex_above_an_upper_bound_is_reflected_as_scipy_does(kind, ema, precond):
    """The tuner's simplexes lie in the box; given one that does not, the kernel reflects the
    vertex into it as `nqm.simplex.nelder_mead` (scipy) does."""
    for seed in range(4):
        rng, problem = _problem(seed, kind, ema, precond)
        lo, hi = problem.bounds[:, 0], problem.bounds[:, 1]
        z0 = rng.uniform(lo, hi)
        simplex = np.array([z0, z0 + [0.3, 0.0], [z0[0], hi[1] + 0.4]])     # one above
        for fev in (5, 200):
            objective = tuning._Objective(problem, 16.0, hint=40.0, best=np.inf,
                                          reached=(np.inf, None))
            zp, vp = nelder_mead(objective, simplex, problem.bounds.tolist(),
                                 tuning.SIMPLEX_XATOL, 1e-3, fev)
            [(zk, vk)] = tuning.compiled_searches(problem, objective, simplex[None], 1e-3, fev)
            assert zp.tobytes() == zk.tobytes() and \
                np.float64(math.expm1(vp)).tobytes() == np.float64(vk).tobytes(), seed


@pytest.mark.parametrize("kind,ema", [("momentum", False), ("nesterov", False), ("sgd", True)])
def test_tune_gives_the_same_points_with_and_without_the_kernel(monkeypatch, kind, ema):
    spec = power_law(d=2000, bins=40)
    bs = [1, 16, 256, 4096, 65536, 2**20]
    points = []
    for flag in (False, True):
        monkeypatch.setattr(tuning, "USE_SEARCH_KERNEL", flag)
        points.append(tuning.tune(spec, kind, bs, 0.01, ema=ema, threads=1))
    assert points[0] == points[1]
    assert all(p.reached for p in points[1])


def test_the_kernel_is_used_only_where_it_applies(monkeypatch):
    """Two coordinates of a 2 x 2 map with a constant learning rate: yes; SGD (one coordinate)
    and momentum + EMA (three) search in Python (momentum + EMA calls the kernel only for its
    contained optimum, momentum alone)."""
    calls = []
    real = kernels.local_searches_pair
    monkeypatch.setattr(kernels, "local_searches_pair",
                        lambda *a: calls.append(1) or real(*a))
    spec = power_law(d=200, bins=20)
    tuning.tune(spec, "sgd", [4], 0.05)
    assert not calls
    tuning.tune(spec, "momentum", [4], 0.05)
    alone = len(calls)
    assert alone > 0
    tuning.tune(spec, "momentum", [4], 0.05, ema=True)
    assert len(calls) == 2 * alone


@pytest.mark.parametrize("kind,ema,precond", CASES + [("sgd", False, 0.0), ("sgd", False, 0.5),
                                                      ("momentum", True, 0.0)])
def test_surrogate_at_equals_the_surrogate_of_the_built_modes(kind, ema, precond):
    """`_Problem.surrogate_at` (kernels straight from the scalars) against `surrogate_closed`
    on `Modes.build` of the configuration: the same value bit for bit, or both None."""
    rng = np.random.default_rng(7)
    for seed in range(6):
        spec = _spectrum(seed)
        problem = tuning._Problem(spec, kind, precond, ema, None, 0.01 * spec.initial_loss(),
                                  int(rng.choice([60, 10**6])), SearchSpace())
        lo, hi = problem.bounds[:, 0], problem.bounds[:, 1]
        for _ in range(10):
            c = problem.clipped(rng.uniform(lo, hi))
            b, hint = float(rng.choice([1.0, 512.0])), float(rng.choice([2.0, 300.0]))
            k_above = float(rng.choice([np.inf, 50.0]))
            want = problem.surrogate_closed(problem.modes(problem.config(c)[0]), b, hint,
                                            k_above)
            got = problem.surrogate_at(c, b, hint, k_above)
            assert (got is None and want is None) or \
                np.float64(got).tobytes() == np.float64(want).tobytes(), (seed, c)
