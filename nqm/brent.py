"""Brent's bounded minimisation on Python floats: the algorithm, the arithmetic and the order of
evaluations of `scipy.optimize.minimize_scalar(method="bounded")` (Brent 1973, chapter 5:
golden-section steps safeguarding parabolic interpolation; scipy's `fminbound`), without
numpy's per-operation cost on scalars.

With bracket [a, b], best point xf (value fx), second best nfc, third fulc, and the tolerance
tol1 = sqrt(2.2e-16) |xf| + xatol / 3: while |xf - (a + b) / 2| > 2 tol1 - (b - a) / 2, try
the parabola through the three points; take its minimum if it lies inside the bracket and
moves less than half the step before last, else a golden-section step of
(3 - sqrt 5) / 2 of the larger part of the bracket; never step less than tol1.  Stops after
`maxiter` evaluations.  Every float operation is the one scipy performs, so the same function
gives the same points and the same answer (tested against scipy).
"""

from __future__ import annotations

import math
from collections.abc import Callable

SQRT_EPS = math.sqrt(2.2e-16)
GOLDEN = 0.5 * (3.0 - math.sqrt(5.0))


def _sign(v: float) -> float:
    """np.sign(v) + (v == 0): -1, or 1 for v >= 0; NaN stays NaN."""
    if v != v:
        return v
    return -1.0 if v < 0 else 1.0


def minimize_bounded(func: Callable[[float], float], lo: float, hi: float, xatol: float,
                     maxiter: int = 500) -> tuple[float, float]:
    """(x, func(x)) of the best point found in [lo, hi] (module docstring)."""
    a, b = float(lo), float(hi)
    fulc = a + GOLDEN * (b - a)
    nfc = xf = x = fulc
    rat = e = 0.0
    fx = func(x)
    num = 1
    ffulc = fnfc = fx
    xm = 0.5 * (a + b)
    tol1 = SQRT_EPS * abs(xf) + xatol / 3.0
    tol2 = 2.0 * tol1
    while abs(xf - xm) > (tol2 - 0.5 * (b - a)):
        golden = True
        if abs(e) > tol1:                                  # a parabolic fit?
            golden = False
            r = (xf - nfc) * (fx - ffulc)
            q = (xf - fulc) * (fx - fnfc)
            p = (xf - fulc) * q - (xf - nfc) * r
            q = 2.0 * (q - r)
            if q > 0.0:
                p = -p
            q = abs(q)
            r = e
            e = rat
            if abs(p) < abs(0.5 * q * r) and p > q * (a - xf) and p < q * (b - xf):
                rat = (p + 0.0) / q
                x = xf + rat
                if (x - a) < tol2 or (b - x) < tol2:
                    rat = tol1 * _sign(xm - xf)
            else:
                golden = True
        if golden:
            e = a - xf if xf >= xm else b - xf
            rat = GOLDEN * e
        step = abs(rat)
        x = xf + _sign(rat) * (step if step > tol1 or step != step else tol1)
        fu = func(x)
        num += 1
        if fu <= fx:
            if x >= xf:
                a = xf
            else:
                b = xf
            fulc, ffulc = nfc, fnfc
            nfc, fnfc = xf, fx
            xf, fx = x, fu
        else:
            if x < xf:
                a = x
            else:
                b = x
            if fu <= fnfc or nfc == xf:
                fulc, ffulc = nfc, fnfc
                nfc, fnfc = x, fu
            elif fu <= ffulc or fulc == xf or fulc == nfc:
                fulc, ffulc = x, fu
        xm = 0.5 * (a + b)
        tol1 = SQRT_EPS * abs(xf) + xatol / 3.0
        tol2 = 2.0 * tol1
        if num >= maxiter:
            break
    return xf, fx
