"""A ratio of two bias-corrected exponential moving averages, with a delta-method interval.

Given a stream of paired estimates (a_n, b_n), n = 1, 2, ... (for the gradient noise scale:
a = an unbiased tr(Sigma), b = an unbiased |G|^2), numerator and denominator are averaged
separately with decay beta and the bias correction of Adam (Kingma & Ba 2015, section 3):

    m_a(n) = beta m_a(n-1) + (1 - beta) a_n,   m_a(0) = 0,   A_n = m_a(n) / (1 - beta^n)

(and B_n alike), then R_n = A_n / B_n (McCandlish et al. 2018, arXiv 1812.06162, appendix A:
average numerator and denominator before dividing; the mean of ratios is biased).  A_n is the
weighted mean sum_i w_i a_i with w_i = (1 - beta) beta^(n-i) / (1 - beta^n) (sum w_i = 1), so
the first update gives R_1 = a_1 / b_1 exactly.

Uncertainty (delta method, treating the estimates as independent draws with a common mean and
covariance: batches drawn afresh each update, parameters moving slowly against the averaging
window):

    Var(A_n) = W_n V_a,   W_n = sum_i w_i^2 = (1 - beta)(1 + beta^n) / ((1 + beta)(1 - beta^n))
    se(R_n)  = sqrt(W_n (V_a - 2 R_n C_ab + R_n^2 V_b)) / B_n

where V_a, V_b, C_ab are the weighted (co)variances of the raw estimates, estimated with the
same weights and the reliability-weights correction 1 / (1 - W_n).  The interval is
R_n +- z se(R_n) (z = 1.96: 95%); 1 / W_n is the effective number of updates averaged.  It
needs n >= 2, and is None while B_n <= 0.  Drift of the true value inside the window inflates
V_a and V_b (the interval is then conservative for the window's mean) but the EMA lags the
current value by about beta / (1 - beta) updates.  Coverage checked in
tests/empirical/test_track.py.
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
    interval: tuple[float, float] | None
    effective_n: float        # 1 / W_n


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
            var = w2 * max(va - 2 * ratio * cab + ratio * ratio * vb, 0.0)
            se = math.sqrt(var) / b
            interval = (ratio - self.z * se, ratio + self.z * se)
        return RatioEstimate(self.n, a, b, ratio, se, interval, 1.0 / w2)
