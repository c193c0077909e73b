"""Numba kernel of the tuner's local search for a 2 x 2 state map with a constant learning rate
(momentum, Nesterov, SGD + EMA: two search coordinates): every Nelder-Mead search of one batch
size in one compiled call, with no Python between the evaluated points.

It is `nqm.simplex.nelder_mead` (scipy's Nelder-Mead with bounds, the same points in the same
order) on the objective of `nqm.tuning._Objective` for such a map, written out:

    c = (z_lr, z_x)                       the clipped coordinates (the cache key)
    beta = 1 - e^z_x,  gamma = -1         momentum (kind 0) and Nesterov (kind 1)
    beta = 0,          gamma = 1 - e^z_x  SGD + EMA (kind 2)
    lr = e^z_lr * X(kind, beta) / h_scale X = 2 (1 + beta), 2 (1 + beta) / (1 + 2 beta), 2
    (status, v) = surrogate_pair(...)     `nqm._kernels.surrogate_pair`
    value = v                             status 0 (the crossing)
          = M (1 + min(max(log(e^v T) - log T, 0), 50))   status 1 (`tuning.unreached_score`)
          = +inf                          status 2 (known to exceed the caller's `above`)
    objective = log(1 + value)

Every float operation is the one the Python code performs, so the answer is the same bit for
bit (tested against `nqm.tuning`'s Python path); values are remembered by their coordinates
across the searches of one call, as `_Objective` remembers them.
"""

import math

import numpy as np
from numba import njit, types
from numba.typed import Dict

from nqm._kernels import surrogate_pair

RHO, CHI, PSI, SIGMA = 1.0, 2.0, 0.5, 0.5
KEY = types.UniTuple(types.float64, 2)


@njit(cache=True, inline="always")
def _clip(v, lo, hi):
    """`nqm.simplex._clip`: np.clip of one number."""
    v = v if v > lo or v != v else lo
    return v if v < hi or v != v else hi


@njit(cache=True)
def _before(a, b):
    """a sorts before b: smaller, or a number before a NaN (numpy's order)."""
    return a < b or (b != b and a == a)


@njit(cache=True)
def _sort(sim, fsim):
    """Vertices and values sorted by value, stably, NaNs last (`nqm.simplex._sorted`)."""
    n = fsim.size
    for i in range(1, n):
        j = i
        while j > 0 and _before(fsim[j], fsim[j - 1]):
            fsim[j], fsim[j - 1] = fsim[j - 1], fsim[j]
            for c in range(sim.shape[1]):
                sim[j, c], sim[j - 1, c] = sim[j - 1, c], sim[j, c]
            j -= 1


@njit(cache=True, nogil=True)
def _value(x0, x1, above, cache, kind, h_scale, u, w, wdet, wn, inv_b, log_target, log_l0,
           hint, k_max, probe, max_bracket, overshoot, max_log_step, rel_width, target):
    """The objective at clipped coordinates (x0, x1) (module docstring)."""
    key = (x0, x1)
    if key in cache:
        return math.log1p(cache[key])
    k_above = math.expm1(above) * (1.0 + 1e-9) if 0.0 <= above < math.inf else math.inf
    if kind == 2:
        beta = 0.0
        gamma = 1.0 - math.exp(x1)
        factor = 2.0
    else:
        beta = 1.0 - math.exp(x1)
        gamma = -1.0
        factor = 2.0 * (1.0 + beta) if kind == 0 else 2.0 * (1.0 + beta) / (1.0 + 2.0 * beta)
    lr = math.exp(x0) * (factor / h_scale)
    status, v = surrogate_pair(u, w, kind == 1, beta, gamma, lr, wdet, wn, inv_b, log_target,
                               log_l0, hint, k_max, probe, max_bracket, overshoot,
                               max_log_step, rel_width, k_above)
    if status == 2:
        return math.inf
    if status == 1:
        loss = math.exp(v) * target
        excess = math.log(loss) - log_target if loss > 0 else 50.0
        excess = 0.0 if 0.0 > excess else excess
        v = k_max * (1.0 + (50.0 if 50.0 < excess else excess))
    cache[key] = v
    return math.log1p(v)


@njit(cache=True, nogil=True)
def _step(sim, fsim, xbar, lo, hi, calls, maxfev, cache, kind, h_scale, u, w, wdet, wn, inv_b,
          log_target, log_l0, hint, k_max, probe, max_bracket, overshoot, max_log_step,
          rel_width, target):
    """One Nelder-Mead step on the sorted simplex (reflection, expansion, contractions,
    shrink; `nqm.simplex.nelder_mead`), in place; returns the evaluations made so far.  Where
    the budget runs out the step ends before the evaluation, as the Python code's does."""
    n = sim.shape[1]
    args = (cache, kind, h_scale, u, w, wdet, wn, inv_b, log_target, log_l0, hint, k_max, probe,
            max_bracket, overshoot, max_log_step, rel_width, target)
    for c in range(n):
        xbar[c] = sim[0, c]
    for j in range(1, n):
        for c in range(n):
            xbar[c] = xbar[c] + sim[j, c]
    for c in range(n):
        xbar[c] = xbar[c] / n
    xr0 = _clip((1 + RHO) * xbar[0] - RHO * sim[n, 0], lo[0], hi[0])
    xr1 = _clip((1 + RHO) * xbar[1] - RHO * sim[n, 1], lo[1], hi[1])
    if calls >= maxfev:
        return calls
    calls += 1
    fxr = _value(xr0, xr1, fsim[n], *args)
    if fxr < fsim[0]:
        xe0 = _clip((1 + RHO * CHI) * xbar[0] - RHO * CHI * sim[n, 0], lo[0], hi[0])
        xe1 = _clip((1 + RHO * CHI) * xbar[1] - RHO * CHI * sim[n, 1], lo[1], hi[1])
        if calls >= maxfev:
            return calls
        calls += 1
        fxe = _value(xe0, xe1, fxr, *args)
        if fxe < fxr:
            sim[n, 0], sim[n, 1], fsim[n] = xe0, xe1, fxe
        else:
            sim[n, 0], sim[n, 1], fsim[n] = xr0, xr1, fxr
        return calls
    if fxr < fsim[n - 1]:
        sim[n, 0], sim[n, 1], fsim[n] = xr0, xr1, fxr
        return calls
    if fxr < fsim[n]:
        xc0 = _clip((1 + PSI * RHO) * xbar[0] - PSI * RHO * sim[n, 0], lo[0], hi[0])
        xc1 = _clip((1 + PSI * RHO) * xbar[1] - PSI * RHO * sim[n, 1], lo[1], hi[1])
        if calls >= maxfev:
            return calls
        calls += 1
        fxc = _value(xc0, xc1, fxr, *args)
        shrink = not fxc <= fxr
        if not shrink:
            sim[n, 0], sim[n, 1], fsim[n] = xc0, xc1, fxc
    else:
        xcc0 = _clip((1 - PSI) * xbar[0] + PSI * sim[n, 0], lo[0], hi[0])
        xcc1 = _clip((1 - PSI) * xbar[1] + PSI * sim[n, 1], lo[1], hi[1])
        if calls >= maxfev:
            return calls
        calls += 1
        fxcc = _value(xcc0, xcc1, fsim[n], *args)
        shrink = not fxcc < fsim[n]
        if not shrink:
            sim[n, 0], sim[n, 1], fsim[n] = xcc0, xcc1, fxcc
    if shrink:
        for j in range(1, n + 1):
            for c in range(n):
                sim[j, c] = _clip(sim[0, c] + SIGMA * (sim[j, c] - sim[0, c]), lo[c], hi[c])
            if calls >= maxfev:
                return calls
            calls += 1
            fsim[j] = _value(sim[j, 0], sim[j, 1], math.inf, *args)
    return calls


@njit(cache=True, nogil=True)
def local_searches_pair(simplexes, lo, hi, xatol, fatol, maxfev, kind, h_scale, u, w, wdet, wn,
                        inv_b, log_target, log_l0, hint, k_max, probe, max_bracket, overshoot,
                        max_log_step, rel_width, target):
    """Nelder-Mead from each initial simplex `simplexes[s]` (3 x 2) within [lo, hi], on the
    objective of the module docstring: (best vertices (s, 2), their values (s,)), each search
    stopping when every |x_j - x_0| <= xatol and |f_0 - f_j| <= fatol or after `maxfev`
    evaluations.  One cache of values serves all searches."""
    cache = Dict.empty(key_type=KEY, value_type=types.float64)
    m = simplexes.shape[0]
    n = 2
    best = np.empty((m, n))
    vals = np.empty(m)
    sim = np.empty((n + 1, n))
    fsim = np.empty(n + 1)
    xbar = np.empty(n)
    for s in range(m):
        for j in range(n + 1):          # a vertex above an upper bound is reflected inside
            for c in range(n):
                v = simplexes[s, j, c]
                sim[j, c] = _clip(2 * hi[c] - v if v > hi[c] else v, lo[c], hi[c])
        calls = 0
        for j in range(n + 1):
            fsim[j] = math.inf
        for j in range(n + 1):
            if calls >= maxfev:
                break
            calls += 1
            fsim[j] = _value(sim[j, 0], sim[j, 1], math.inf, cache, kind, h_scale, u, w, wdet,
                             wn, inv_b, log_target, log_l0, hint, k_max, probe, max_bracket,
                             overshoot, max_log_step, rel_width, target)
        _sort(sim, fsim)
        while calls < maxfev:
            done = True
            for j in range(1, n + 1):
                for c in range(n):
                    if not abs(sim[j, c] - sim[0, c]) <= xatol:
                        done = False
                if not abs(fsim[0] - fsim[j]) <= fatol:
                    done = False
            if done:
                break
            calls = _step(sim, fsim, xbar, lo, hi, calls, maxfev, cache, kind, h_scale, u, w,
                          wdet, wn, inv_b, log_target, log_l0, hint, k_max, probe, max_bracket,
                          overshoot, max_log_step, rel_width, target)
            _sort(sim, fsim)
        best[s, 0], best[s, 1] = sim[0, 0], sim[0, 1]
        low = fsim[0]
        for j in range(n + 1):
            if fsim[j] != fsim[j] or (low == low and fsim[j] < low):
                low = fsim[j]
        vals[s] = low
    return best, vals
