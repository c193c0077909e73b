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
from numba import njit

from nqm._kernels import surrogate_pair

RHO, CHI, PSI, SIGMA = 1.0, 2.0, 0.5, 0.5


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
    n = int(cache[0, 0])
    for i in range(n, 0, -1):          # the most recent first
        if cache[i, 0] == x0 and cache[i, 1] == x1:
            return math.log1p(cache[i, 2])
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
    if n + 1 < cache.shape[0]:
        cache[n + 1, 0], cache[n + 1, 1], cache[n + 1, 2] = x0, x1, v
        cache[0, 0] = n + 1
    return math.log1p(v)


@njit(cache=True, nogil=True)
def _step(sim, fsim, xbar, lo, hi, left, cache, kind, h_scale, u, w, wdet, wn, inv_b,
          log_target, log_l0, hint, k_max, probe, max_bracket, overshoot, max_log_step,
          rel_width, target):
    """One Nelder-Mead step on the sorted simplex, in place (`nqm.simplex.nelder_mead`);
    returns the evaluations `left` of the budget.  Every trial point is clip(a xbar - c s) with
    (a, c) = (2, 1) reflection, (3, 2) expansion, (3/2, 1/2) contraction, (1/2, -1/2) inside
    contraction (the same floats as (1 - psi) xbar + psi s), evaluated at one call site to keep
    the compiled code small.  Where the budget runs out the step ends before the evaluation,
    as the Python code's does."""
    n = sim.shape[1]
    for c in range(n):
        xbar[c] = sim[0, c]
    for j in range(1, n):
        for c in range(n):
            xbar[c] = xbar[c] + sim[j, c]
    for c in range(n):
        xbar[c] = xbar[c] / n
    a, b, above, stage = 1.0 + RHO, RHO, fsim[n], 0
    xr0 = xr1 = fxr = 0.0
    shrink = False
    while True:
        x0 = _clip(a * xbar[0] - b * sim[n, 0], lo[0], hi[0])
        x1 = _clip(a * xbar[1] - b * sim[n, 1], lo[1], hi[1])
        if left <= 0:
            return left
        left -= 1
        fx = _value(x0, x1, above, cache, kind, h_scale, u, w, wdet, wn, inv_b, log_target,
                    log_l0, hint, k_max, probe, max_bracket, overshoot, max_log_step, rel_width,
                    target)
        if stage == 0:                                   # reflection
            xr0, xr1, fxr = x0, x1, fx
            if fxr < fsim[0]:
                a, b, above, stage = 1.0 + RHO * CHI, RHO * CHI, fxr, 1
            elif fxr < fsim[n - 1]:
                sim[n, 0], sim[n, 1], fsim[n] = xr0, xr1, fxr
                return left
            elif fxr < fsim[n]:
                a, b, above, stage = 1.0 + PSI * RHO, PSI * RHO, fxr, 2
            else:
                a, b, above, stage = 1.0 - PSI, -PSI, fsim[n], 3
            continue
        if stage == 1:                                   # expansion
            if fx < fxr:
                sim[n, 0], sim[n, 1], fsim[n] = x0, x1, fx
            else:
                sim[n, 0], sim[n, 1], fsim[n] = xr0, xr1, fxr
            return left
        shrink = not fx <= fxr if stage == 2 else not fx < fsim[n]
        if not shrink:
            sim[n, 0], sim[n, 1], fsim[n] = x0, x1, fx
        break
    if shrink:
        for j in range(1, n + 1):
            for c in range(n):
                sim[j, c] = _clip(sim[0, c] + SIGMA * (sim[j, c] - sim[0, c]), lo[c], hi[c])
            if left <= 0:
                return left
            left -= 1
            fsim[j] = _value(sim[j, 0], sim[j, 1], math.inf, cache, kind, h_scale, u, w, wdet,
                             wn, inv_b, log_target, log_l0, hint, k_max, probe, max_bracket,
                             overshoot, max_log_step, rel_width, target)
    return left


@njit(cache=True, nogil=True)
def local_searches_pair(simplexes, lo, hi, xatol, fatol, maxfev, kind, h_scale, u, w, wdet, wn,
                        inv_b, log_target, log_l0, hint, k_max, probe, max_bracket, overshoot,
                        max_log_step, rel_width, target):
    """Nelder-Mead from each initial simplex `simplexes[s]` (3 x 2) within [lo, hi], on the
    objective of the module docstring: (best vertices (s, 2), their values (s,)), each search
    stopping when every |x_j - x_0| <= xatol and |f_0 - f_j| <= fatol or after `maxfev`
    evaluations.  One cache of values serves all searches."""
    m = simplexes.shape[0]
    cache = np.zeros((m * maxfev + 1, 3))    # row 0: the count; then (x0, x1, value)
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
        left = maxfev                   # evaluations left
        for j in range(n + 1):
            fsim[j] = math.inf
        for j in range(n + 1):
            if left <= 0:
                break
            left -= 1
            fsim[j] = _value(sim[j, 0], sim[j, 1], math.inf, cache, kind, h_scale, u, w, wdet,
                             wn, inv_b, log_target, log_l0, hint, k_max, probe, max_bracket,
                             overshoot, max_log_step, rel_width, target)
        _sort(sim, fsim)
        while left > 0:
            done = True
            for j in range(1, n + 1):
                for c in range(n):
                    if not abs(sim[j, c] - sim[0, c]) <= xatol:
                        done = False
                if not abs(fsim[0] - fsim[j]) <= fatol:
                    done = False
            if done:
                break
            left = _step(sim, fsim, xbar, lo, hi, left, cache, kind, h_scale, u, w,
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
