"""Nelder-Mead with bounds on Python floats: the algorithm, the arithmetic and the order of
evaluations of `scipy.optimize.minimize(method="Nelder-Mead", bounds=...)` with a given initial
simplex (Nelder & Mead 1965; scipy's standard coefficients and its bound handling: every
trial point clipped to the box), without numpy's per-operation cost on tiny arrays.

With N coordinates and vertices x_0..x_N sorted by f (x_0 best), centroid
xbar = (x_0 + ... + x_{N-1}) / N and s = x_N, the trial points are

    reflection   x_r  = (1 + rho) xbar - rho s                rho = 1
    expansion    x_e  = (1 + rho chi) xbar - rho chi s        chi = 2
    contraction  x_c  = (1 + psi rho) xbar - psi rho s        psi = 1/2   (f(x_r) < f(s))
    inside       x_cc = (1 - psi) xbar + psi s                            (otherwise)
    shrink       x_j <- x_0 + sigma (x_j - x_0), j >= 1       sigma = 1/2

each clipped to [lo, hi] per coordinate; the search stops when every |x_j - x_0| <= xatol and
every |f_0 - f_j| <= fatol, or after `maxfev` evaluations.  Every float operation is the one
scipy performs elementwise, so the same function gives the same points and the same answer.

Some values only matter through one comparison: a reflection no better than the worst vertex
(f(x_r) >= f(s): inside contraction, x_r dropped), an expansion no better than its reflection,
a contraction that fails (shrink).  For those `func(x, above)` is told the threshold and may
return any number > `above` once it knows that f(x) > above (an expensive f can stop early);
the steps taken are the same as with f(x) itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

RHO, CHI, PSI, SIGMA = 1, 2, 0.5, 0.5


class _Budget(Exception):
    """The evaluation budget is spent."""


def _clip(v: float, lo: float, hi: float) -> float:
    """`np.clip` of one number: max(v, lo), then min(., hi), each keeping the bound on a tie
    (so the sign of a zero is numpy's) and a NaN as it is."""
    v = v if v > lo or v != v else lo
    return v if v < hi or v != v else hi


def _sorted(sim: list, fsim: list) -> tuple[list, list]:
    """Vertices and values in numpy's `argsort` order of the values: any sort when the values
    are distinct numbers, numpy's own otherwise (its order of ties and NaNs)."""
    order = sorted(range(len(fsim)), key=fsim.__getitem__)
    if not all(fsim[i] < fsim[j] for i, j in zip(order, order[1:])):    # a tie or a NaN
        order = np.argsort(np.array(fsim)).tolist()
    return [sim[i] for i in order], [fsim[i] for i in order]


def nelder_mead(func: Callable[[np.ndarray], float], simplex: Sequence[Sequence[float]],
                bounds: Sequence[tuple[float, float]], xatol: float, fatol: float,
                maxfev: int) -> tuple[np.ndarray, float]:
    """(x, f(x)) of the best vertex at the end (module docstring); `func(x, above)` receives
    a fresh float64 array per call, in scipy's order, and may return any number > `above`
    instead of f(x) when f(x) > above (module docstring)."""
    lo = [float(a) for a, _ in bounds]
    hi = [float(b) for _, b in bounds]
    n = len(lo)
    calls = 0

    def clip(x):
        return [_clip(v, a, b) for v, a, b in zip(x, lo, hi)]

    def f(x, above=math.inf):
        nonlocal calls
        if calls >= maxfev:
            raise _Budget
        calls += 1
        return func(np.array(x, dtype=np.float64), above)

    # a vertex above an upper bound is reflected into the box, then all are clipped
    sim = [clip([2 * b - v if v > b else v for v, b in zip(map(float, row), hi)])
           for row in simplex]
    fsim = [math.inf] * (n + 1)
    try:
        for k in range(n + 1):
            fsim[k] = f(sim[k])
    except _Budget:
        pass
    sim, fsim = _sorted(*_sorted(sim, fsim))         # scipy sorts twice here
    while calls < maxfev:
        try:
            if (all(abs(v - v0) <= xatol for row in sim[1:] for v, v0 in zip(row, sim[0]))
                    and all(abs(fsim[0] - fj) <= fatol for fj in fsim[1:])):
                break
            xbar = list(sim[0])
            for row in sim[1:-1]:
                xbar = [a + b for a, b in zip(xbar, row)]
            xbar = [a / n for a in xbar]
            s = sim[-1]
            xr = clip([(1 + RHO) * a - RHO * b for a, b in zip(xbar, s)])
            fxr = f(xr, fsim[-1])
            if fxr < fsim[0]:
                xe = clip([(1 + RHO * CHI) * a - RHO * CHI * b for a, b in zip(xbar, s)])
                fxe = f(xe, fxr)
                sim[-1], fsim[-1] = (xe, fxe) if fxe < fxr else (xr, fxr)
            elif fxr < fsim[-2]:
                sim[-1], fsim[-1] = xr, fxr
            else:
                if fxr < fsim[-1]:
                    xc = clip([(1 + PSI * RHO) * a - PSI * RHO * b for a, b in zip(xbar, s)])
                    fxc = f(xc, fxr)
                    shrink = not fxc <= fxr
                    if not shrink:
                        sim[-1], fsim[-1] = xc, fxc
                else:
                    xcc = clip([(1 - PSI) * a + PSI * b for a, b in zip(xbar, s)])
                    fxcc = f(xcc, fsim[-1])
                    shrink = not fxcc < fsim[-1]
                    if not shrink:
                        sim[-1], fsim[-1] = xcc, fxcc
                if shrink:
                    for j in range(1, n + 1):
                        sim[j] = clip([a + SIGMA * (b - a) for a, b in zip(sim[0], sim[j])])
                        fsim[j] = f(sim[j])
        except _Budget:
            pass
        sim, fsim = _sorted(sim, fsim)
    return np.array(sim[0], dtype=np.float64), float(np.min(fsim))
