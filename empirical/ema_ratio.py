"""A ratio of two bias-corrected exponential moving averages, with a delta-method interval.

Given a stream of paired estimates (a_n, b_n), n = 1, 2, ... (for the gradient noise scale:
a = an unbiased tr(Sigma), b = an unbiased |G|^2), numerator and denominator are averaged
separately with decay beta and the bias correction of Adam (Kingma & Ba 2015, section 3):

    m_a(n) = beta m_a(n-1) + (1 - beta) a_n,   m_a(0) = 0,   A_n = m_a(n) / (1 - beta^n)

(and B_n alike), then R_n = A_n / B_n (McCandlish et al. 2018, arXiv 1812.06162, appendix A:
average numerator and denominator before dividing; the mean of ratios is biased).  A_n is the
weighted mean sum_i w_i a_i with w_i = (1 - beta) beta^(n-i) / (1 - beta^n) (sum w_i = 1), so
the first update gives R_1 = a_1 / b_1 exactly.

Uncertainty, treating the estimates as independent draws with a common mean and covariance
(batches drawn afresh each update, parameters moving slowly against the averaging window).
A_n is the weighted mean sum_i w_i a_i, so

    Var(A_n) = W_n V_a,   W_n = sum_i w_i^2 = (1 - beta)(1 + beta^n) / ((1 + beta)(1 - beta^n))

where V_a, V_b, C_ab are the (co)variances of the raw estimates, estimated with the same
weights and the reliability-weights correction 1 / (1 - W_n); 1 / W_n is the effective number
of updates averaged.  The standard error is the delta method's,

    se(R_n) = sqrt(W_n (V_a - 2 R_n C_ab + R_n^2 V_b)) / B_n,

and the interval is Fieller's (Fieller 1954), which stays valid when the denominator is not
resolved: the set of rho with (A_n - rho B_n)^2 <= z^2 W_n (V_a - 2 rho C_ab + rho^2 V_b), a
quadratic inequality q2 rho^2 - 2 q1 rho + q0 <= 0 with q2 = B_n^2 - z^2 W_n V_b.  When B_n is
significantly positive (q2 > 0) it is the bounded interval between the roots, close to
R_n -+ z se(R_n) when B_n is well resolved; otherwise its upper end is +inf (|G|^2 is not
resolved: B_simple could be arbitrarily large).  Since tr(Sigma) / |G|^2 >= 0, the lower end
is clipped at 0.  z = 1.96: 95%.  It needs n >= 2; while B_n <= 0 the ratio is None and the
interval [0, inf).
Drift of the true value inside the window inflates V_a and V_b (the interval is then
conservative for the window's mean), and the EMA lags the current value by about
beta / (1 - beta) updates.  Coverage checked in tests/empirical/test_track.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RatioEstimate:
    """R_n = A_n / B_n with its standard error and interval (None where not defined)."""

    n: int
    numerator: float          # A_n
    denominator: float        # B_n
    ratio: float | None       # None while B_n <= 0
    se: float | None          # None for n < 2 or B_n <= 0
    interval: tuple[float, float] | None     # None for n < 2; high end inf: not resolved
    effective_n: float        # 1 / W_n


def fieller(a: float, b: float, va: float, vb: float, cab: float, z: float
            ) -> tuple[float, float]:
    """Fieller's interval for a/b given Var(a) = va, Var(b) = vb, Cov(a, b) = cab, clipped
    below at 0 (module docstring); the upper end is math.inf when b is not resolved."""
    q2, q1, q0 = b * b - z * z * vb, a * b - z * z * cab, a * a - z * z * va
    root = math.sqrt(max(q1 * q1 - q2 * q0, 0.0))
    if q2 > 0:                                     # b resolved: between the roots
        return (max((q1 - root) / q2, 0.0), (q1 + root) / q2)
    if q2 < 0 and root > 0:                        # outside the roots: keep a / b's side
        upper_root = (q1 - root) / q2
        if a / b >= upper_root:
            return (max(upper_root, 0.0), math.inf)
    return (0.0, math.inf)


class EmaRatio:
    """Running bias-corrected EMAs of (a, b, a^2, b^2, ab) and the ratio of the module
    docstring.  `beta` in [0, 1) (0: the last pair only), `z` > 0."""

    def __init__(self, beta: float, z: float = 1.96):
        self.beta, self.z = float(beta), float(z)
        self.n = 0
        self._m = [0.0] * 5        # raw EMAs of a, b, a^2, b^2, a b

    def add(self, a: float, b: float) -> RatioEstimate:
        """Add the pair (a_n, b_n) and return the estimate after it."""
        self.n += 1
        for i, v in enumerate((a, b, a * a, b * b, a * b)):
            self._m[i] = self.beta * self._m[i] + (1.0 - self.beta) * v
        return self.estimate()

    def weight_sq_sum(self) -> float:
        """W_n = sum_i w_i^2 (1 for n = 1; 1 - beta)/(1 + beta) as n -> infinity)."""
        bn = self.beta ** self.n
        return (1 - self.beta) * (1 + bn) / ((1 + self.beta) * (1 - bn))

    def estimate(self) -> RatioEstimate:
        """The current R_n, its standard error and interval (module docstring)."""
        if self.n == 0:
            raise ValueError("no estimate before the first update")
        corr = 1.0 - self.beta ** self.n
        a, b, aa, bb, ab = (m / corr for m in self._m)
        w2 = self.weight_sq_sum()
        ratio = a / b if b > 0 else None
        se = interval = None
        if ratio is not None and self.n >= 2 and w2 < 1.0:
            k = 1.0 / (1.0 - w2)                         # reliability-weights correction
            va, vb, cab = k * (aa - a * a), k * (bb - b * b), k * (ab - a * b)
            se = math.sqrt(w2 * max(va - 2 * ratio * cab + ratio * ratio * vb, 0.0)) / b
            interval = fieller(a, b, w2 * va, w2 * vb, w2 * cab, self.z)
        elif self.n >= 2:                                # B_n <= 0: nothing resolved
            interval = (0.0, math.inf)
        return RatioEstimate(self.n, a, b, ratio, se, interval, 1.0 / w2)
