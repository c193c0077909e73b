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

`estimate` applies both definitions and judges how far each value can be trusted (rules in its
docstring): values outside the measured batch sizes are flagged as extrapolated, values the data
cannot determine (too few points, steps that do not fall or that rise with B) are None with the
reason, and the bootstrap interval needs three batch sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from scipy.optimize import nnls

from nqm.errors import NQMInputError


class McCandlishFit(NamedTuple):
    """S(B) = S_min + E_min / B fitted to steps per batch size, and B_crit = E_min / S_min
    (McCandlish et al. 2018)."""

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


def crossing_fraction(y0: float, y1: float, level: float) -> float:
    """Where a line from y0 to y1 meets `level`, as a fraction of the way: (y0 - level) / (y0 - y1)
    (1 when y0 = y1).  Used in log coordinates for the first crossings of steps and losses."""
    return (y0 - level) / (y0 - y1) if y0 != y1 else 1.0


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
    frac = crossing_fraction(lr0, lr1, math.log(level))
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


FLAT_FACTOR = 10.0    # B_crit this far below the smallest batch size: steps do not fall
RISE_TOLERANCE = 0.25  # a rise in steps between neighbouring batch sizes above this is flagged
EXACT_FIT = 1e-9       # relative residuals all below this: no noise for the bootstrap to resample
DEFINITIONS = ("mccandlish", "overhead_20pct")


def merge_duplicates(batch_sizes, steps) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Reached points sorted by batch size, one per batch size, and a warning per duplicate.

    A batch size given more than once is one point whose steps are the geometric mean of its
    reached step counts (the fit works on relative residuals, so the mean of log steps is the
    natural average); rows not reached are dropped as everywhere else.
    """
    b_all = np.asarray(batch_sizes, dtype=np.float64)
    b, s = _clean(batch_sizes, steps)
    warnings = []
    uniq, first, counts = np.unique(b, return_index=True, return_counts=True)
    if np.any(counts > 1):
        s = np.exp(np.add.reduceat(np.log(s), first) / counts)
        for bb, n in zip(uniq[counts > 1], counts[counts > 1]):
            warnings.append(f"batch size {bb:g} has {n} reached step counts: they are "
                            f"averaged (geometric mean)")
    for bb, n in zip(uniq[counts == 1], (np.sum(b_all == x) for x in uniq[counts == 1])):
        if n > 1:
            warnings.append(f"batch size {bb:g} is given {n} times; only one of them reached "
                            f"the target and is used")
    return uniq, s, warnings


@dataclass(frozen=True)
class CriticalEstimate:
    """Both critical batch sizes with the judgement of how far each can be trusted.

    `values[name]` is None when `not_determined[name]` says why; names in `extrapolated` lie
    outside `batch_range`, the smallest and largest reached batch size; `interval` holds the
    bootstrap percentile intervals when they were asked for (None otherwise), with
    `not_determined["interval"]` when they cannot be formed.
    """

    values: dict
    s_min: float | None
    e_min: float | None
    batch_range: tuple[float, float] | None
    extrapolated: tuple[str, ...] = ()
    not_determined: dict = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    interval: dict | None = None
    level: float = 0.95

    def flags(self) -> dict:
        """The JSON record of the judgement (`critical_batch_size_flags`)."""
        return {"batch_size_range": None if self.batch_range is None else list(self.batch_range),
                "extrapolated": list(self.extrapolated),
                "not_determined": dict(self.not_determined),
                "warnings": list(self.warnings),
                "rules": {"extrapolated": "value outside the smallest..largest reached batch "
                                          "size",
                          "flat": f"mccandlish B_crit below the smallest batch size / "
                                  f"{FLAT_FACTOR:g}: not determined",
                          "rising": f"a step count more than {RISE_TOLERANCE:.0%} above the "
                                    f"one at the next smaller batch size is warned about",
                          "interval": "bootstrap needs reached targets at >= 3 batch sizes "
                                      f"and relative residuals not all below {EXACT_FIT:g}"}}


def estimate(batch_sizes, steps, n_resamples: int = 0, seed: int = 0,
             level: float = 0.95) -> CriticalEstimate:
    """Both definitions on the reached points, judged by these rules.

    * duplicates: a batch size given more than once counts once, with the geometric mean of its
      reached steps (`merge_duplicates`), and a warning says so;
    * fewer than two reached batch sizes: neither definition is determined;
    * mccandlish: not determined when S_min is 0 to rounding, below EXACT_FIT times the
      smallest step count (steps fall as 1/B throughout: B_crit lies above the largest batch
      size), or when B_crit < B_min / FLAT_FACTOR, E_min = 0 included
      (the fit's S_min explains all the data).  In the second case the steps "rise with batch
      size" when the least-squares line of log S on log B rises by more than RISE_TOLERANCE over
      the measured range, and otherwise "do not fall" (maximal data parallelism already);
    * overhead_20pct: not determined when S B / (S_0 B_0) stays below 1.2 up to the largest B;
    * a determined value outside [B_min, B_max] is reported and flagged as extrapolated;
    * a step count more than RISE_TOLERANCE (25%) above the one at the next smaller batch size
      gives a warning: the fit assumes steps that do not rise with B, and the best-of-trials
      minimum of a sweep is not expected to be that noisy;
    * with n_resamples > 0, the residual bootstrap of `bootstrap` at `seed`; it needs three or
      more batch sizes (with two, the two-parameter fit leaves all residuals zero and the
      interval would have zero width) and residuals not all below EXACT_FIT (noise-free data
      have nothing to resample); it is None for a value that is not determined.
    """
    b, s, warnings = merge_duplicates(batch_sizes, steps)
    values = dict.fromkeys(DEFINITIONS)
    not_determined = {}
    if b.size < 2:
        reason = "needs reached targets at two or more batch sizes"
        nd = {k: reason for k in DEFINITIONS}
        if n_resamples:
            nd["interval"] = reason
        return CriticalEstimate(values, None, None,
                                (float(b[0]), float(b[0])) if b.size else None,
                                not_determined=nd, warnings=tuple(warnings),
                                interval={k: [None, None] for k in
                                          ("s_min", "e_min", *DEFINITIONS)}
                                if n_resamples else None, level=level)
    lo, hi = float(b[0]), float(b[-1])
    fit = fit_mccandlish(b, s)
    if fit.s_min <= EXACT_FIT * s.min():
        not_determined["mccandlish"] = ("steps fall as 1/B over the whole range (perfect "
                                        f"scaling): B_crit lies above the largest batch size "
                                        f"{hi:g}")
    elif fit.b_crit < lo / FLAT_FACTOR:
        slope = np.polyfit(np.log(b), np.log(s), 1)[0]
        if math.exp(slope * math.log(hi / lo)) > 1.0 + RISE_TOLERANCE:
            not_determined["mccandlish"] = "steps rise with batch size"
        else:
            not_determined["mccandlish"] = ("steps do not fall with batch size (already "
                                            "maximal data parallelism over the measured range)")
    else:
        values["mccandlish"] = fit.b_crit
    values["overhead_20pct"] = overhead_batch_size(b, s)
    if values["overhead_20pct"] is None:
        not_determined["overhead_20pct"] = ("steps stay within 20% of perfect scaling up to the "
                                            f"largest batch size {hi:g}")
    extrapolated = tuple(k for k in DEFINITIONS
                         if values[k] is not None and not lo <= values[k] <= hi)
    rises = [f"{b[i]:g} -> {b[i + 1]:g} (+{s[i + 1] / s[i] - 1:.0%})"
             for i in range(b.size - 1) if s[i + 1] > (1.0 + RISE_TOLERANCE) * s[i]]
    if rises:
        warnings.append(f"steps rise by more than {RISE_TOLERANCE:.0%} from one batch size to "
                        f"the next at B = {', '.join(rises)}; the fit assumes steps that do not "
                        f"rise with batch size")
    interval = None
    if n_resamples:
        resid = s / (fit.s_min + fit.e_min / b) - 1.0
        if b.size < 3 or np.all(np.abs(resid) < EXACT_FIT):
            not_determined["interval"] = (
                f"the residuals of the two-parameter fit to {b.size} batch sizes are all zero; "
                f"need >= 3 batch sizes" if b.size < 3 else
                f"the fit leaves no residuals (all below {EXACT_FIT:g}): nothing to resample")
            interval = {k: [None, None] for k in ("s_min", "e_min", *DEFINITIONS)}
        else:
            interval = bootstrap(b, s, n_resamples=n_resamples, seed=seed, level=level)
            for k in DEFINITIONS:
                if values[k] is None:
                    interval[k] = [None, None]
    return CriticalEstimate(values, fit.s_min, fit.e_min, (lo, hi), extrapolated,
                            not_determined, tuple(warnings), interval, level)


def lower_bound_steps(spectrum_h, spectrum_c, count, target: float, batch_size: float) -> float:
    """Information-theoretic lower bound: k >= sum_i count_i (c_i / h_i) / (2 target B).

    After k B samples no unbiased estimator of theta_i has variance below c_i / (h_i^2 k B)
    (Cramer-Rao), so the expected loss is >= sum_i count_i c_i / (2 h_i k B).  For C = H this is
    Zhang et al.'s d / (2 target B).  It ignores what the initial distribution s0 tells, so it
    applies while the step count is large compared with the time to forget s0.
    """
    return float(np.sum(count * spectrum_c / spectrum_h) / (2.0 * target * batch_size))
