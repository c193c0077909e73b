"""Critical batch size from a steps-versus-batch-size curve, by two named definitions.

mccandlish (McCandlish et al. 2018, arXiv 1812.06162, eq. 2.11): steps S and examples E = B S
satisfy (S / S_min - 1)(E / E_min - 1) = 1, i.e.
    S(B) = S_min (1 + B_crit / B) = S_min + E_min / B,   B_crit = E_min / S_min.
The fit used here is exactly: non-negative least squares for (S_min, E_min) in the model
S_i ~ S_min + E_min / B_i, each residual divided by the measured S_i, i.e. it minimises
sum_i ((S_min + E_min / B_i - S_i) / S_i)^2 (relative errors, so every batch size counts alike).

overhead_20pct: the batch size at which steps exceed perfect scaling from the smallest batch
size B_0 by 20%: the ratio r_i = S_i B_i / (S_0 B_0) is interpolated linearly in
(log B, log r) between the first pair of neighbours that straddles r = 1.2.

Only batch sizes whose target was reached enter either definition.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.optimize import nnls

from nqm.errors import NQMInputError


class McCandlishFit(NamedTuple):
    s_min: float
    e_min: float
    b_crit: float


def _clean(batch_sizes, steps) -> tuple[np.ndarray, np.ndarray]:
    b = np.asarray(batch_sizes, dtype=np.float64)
    s = np.asarray([np.nan if x is None else x for x in steps], dtype=np.float64)
    if b.shape != s.shape or b.ndim != 1:
        raise NQMInputError(f"batch sizes and steps differ in length ({b.size} vs {s.size})")
    if np.any(~np.isfinite(b)) or np.any(b <= 0):
        i = int(np.flatnonzero(~(np.isfinite(b) & (b > 0)))[0])
        raise NQMInputError(f"batch size at row {i} must be a finite number > 0, got {b[i]}")
    ok = np.isfinite(s)
    if np.any(s[ok] <= 0):
        i = int(np.flatnonzero(ok & (s <= 0))[0])
        raise NQMInputError(f"steps at row {i} must be > 0, got {s[i]}")
    order = np.argsort(b[ok], kind="stable")
    return b[ok][order], s[ok][order]


def fit_mccandlish(batch_sizes, steps) -> McCandlishFit:
    """S_min, E_min and B_crit = E_min / S_min by the weighted fit of the module docstring."""
    b, s = _clean(batch_sizes, steps)
    if np.unique(b).size < 2:
        raise NQMInputError("the McCandlish fit needs reached targets at two or more batch sizes")
    design = np.stack([1.0 / s, 1.0 / (b * s)], axis=1)
    (s_min, e_min), _ = nnls(design, np.ones_like(s))
    b_crit = e_min / s_min if s_min > 0 else math.inf
    return McCandlishFit(float(s_min), float(e_min), float(b_crit))


def overhead_batch_size(batch_sizes, steps, overhead: float = 0.2) -> float | None:
    """Batch size where S B / (S_0 B_0) first reaches 1 + overhead (None if it never does)."""
    b, s = _clean(batch_sizes, steps)
    if b.size < 2:
        return None
    r = s * b / (s[0] * b[0])
    level = 1.0 + overhead
    above = np.flatnonzero(r >= level)
    if above.size == 0:
        return None
    i = int(above[0])
    if i == 0:
        return float(b[0])
    lr0, lr1 = math.log(r[i - 1]), math.log(r[i])
    frac = (math.log(level) - lr0) / (lr1 - lr0) if lr1 != lr0 else 1.0
    return float(math.exp(math.log(b[i - 1]) + frac * (math.log(b[i]) - math.log(b[i - 1]))))


def bootstrap(batch_sizes, steps, n_resamples: int = 1000, seed: int = 0,
              level: float = 0.95) -> dict:
    """Percentile intervals for S_min, E_min and both critical batch sizes.

    Residual bootstrap for the fixed design of batch sizes: the relative residuals
    e_i = S_i / S_fit(B_i) - 1 of the McCandlish fit are resampled with replacement (e*).
    The fit's parameters come from refitting S*_i = S_fit(B_i)(1 + e*_i).  The overhead batch
    size is a property of the data, not of the fit (which may be misspecified), so it is
    recomputed on the perturbed data S_i (1 + e*_i - mean(e)).
    """
    b, s = _clean(batch_sizes, steps)
    fit = fit_mccandlish(b, s)
    if n_resamples < 10:
        raise NQMInputError(f"bootstrap needs at least 10 resamples, got {n_resamples}")
    rng = np.random.default_rng(seed)
    s_fit = fit.s_min + fit.e_min / b
    resid = s / s_fit - 1.0
    draws = {"s_min": [], "e_min": [], "mccandlish": [], "overhead_20pct": []}
    for _ in range(n_resamples):
        e_star = rng.choice(resid, size=resid.size, replace=True)
        f = fit_mccandlish(b, np.maximum(s_fit * (1.0 + e_star), 1e-12))
        draws["s_min"].append(f.s_min)
        draws["e_min"].append(f.e_min)
        draws["mccandlish"].append(f.b_crit)
        o = overhead_batch_size(b, np.maximum(s * (1.0 + e_star - resid.mean()), 1e-12))
        draws["overhead_20pct"].append(np.nan if o is None else o)
    alpha = (1.0 - level) / 2.0
    out = {}
    for key, vals in draws.items():
        v = np.asarray(vals, dtype=np.float64)
        v = v[np.isfinite(v)]
        out[key] = ([float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha))]
                    if v.size else [None, None])
    return out


def lower_bound_steps(spectrum_h, spectrum_c, count, target: float, batch_size: float) -> float:
    """Information-theoretic lower bound: k >= sum_i count_i (c_i / h_i) / (2 target B).

    After k B samples no unbiased estimator of theta_i has variance below c_i / (h_i^2 k B)
    (Cramer-Rao), so the expected loss is >= sum_i count_i c_i / (2 h_i k B).  For C = H this is
    Zhang et al.'s d / (2 target B).  It ignores what the initial distribution s0 tells, so it
    applies while the step count is large compared with the time to forget s0.
    """
    return float(np.sum(count * spectrum_c / spectrum_h) / (2.0 * target * batch_size))
