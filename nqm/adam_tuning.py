"""Per-batch-size tuning of the mean-field Adam (`nqm.adam`): the fewest steps to the target
over lr and beta1 (Shallue et al. 2019, arXiv 1811.03600; beta2 and eps fixed, as the sweeps
fix them).

Coordinates (logarithmic): z_lr = log(lr / lr_unit) (`nqm.adam.lr_unit`), z_m = log(1 - beta1).
For each batch size B:
  1. a grid of `grid_lr` x `grid_beta` points over the box, each scored by its first crossing,
     largest lr first; a run stops at the best crossing found so far (it can only be worse
     beyond it), and at first at FIRST_CAP steps (while none reaches the target, a few points
     per beta1 row run on with an eightfold cap); where the best crossing is at most
     DENSE_BELOW steps, the grid is redone DENSE_FACTOR times denser (cheap there, and the
     crossing is jagged there);
  2. Nelder-Mead (`nqm.simplex`) from the grid's best local minima (N_STARTS) on a smooth
     surrogate: the crossing interpolated in log loss between its two steps,
     k - 1 + (log L(k-1) - log T) / (log L(k-1) - log L(k)); a target not reached scores
     `nqm.tuning.unreached_score`, a diverged run that of a loss e^50 times the target;
  3. the best of those end points and starts (by integer crossing), then a pattern search on
     the integer crossing itself (it is jagged where the loss oscillates).
An optimum on an lr bound or the upper beta1 bound widens that bound
(`nqm.search_space.WIDEN_FACTOR`, at most MAX_WIDENINGS times) and repeats 1-3; the best
crossing over the boxes is kept.  A target not reached on the grid within the budget is
reported as not reached, without steps 2-3 and without widening.
No stability limit bounds lr: the normalised step shrinks when the gradient grows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from nqm.adam import AdamConfig, kernel_arrays, lr_unit
from nqm.checks import DEFAULT_MAX_STEPS, check_batch_sizes, check_budget, check_target
from nqm.errors import NQMInputError
from nqm.search_space import WIDEN_FACTOR
from nqm.simplex import nelder_mead
from nqm.spectrum import Spectrum
from nqm.tuning import UNREACHED_CAP, TunedPoint, unreached_score

MAX_WIDENINGS = 3
FIRST_CAP = 1000      # the grid's first runs stop here (raised while nothing reaches the target)
DENSE_BELOW = 64      # a grid crossing at or below this many steps: the grid is redone ...
DENSE_FACTOR = 4      # ... this many times denser (the crossing is jagged at few steps)
DEEPEN_KEEP = 4       # per beta1 row, grid points run on with a larger cap (`_deepened`)
N_STARTS = 3          # local searches from this many of the grid's local minima and best points
PATTERN_STEPS = (0.3, 0.1, 0.03, 0.01)   # the pattern search's moves, in log coordinates
EDGE = 0.05           # an optimum within this (in log coordinates) of a bound sits on it


@dataclass(frozen=True)
class AdamSpace:
    """The search box (lr / lr_unit, 1 - beta1), the grid sizes and Nelder-Mead's tolerances."""

    lr_ratio: tuple[float, float] = (1e-6, 10.0)
    one_minus_beta1: tuple[float, float] = (1e-3, 1.0)
    grid_lr: int = 25
    grid_beta: int = 9
    xatol: float = 0.02
    fatol: float = 0.01
    maxfev: int = 200


class _Objective:
    """The surrogate of step 2 and the integer crossing of step 3 at z = (z_lr, z_m), on one
    quadratic or on a chain of them (`nqm.adam_path`): segment j runs from its own start to
    its own target, and the crossings and their surrogates add up (`run`)."""

    def __init__(self, segments, batch_size: float, max_steps: int, beta2: float, eps: float,
                 unit: float):
        """segments: (spectrum, target) pairs in order; unit: lr's unit (`lr_unit`)."""
        self.segments = [(kernel_arrays(sp), float(t), math.log(t)) for sp, t in segments]
        self.unit, self.batch_size, self.max_steps = unit, batch_size, max_steps
        self.beta2, self.eps = beta2, eps

    def config(self, z) -> AdamConfig:
        """The Adam settings at z."""
        return AdamConfig(lr=self.unit * math.exp(z[0]), beta1=1.0 - math.exp(z[1]),
                          beta2=self.beta2, eps=self.eps)

    def run(self, z, cap: int) -> tuple[float, int | None, list[int]]:
        """(step 2's value, the integer crossing or None, each segment's crossing) of runs
        stopped at `cap`: every segment runs on its own from its start, at most `cap` steps
        (`nqm._adam_kernels.first_crossing`).  The values add over the segments: a reached
        segment its interpolated crossing, one not reached `nqm.tuning.unreached_score`, a
        diverged one cap (1 + UNREACHED_CAP), so that finishing a segment always lowers the
        value.  The integer crossing is the sum of the segments' when every one is reached and
        the sum is at most `cap`."""
        from nqm import _adam_kernels as _k

        cfg = self.config(z)
        total, ks, reached = 0.0, [], True
        for arrays, target, log_t in self.segments:
            k, log_loss, log_before = _k.first_crossing(*arrays, self.batch_size, cfg.lr,
                                                        cfg.beta1, cfg.beta2, cfg.eps, target,
                                                        cap)
            if k > 0:
                drop = log_before - log_loss
                total += k - 1 + ((log_before - log_t) / drop if drop > 0 else 1.0)
                ks.append(int(k))
            else:
                reached = False
                total += (cap * (1.0 + UNREACHED_CAP) if k == -2
                          else unreached_score(cap, math.exp(log_loss), log_t))
        steps = sum(ks) if reached and sum(ks) <= cap else None
        return total, steps, ks

    def scored(self, z, cap: int) -> tuple[float, int | None]:
        """Step 2's value and the integer crossing (None: none) of one run stopped at `cap`."""
        return self.run(z, cap)[:2]

    def surrogate(self, z, above: float = math.inf, cap: int | None = None) -> float:
        """Step 2's value with runs stopped at `cap` (default the budget); above: the caller
        needs it only if it is <= above."""
        cap = self.max_steps if cap is None else cap
        if math.isfinite(above):
            cap = max(1, min(cap, int(above) + 2))
        return self.scored(z, cap)[0]

    def steps(self, z, cap: int) -> int | None:
        """The integer first crossing (summed over the segments) within `cap` steps, or None."""
        return self.scored(z, cap)[1]


def _grid(space: AdamSpace, factor: int = 1) -> np.ndarray:
    """The grid points z, shape (grid_beta', grid_lr', 2), largest lr first in each row; with
    `factor` each spacing divided by it (the coarse grid's points among them)."""
    lrs = np.linspace(*np.log(space.lr_ratio), factor * (space.grid_lr - 1) + 1)[::-1]
    betas = np.linspace(*np.log(space.one_minus_beta1), factor * (space.grid_beta - 1) + 1)
    return np.stack(np.broadcast_arrays(lrs[None, :], betas[:, None]), axis=-1)


def _grid_pass(obj: _Objective, grid: np.ndarray, cap: int, active: np.ndarray):
    """Step 1 over the `active` grid points with every run stopped at `cap` (or at the best
    crossing so far): the surrogate value of every grid point (inf where not active) and the
    best crossing (None: none within cap)."""
    scores = np.full(grid.shape[:2], math.inf)
    best_k = None
    for idx in zip(*np.nonzero(active)):
        scores[idx], k = obj.scored(grid[idx], cap if best_k is None else best_k)
        if k is not None and (best_k is None or k < best_k):
            best_k = k
    return scores, best_k


def _deepened(scores: np.ndarray) -> np.ndarray:
    """The grid points that run on with a larger cap: in each beta1 row the one with the
    lowest score at the cap (`_Objective.run`; on one quadratic the lowest loss there) and
    the DEEPEN_KEEP - 1 next smaller learning rates (a smaller lr descends more slowly to a
    lower noise floor, so it may reach a target the best one misses)."""
    active = np.zeros(scores.shape, dtype=bool)
    for r, row in enumerate(scores):
        if np.isfinite(row).any():
            j = int(np.argmin(row))
            active[r, j:j + DEEPEN_KEEP] = True
    return active


def _starts(grid: np.ndarray, scores: np.ndarray) -> list[np.ndarray]:
    """The N_STARTS best grid points that are no worse than their eight neighbours, then the
    N_STARTS best grid points overall (where the crossing is jagged, the best basin need not
    show as a local minimum on the grid), best first, each once."""
    padded = np.pad(scores, 1, constant_values=math.inf)
    finite = [idx for idx in np.ndindex(*scores.shape) if math.isfinite(scores[idx])]
    finite.sort(key=lambda idx: scores[idx])
    minima = [idx for idx in finite
              if scores[idx] <= padded[idx[0]:idx[0] + 3, idx[1]:idx[1] + 3].min()]
    chosen = list(dict.fromkeys(minima[:N_STARTS] + finite[:N_STARTS]))
    chosen.sort(key=lambda idx: scores[idx])
    return [grid[idx] for idx in chosen]


def _pattern(obj: _Objective, z: np.ndarray, k: int, lo: np.ndarray,
             hi: np.ndarray) -> tuple[np.ndarray, int]:
    """Step 3's pattern search on the integer crossing from (z, k): moves of PATTERN_STEPS
    along the axes and diagonals (clipped to the box) while one needs fewer steps (runs
    stopped at k - 1)."""
    moves = [np.array(m, dtype=float) for m in
             ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (1, -1), (-1, 1))]
    for size in PATTERN_STEPS:
        improved = True
        while improved and k > 1:
            improved = False
            for m in moves:
                trial = np.clip(z + size * m, lo, hi)
                kt = obj.steps(trial, k - 1)
                if kt is not None:
                    z, k, improved = trial, kt, True
                    break
    return z, k


def _search(obj: _Objective, space: AdamSpace) -> tuple[np.ndarray, int | None]:
    """Steps 1-3 in one box: (z, steps) of the best point found.  The grid's runs are first
    stopped at FIRST_CAP steps; while none reaches the target, a few of them (`_deepened`)
    run again with an eightfold cap.  Steps 2-3 start from `_starts`."""
    grid = _grid(space)
    cap = min(obj.max_steps, FIRST_CAP)
    active = np.ones(grid.shape[:2], dtype=bool)
    while True:
        scores, k_grid = _grid_pass(obj, grid, cap, active)
        if k_grid is not None or cap >= obj.max_steps:
            break
        cap = min(obj.max_steps, 8 * cap)
        active = _deepened(scores)
    if k_grid is not None and k_grid <= DENSE_BELOW:   # short runs: a dense grid is cheap
        grid = _grid(space, DENSE_FACTOR)
        scores, k_grid = _grid_pass(obj, grid, k_grid, np.ones(grid.shape[:2], dtype=bool))
    starts = _starts(grid, scores)
    if k_grid is None:                 # not reached within the budget: nothing to refine
        return starts[0], None
    bounds = [tuple(np.log(space.lr_ratio)), tuple(np.log(space.one_minus_beta1))]
    lo, hi = np.array(bounds).T
    spacing = (hi - lo) / (np.array([space.grid_lr, space.grid_beta]) - 1)
    limit = min(obj.max_steps, 2 * k_grid)
    best = (None, None)
    for z0 in starts:
        simplex = [z0, z0 + [spacing[0], 0.0], z0 + [0.0, spacing[1]]]
        z1, _ = nelder_mead(lambda z, above=math.inf: obj.surrogate(z, above, limit), simplex,
                            bounds, space.xatol, space.fatol, space.maxfev)
        for z in (z0, z1):
            k = obj.steps(z, limit if best[1] is None else best[1])
            if k is not None and (best[1] is None or k < best[1]):
                best = (z, k)
    return _pattern(obj, *best, lo, hi)


def _edges(z, space: AdamSpace) -> tuple[str, ...]:
    """Which bounds the optimum z sits on."""
    lo_lr, hi_lr = np.log(space.lr_ratio)
    lo_m, hi_m = np.log(space.one_minus_beta1)
    named = (("lr at lower bound", z[0] - lo_lr), ("lr at upper bound", hi_lr - z[0]),
             ("beta1 at upper bound", z[1] - lo_m), ("beta1 at 0", hi_m - z[1]))
    return tuple(name for name, gap in named if gap < EDGE)


def _widened(space: AdamSpace, edges: tuple[str, ...]) -> AdamSpace | None:
    """The box with its binding lr bounds or upper beta1 bound moved out, or None."""
    lr, m = space.lr_ratio, space.one_minus_beta1
    if "lr at lower bound" in edges:
        lr = (lr[0] / WIDEN_FACTOR, lr[1])
    if "lr at upper bound" in edges:
        lr = (lr[0], lr[1] * WIDEN_FACTOR)
    if "beta1 at upper bound" in edges:
        m = (m[0] / WIDEN_FACTOR, m[1])
    if (lr, m) == (space.lr_ratio, space.one_minus_beta1):
        return None
    return replace(space, lr_ratio=lr, one_minus_beta1=m)


def _tune_one(obj: _Objective, space: AdamSpace):
    """(z, steps, edges) at one batch size: `_search`, repeated in a widened box while the
    optimum sits on a bound that can move; the best crossing over the boxes is kept."""
    best = None
    box = space
    for _ in range(MAX_WIDENINGS + 1):
        z, k = _search(obj, box)
        if best is None or (k is not None and (best[1] is None or k < best[1])):
            best = (z, k, _edges(z, box))
        if k is None:              # not reached: widening the box would not change that
            break
        box = _widened(box, _edges(z, box))
        if box is None:
            break
    return best


def tune_adam(spectrum: Spectrum, batch_sizes, target: float,
              max_steps: int = DEFAULT_MAX_STEPS, beta2: float = 0.999, eps: float = 1e-8,
              space: AdamSpace = AdamSpace()) -> list[TunedPoint]:
    """The tuned mean-field Adam at every batch size (module docstring), as `nqm.tuning.tune`'s
    points: momentum = beta1, lr_limit = inf (none), ema and horizon None."""
    target = check_target(target)     # a fit may ask for any target > 0
    return [p for p, _ in tune_chain([(spectrum, target)], batch_sizes, max_steps, beta2, eps,
                                     space)]


def tune_chain(segments, batch_sizes, max_steps: int = DEFAULT_MAX_STEPS,
               beta2: float = 0.999, eps: float = 1e-8,
               space: AdamSpace = AdamSpace()) -> list[tuple[TunedPoint, tuple[int, ...] | None]]:
    """`tune_adam` on a chain of (spectrum, target) segments run one after the other with one
    (lr, beta1) (`nqm.adam_path`): the total steps tuned per batch size, each point with its
    segments' steps (None where not reached).  The chain's total has at most `max_steps`
    steps (`nqm.path_model` allows that many per segment); lr's unit is the first segment's
    `lr_unit`."""
    AdamConfig(beta2=beta2, eps=eps)          # validates beta2 and eps
    if not segments:
        raise NQMInputError("a chain needs at least one (spectrum, target) segment")
    segments = [(sp, check_target(t)) for sp, t in segments]
    bs = check_batch_sizes(batch_sizes)
    max_steps = check_budget(max_steps)
    unit = lr_unit(segments[0][0])
    if unit <= 0:
        raise NQMInputError("s0 is zero in every direction: nothing to tune (the learning "
                            "rate's unit is the rms initial distance)")
    out = []
    for b in bs:
        obj = _Objective(segments, float(b), max_steps, beta2, eps, unit)
        z, k, edges = _tune_one(obj, space)
        cfg = obj.config(z)
        out.append((TunedPoint(int(b), k, k is not None, cfg.lr, cfg.beta1, None, None,
                               bool(edges), edges, math.inf),
                    tuple(obj.run(z, k)[2]) if k is not None else None))
    return out
