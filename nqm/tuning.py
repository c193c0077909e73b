"""Per-batch-size tuning: minimise steps-to-target over the metaparameters (Shallue et al. 2019
protocol, applied to the NQM as in Zhang et al. 2019 section 3).

Search coordinates (all logarithmic):
    z_lr = log(lr / lr_limit(beta))    lr_limit = stability limit of `nqm.optimizer.lr_limit`
    z_m  = log(1 - beta)               momentum / nesterov only
    z_e  = log(1 - gamma)              iterate averaging (EMA) only
    z_T  = log(horizon)                non-constant schedules only, up to twice the tuned
                                       constant-LR steps (or the budget)
Parametrising lr relative to its stability limit keeps every candidate stable.

Procedure for each batch size B:
  1. a coarse grid in z, shared by all batch sizes: for a constant LR the B-independent modes of
     every grid point are built once, D(k) and N(k) are evaluated on a geometric ladder of steps
     (ratio 1.5), and L = D + N / B scores every B at once;
  2. refinement by a real optimiser (bounded Brent in one dimension, Nelder-Mead with bounds in
     more) from the best grid point, from up to two more grid points in other basins, and from
     the tuned optimum of the contained optimizer (SGD inside momentum: beta = 0; the base
     optimizer inside EMA: gamma = 0), so a richer optimizer never tunes worse; a schedule
     also starts from the constant-LR optimum with its step count as horizon;
  3. (constant LR) the local optima compared by their exact first crossings, then, with
     two or more coordinates, a pattern search on the exact crossing itself (it is integer
     and jagged where the loss oscillates); an optimum on the lower lr bound or the upper
     momentum / EMA bound widens that bound (`nqm.search_space`) and repeats 2-3 from there.
Each batch size uses only its own grid column and its own contained optimum, so its result is
the same whatever other batch sizes are requested.
The objective in 1-2 is a smooth surrogate: the crossing of log L(k) with log target found by
Brent's method on real k near the previous crossing (so it can miss an earlier transient dip,
which step 3 then finds).  Targets not reached within the budget score
budget * (1 + log(L(budget) / target)) so the search is pulled toward reaching them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from nqm import _kernels, quantise
from nqm.brent import minimize_bounded
from nqm.checks import DEFAULT_MAX_STEPS, check_batch_sizes, check_budget, check_target
from nqm.closed_form import Modes, SpectrumParts
from nqm.critical import crossing_fraction
from nqm.dynamics import lr_sequence, recurrence_losses, recurrence_parts
from nqm.optimizer import (
    OptimizerConfig,
    check_kind,
    check_precond,
    stability_factor,
)
from nqm.schedule import Schedule
from nqm.search_space import LR_RATIO_FLOOR, ONE_MINUS_FLOOR, WIDEN_FACTOR, SearchSpace
from nqm.simplex import nelder_mead
from nqm.spectrum import Spectrum
from nqm.threads import choose_threads, thread_map

# Constants of `_Problem.surrogate_closed` (a crossing search in t = log(1 + k)):
PROBE = 0.02            # the second point lies 2% of the hint (at least one step) away from it
MAX_BRACKET_STEPS = 200  # secant steps allowed to bracket the crossing before giving up
OVERSHOOT = 1.05        # aim 5% past the secant's root, so the next point lands across it
MAX_LOG_STEP = 2.0      # at most a factor e^2 ~ 7.4 in 1 + k per bracketing step
REL_WIDTH = 1e-5        # a bracket this narrow relative to k (or one step wide) is resolved
TINY = 1e-300           # losses are floored here before taking logs
ABOVE_MARGIN = 1e-9     # a surrogate stops early only beyond (1 + this) x its caller's bound
# Constants of the per-batch-size search (`_refine`):
N_STARTS = 3            # local searches from this many grid points in distinct basins ...
START_SLACK = 2.0       # ... whose grid score is within this factor of the best
DESCENT_STEP = 0.05     # exact descent starts at this step in log coordinates ...
DESCENT_MIN = 2e-3      # ... and stops below this step in log coordinates (0.2%)
MAX_WIDENINGS = 4       # a binding bound is widened at most this many times
SIMPLEX_XATOL = 0.05    # Nelder-Mead stops when its vertices lie this close in every coordinate
SIMPLEX_FEV = 100       # ... or after this many evaluations per coordinate
UNREACHED_CAP = 50.0    # `unreached_score`'s cap on the excess log loss
USE_SEARCH_KERNEL = True  # False: the Python local search everywhere (the kernel's oracle)
SEARCH_WORK = 3         # a search in two or more coordinates (Nelder-Mead, pattern search) makes
                        # about ten times the kernel calls of a one-dimensional one per batch size:
                        # its rows count this many times towards threads.MIN_ROWS_PER_THREAD


class TunedPoint(NamedTuple):
    batch_size: int
    steps: int | None
    reached: bool
    lr: float
    momentum: float
    ema: float | None
    horizon: int | None
    at_edge: bool
    edges: tuple[str, ...]
    lr_limit: float


class _Problem:
    """Maps search coordinates to configurations and scores them."""

    def __init__(self, spectrum, kind, precond, ema, schedule, target, max_steps, space,
                 max_horizon=None):
        self.spectrum, self.kind, self.precond = spectrum, kind, precond
        self.ema, self.schedule, self.target = ema, schedule, target
        self.max_steps, self.space = max_steps, space
        self.max_horizon = max_horizon or max_steps
        self.closed = schedule is None or schedule.is_constant
        self.log_target = math.log(target)
        self.initial_loss = spectrum.initial_loss()
        self.log_initial = math.log(self.initial_loss) if self.initial_loss > 0 else -math.inf
        names, bounds = ["lr"], [tuple(np.log(space.lr_ratio))]
        if kind != "sgd":
            names.append("momentum")
            bounds.append(tuple(np.log(space.one_minus_momentum)))
        if ema:
            names.append("ema")
            bounds.append(tuple(np.log(space.one_minus_ema)))
        if schedule is not None and not schedule.is_constant:
            names.append("horizon")
            bounds.append((math.log(space.horizon_min), math.log(self.max_horizon)))
        self.names, self.bounds = names, np.array(bounds, dtype=np.float64)
        # positions of the momentum, EMA and horizon coordinates (None: not searched)
        self.slots = tuple(names.index(n) if n in names else None
                           for n in ("momentum", "ema", "horizon"))
        self.parts = SpectrumParts.of(spectrum, precond)
        # a 2 x 2 state map: `Modes.build` calls `build_modes_pair` (`surrogate_at`)
        self.pair = (kind == "sgd") == bool(ema)
        self.sgd = kind == "sgd" and not ema     # one real mode per row: `build_modes_sgd`
        # lr_limit(h, kind, beta, precond) = stability_factor(kind, beta) / h_scale
        self.h_scale = float(np.max(np.asarray(spectrum.h) ** (1.0 - precond)))

    def modes(self, cfg: OptimizerConfig) -> Modes:
        """`Modes.build` on this problem's spectrum."""
        return Modes.build(self.spectrum, cfg, self.parts)

    @property
    def bounds(self) -> np.ndarray:
        """(lower, upper) per search coordinate, read-only (`widened` makes a new one)."""
        return self._bounds

    @bounds.setter
    def bounds(self, bounds: np.ndarray) -> None:
        self._bounds = bounds
        bounds.setflags(write=False)
        self._box = [tuple(pair) for pair in bounds.tolist()]

    def clipped(self, z) -> tuple[float, ...]:
        """The coordinates z (a sequence, or a scalar in one dimension), each clipped to its
        bounds."""
        zs = z if hasattr(z, "__len__") else (z,)      # Brent passes a scalar
        return tuple([min(max(float(v), lo), hi)       # np.clip on scalars
                      for v, (lo, hi) in zip(zs, self._box)])

    def values(self, z) -> tuple[float, float, float | None, int | None]:
        """(lr, beta, gamma, horizon) at search coordinates z, each coordinate first clipped
        to its bounds: beta = 1 - e^z_m (0 without momentum), gamma = 1 - e^z_e (None without
        EMA), lr = e^z_lr lr_limit(beta), horizon = round(e^z_T) (None for a constant LR)."""
        return self.values_clipped(self.clipped(z))

    def values_clipped(self, c: tuple[float, ...]) -> tuple[float, float, float | None,
                                                             int | None]:
        """`values` at coordinates `c` already within the bounds."""
        m, e, t = self.slots
        beta = 1.0 - math.exp(c[m]) if m is not None else 0.0
        gamma = 1.0 - math.exp(c[e]) if e is not None else None
        lim = stability_factor(self.kind, beta) / self.h_scale
        horizon = int(round(math.exp(c[t]))) if t is not None else None
        return math.exp(c[0]) * lim, beta, gamma, horizon

    def config(self, z) -> tuple[OptimizerConfig, int | None]:
        lr, beta, gamma, horizon = self.values(z)
        cfg = OptimizerConfig(self.kind, lr=lr, momentum=beta, precond=self.precond, ema=gamma)
        return cfg, horizon

    def coords(self, point: TunedPoint) -> np.ndarray:
        """Search coordinates of a tuned point of this or a contained optimizer (the missing
        momentum / EMA coordinates take the value that switches them off: beta = gamma = 0;
        a constant-LR point gets a horizon equal to its step count)."""
        lim = stability_factor(self.kind, point.momentum) / self.h_scale
        z = {"lr": math.log(point.lr / lim), "momentum": math.log1p(-point.momentum),
             "ema": math.log1p(-(point.ema or 0.0)),
             "horizon": math.log(max(point.steps or self.max_steps, 1))}
        return np.clip([z[n] for n in self.names], self.bounds[:, 0], self.bounds[:, 1])

    def penalty(self, loss_at_budget: float) -> float:
        """`unreached_score` of this problem."""
        return unreached_score(self.max_steps, loss_at_budget, self.log_target)

    # ------------------------------------------------------------ surrogate objectives
    def surrogate_closed(self, modes: Modes, batch_size: float, hint: float,
                         k_above: float = math.inf) -> float | None:
        """A crossing of the loss with the target near `hint`, interpolated between integer steps.

        Only integer steps are evaluated (the closed form at non-integer k is not a loss when an
        eigenvalue is negative or complex).  Secant steps in (log(1 + k), log L) from the hint
        bracket a sign change of f(k) = log L(k) - log target; secant steps safeguarded by
        bisection shrink the bracket to neighbouring integers lo, hi (or to a relative width of
        REL_WIDTH for large k); the result interpolates linearly:
        lo + (hi - lo) f(lo) / (f(lo) - f(hi)).  The module constants PROBE, MAX_BRACKET_STEPS,
        OVERSHOOT and MAX_LOG_STEP set the bracketing; a crossing not bracketed within the
        budget scores `penalty`.  The search runs in one kernel call
        (`nqm._kernels.surrogate_crossing`).  None: the result is known to exceed `k_above`
        (the search stops there; the caller needs no more).
        """
        if self.initial_loss <= self.target:
            return 0.0
        return self._surrogate_value(*_kernels.surrogate_crossing(
            modes.logabs, modes.kernel_arg, modes.g, modes.q, modes.inv1m, modes.wdet, modes.wn,
            modes.scratch(), 1.0 / batch_size, *self.crossing_search(hint), k_above))

    def crossing_search(self, hint: float) -> tuple:
        """The crossing kernels' arguments after 1 / B and before k_above (`surrogate_closed`):
        log target, log initial loss, hint, step budget and the bracketing constants."""
        return (self.log_target, self.log_initial, float(hint), int(self.max_steps), PROBE,
                MAX_BRACKET_STEPS, OVERSHOOT, MAX_LOG_STEP, REL_WIDTH)

    def _surrogate_value(self, status: int, value: float) -> float | None:
        """The surrogate from a crossing kernel's (status, value): 0 the crossing, 1 not
        bracketed (`penalty` from the excess log loss), 2 known to exceed the caller's bound."""
        if status == 2:
            return None
        if status:
            try:
                excess = math.exp(value)
            except OverflowError:        # inf, as numba's exp gives in the compiled search
                excess = math.inf
            return self.penalty(excess * self.target)
        return value

    def surrogate_at(self, c: tuple[float, ...], batch_size: float, hint: float,
                     k_above: float = math.inf) -> float | None:
        """`surrogate_closed` of the configuration at coordinates `c` within the bounds
        (`clipped`).  A 2 x 2 state map (momentum, Nesterov, SGD + EMA) takes one kernel call
        from the scalars to the crossing (`nqm._kernels.surrogate_pair`: bit for bit
        `Modes.build` then `surrogate_crossing`), SGD the two kernels `Modes.build` and
        `surrogate_closed` would call, with no configuration or modes object in between;
        momentum + EMA goes through `Modes`.  (The tuner's local searches of a 2 x 2 map run
        compiled, `compiled_searches`; its Python path here is their oracle.)"""
        if not (self.pair or self.sgd):
            return self.surrogate_closed(self.modes(self.config(c)[0]), batch_size, hint,
                                         k_above)
        if self.initial_loss <= self.target:
            return 0.0
        lr, beta, gamma, _ = self.values_clipped(c)
        u, w = self.parts.powers
        if self.sgd:      # `Modes.build` for SGD, then `surrogate_closed`, without the objects
            logabs, _arg, g, q, inv1m, _realpos, _radius = _kernels.build_modes_sgd(u, w, lr)
            return self._surrogate_value(*_kernels.surrogate_crossing(
                logabs, None, g, q, inv1m, self.parts.wdet, self.parts.wn, None,
                1.0 / batch_size, *self.crossing_search(hint), k_above))
        return self._surrogate_value(*_kernels.surrogate_pair(
            u, w, self.kind == "nesterov", beta, -1.0 if gamma is None else gamma, lr,
            self.parts.wdet, self.parts.wn, 1.0 / batch_size, *self.crossing_search(hint),
            k_above))

    def ladder_scores(self, ks: np.ndarray, D: np.ndarray, N: np.ndarray,
                      bs: np.ndarray) -> list[float]:
        """`ladder_score` at every batch size of `bs` from the ladder's D(k) and N(k)."""
        losses = D[None, :] + N[None, :] / bs[:, None]
        hit = losses <= self.target
        first = np.where(hit.any(axis=1), hit.argmax(axis=1), -1).tolist()
        return [self.ladder_score(ks, row, i) for row, i in zip(losses, first)]

    def ladder_score(self, ks: np.ndarray, losses: np.ndarray, i: int | None = None) -> float:
        """Approximate steps from losses on a step ladder: the first ladder step at or below the
        target (its index `i` if known, -1: none), interpolated in (log k, log L) from the step
        before it (grid stage only)."""
        if i is None:
            hit = np.flatnonzero(losses <= self.target)
            i = int(hit[0]) if hit.size else -1
        if i < 0:
            return self.penalty(losses[-1])
        if i == 0:
            return float(ks[0])
        l0, l1 = math.log(losses[i - 1]), math.log(max(losses[i], TINY))
        frac = crossing_fraction(l0, l1, self.log_target)      # l0 > log target >= l1
        return math.exp(math.log(ks[i - 1]) + frac * (math.log(ks[i]) - math.log(ks[i - 1])))

    def exact(self, cfg: OptimizerConfig, horizon, batch_size: float,
              cap: float | None = None, hint: int | None = None) -> tuple[float, int | None]:
        """(score, exact first crossing or None) for one configuration.

        With a schedule, `cap` stops the recurrence after that many steps: a configuration
        that has not reached the target by then cannot win and scores at least `cap`.
        `hint`: where a constant LR's crossing is expected (speed only)."""
        if self.schedule is None or self.schedule.is_constant:
            modes = self.modes(cfg)
            k = int(modes.first_crossings([batch_size], self.target, self.max_steps,
                                          hint=hint)[0])
            if k >= 0:
                return float(k), k
            return self.penalty(modes.loss(self.max_steps, batch_size)), None
        n = self.run_length(horizon, cap)
        lrs = lr_sequence(cfg, self.schedule, n, horizon)
        curve, k = recurrence_losses(self.spectrum, cfg, batch_size, lrs, self.target, True)
        return self.schedule_score(curve, k, n)

    def run_length(self, horizon: int, cap: float | None) -> int:
        """Steps a schedule runs: its horizon (within the budget), or `cap` if smaller."""
        n = min(horizon, self.max_steps)
        return max(int(cap), 1) if cap is not None and cap < n else n

    def exact_many(self, cfg: OptimizerConfig, horizon: int, bs: np.ndarray,
                   caps: np.ndarray) -> list[tuple[float, int | None]]:
        """`exact` with a schedule for every batch size of `bs` (ascending), each capped at
        its entry of `caps`, from one recurrence of the B-independent parts D_t, N_t
        (`nqm.dynamics.recurrence_parts`: loss D_t + N_t / B)."""
        ns = [self.run_length(horizon, cap) for cap in caps]
        lrs = lr_sequence(cfg, self.schedule, max(ns), horizon)
        D, N = recurrence_parts(self.spectrum, cfg, lrs, self.target, float(bs[0]))
        out = []
        for b, n in zip(bs, ns):
            curve = D[:n + 1] + N[:n + 1] / b
            bad = np.flatnonzero(~(curve < 1e300))    # divergence, as `recurrence` marks it
            if bad.size:
                curve = curve.copy()
                curve[bad[0]] = np.inf
                curve[bad[0] + 1:] = np.nan
            hit = np.flatnonzero(curve <= self.target)
            k = int(hit[0]) if hit.size else -1
            out.append(self.schedule_score(curve, k, n))
        return out

    def schedule_score(self, curve: np.ndarray, k: int, n: int) -> tuple[float, int | None]:
        """(score, first crossing or None) of a schedule's loss curve over a run of n steps
        whose first step at or below the target is k (-1: none)."""
        if k < 0:
            # not reached within the run of n steps: n + M log(L_n / target) / log(L_0 / target)
            # with M the horizon search's upper bound.  It continues the reached scores (all
            # <= n) without a cliff (a schedule that just misses at its end scores just above
            # n), while any real shortfall costs a large part of M
            last = curve[np.isfinite(curve)]
            loss = last[-1] if last.size else np.inf
            if np.isfinite(loss) and curve[0] > self.target:
                frac = (math.log(loss) - self.log_target) / (math.log(curve[0]) - self.log_target)
                return n + self.max_horizon * max(frac, 0.0), None
            return self.penalty(loss), None
        if k == 0:
            return 0.0, 0
        # fractional crossing between k - 1 and k, log-linear in the loss
        l0, l1 = math.log(curve[k - 1]), math.log(max(curve[k], TINY))
        frac = crossing_fraction(l0, l1, self.log_target)      # l0 > log target >= l1
        return k - 1 + min(max(frac, 0.0), 1.0), k

    def crossing_before(self, z, batch_size: float, cap: int,
                        unlikely: bool = False, near: float | None = None) -> int | None:
        """Exact first crossing at z if it is at most `cap` (constant LR), else None; the
        branch and bound stops at `cap`, so a point that cannot win costs little.
        Where to look first (the result is the same): `unlikely`, no crossing is expected up
        to `cap` (the steps are covered from `cap` backwards); `near`, one is expected there."""
        if not (self.pair and self.closed) or cap < 0:
            return self.crossing_of(self.config(z)[0], batch_size, cap, unlikely, near)
        # a 2 x 2 map: the kernels straight from the scalars, as `Modes` would call them
        lr, beta, gamma, _ = self.values(z)
        u, w = self.parts.powers
        logabs, arg, g, q, inv1m, realpos, _ = _kernels.build_modes_pair(
            u, w, self.kind == "nesterov", beta, -1.0 if gamma is None else gamma, lr)
        k = int(_kernels.first_crossings(
            logabs, arg, g, q, inv1m, self.parts.wdet, self.parts.wn, realpos,
            np.array([1.0 / batch_size]), float(self.target), int(cap),
            np.empty(logabs.shape, dtype=np.complex128), self._hint(cap, unlikely, near))[0])
        return k if k >= 0 else None

    def crossing_of(self, cfg: OptimizerConfig, batch_size: float, cap: int,
                    unlikely: bool = False, near: float | None = None) -> int | None:
        """`crossing_before` for a configuration."""
        if cap < 0:
            return None
        modes = self.modes(cfg)
        k = int(modes.first_crossings([batch_size], self.target, int(cap),
                                      hint=self._hint(cap, unlikely, near))[0])
        return k if k >= 0 else None

    @staticmethod
    def _hint(cap: int, unlikely: bool, near: float | None) -> int:
        """The branch and bound's `hint` for `crossing_before` (-1: none)."""
        if unlikely:
            return int(cap) + 1
        if near is not None and 1.0 <= near <= cap:
            return int(near)
        return -1

    def binding(self, z) -> list[int]:
        """Coordinates whose optimum sits on a bound that may be widened: the lower bound of
        lr / lr_limit, 1 - beta or 1 - gamma, while it is above its floor."""
        tol = math.log(self.space.edge_factor)
        floors = {"lr": LR_RATIO_FLOOR, "momentum": ONE_MINUS_FLOOR, "ema": ONE_MINUS_FLOOR}
        return [j for j, name in enumerate(self.names)
                if name in floors and z[j] - self.bounds[j, 0] <= tol
                and self.bounds[j, 0] > math.log(floors[name]) + 1e-9]

    def widened(self, coords: list[int]) -> _Problem:
        """A copy whose lower bounds of `coords` lie WIDEN_FACTOR further out (not past
        their floors)."""
        floors = {"lr": LR_RATIO_FLOOR, "momentum": ONE_MINUS_FLOOR, "ema": ONE_MINUS_FLOOR}
        out = copy.copy(self)
        bounds = self.bounds.copy()
        for j in coords:
            bounds[j, 0] = max(self.bounds[j, 0] - math.log(WIDEN_FACTOR),
                               math.log(floors[self.names[j]]))
        out.bounds = bounds
        return out

    def edges(self, z, cfg: OptimizerConfig) -> tuple[str, ...]:
        out = []
        tol = math.log(self.space.edge_factor)
        for name, zi, (lo, hi) in zip(self.names, z, self.bounds):
            if name == "lr":
                if math.exp(zi) >= self.space.stability_edge:
                    out.append("lr at stability limit")
                elif zi - lo <= tol:
                    out.append("lr at lower search bound")
            elif name == "momentum":
                if hi - zi <= tol:
                    out.append("momentum at 0")
                elif zi - lo <= tol:
                    out.append("momentum at upper search bound")
            elif name == "ema":
                if hi - zi <= tol:
                    out.append("ema at 0 (no averaging)")
                elif zi - lo <= tol:
                    out.append("ema at upper search bound")
            elif name == "horizon":
                if hi - zi <= tol:
                    out.append("horizon at upper search bound")
                elif zi - lo <= tol:
                    out.append("horizon at lower search bound")
        return tuple(out)


def _grid(problem: _Problem) -> tuple[np.ndarray, list[np.ndarray]]:
    """The stage-1 grid: every combination of evenly spaced values per search coordinate
    (`grid_lr` learning rates, halved beside two or more other coordinates unless a horizon is
    tuned, and `grid_other` values of every other coordinate); returns (points, axes)."""
    axes = []
    for name, (lo, hi) in zip(problem.names, problem.bounds):
        n = problem.space.grid_lr if name == "lr" else problem.space.grid_other
        if len(problem.names) > 2 and name == "lr" and "horizon" not in problem.names:
            n = max(problem.space.grid_lr // 2 + 1, 5)
        axes.append(np.linspace(lo, hi, n))
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1), axes


def unreached_score(max_steps: int, loss_at_budget: float, log_target: float) -> float:
    """The surrogate of a target not reached within `max_steps`:
    max_steps * (1 + log(L(max_steps) / target)), the excess clipped to [0, 50], so that a
    search is pulled toward reaching the target."""
    excess = math.log(loss_at_budget) - log_target if loss_at_budget > 0 else UNREACHED_CAP
    return max_steps * (1.0 + min(max(excess, 0.0), UNREACHED_CAP))


def tune(spectrum: Spectrum, kind: str, batch_sizes, target: float, precond: float = 0.0,
         ema: bool = False, schedule: Schedule | None = None,
         max_steps: int = DEFAULT_MAX_STEPS, space: SearchSpace | None = None,
         progress: Callable[[int], None] | None = None,
         threads: int | None = None) -> list[TunedPoint]:
    """Minimise steps-to-target over the metaparameters, separately for every batch size.

    For each batch size B in `batch_sizes` (integers >= 1; sorted, duplicates dropped) it
    returns the `TunedPoint` (lr, beta, gamma, horizon) with the fewest steps k such that the
    expected loss E L(theta_k) <= `target` that the search finds, with the exact first crossing
    as its step count (None where the target is not reached within `max_steps`) and the search
    edges its optimum touches.  `kind` is sgd | momentum | nesterov; `precond` the exponent p
    of the H^-p preconditioner; `ema` also tunes iterate averaging; `schedule` (default
    constant) also tunes the horizon.  Stages, as in the module docstring: the contained
    optimizer's optimum (`_contained_optimum`), the shared grid (`_grid_scores`), refinement,
    exact descent and widening per batch size (`_refine`); each batch size's result does not
    depend on the other batch sizes.
    `progress(1)` is called once per refined batch size.  `threads`: grid points and batch
    sizes run in a pool of this many threads (None: `nqm.threads.choose_threads`); the result
    is the same for any count.
    """
    check_kind(kind)
    check_precond(precond)
    target = check_target(target)
    max_steps = check_budget(max_steps)
    bs = check_batch_sizes(batch_sizes)
    space = space or SearchSpace()
    requested = threads
    search = quantise.quantised(spectrum, quantise.SEARCH_WIDTH)
    closed = schedule is None or schedule.is_constant
    coords = 1 + (kind != "sgd") + bool(ema) + (not closed)
    threads = choose_threads(requested, search.n_rows * (SEARCH_WORK if coords > 1 else 1))
    base = _contained_optimum(spectrum, kind, bs, target, precond, ema, closed, max_steps,
                              space, threads)
    const_steps = max_h = None
    if not closed:
        # the constant-LR optimum (cheap, closed form) bounds the schedule's horizon search
        # and caps each recurrence (steps beyond 1.5x the best so far cannot win)
        const_steps = [p.steps if p.reached else max_steps for p in base]
        max_h = int(min(max_steps, 2 * max(const_steps) + space.horizon_min))
    problem = _Problem(search, kind, precond, ema, schedule, target, max_steps, space,
                       max_horizon=max_h)
    exact = problem if search is spectrum else _Problem(
        spectrum, kind, precond, ema, schedule, target, max_steps, space, max_horizon=max_h)
    nested = None if base is None else [problem.coords(p) for p in base]
    grid, axes = _grid(problem)
    scores, reached = _grid_scores(problem, grid, bs, const_steps, threads)
    spacing = np.array([ax[1] - ax[0] if ax.size > 1 else 1.0 for ax in axes])

    def refine(bi):
        return _refine(problem, grid, spacing, scores[:, bi], reached[:, bi], float(bs[bi]),
                       None if nested is None else nested[bi])

    refined = list(thread_map(refine, range(bs.size), threads))

    def finish(bi):
        (_score, k), z, prob = refined[bi]
        if exact is not problem:
            k, z = _exact_steps(exact, prob, z, k, float(bs[bi]),
                                None if base is None or not closed else base[bi])
        return _tuned_point(prob, int(bs[bi]), k, z)

    points = []
    for point in thread_map(finish, range(bs.size),
                            1 if exact is problem else choose_threads(requested, spectrum.n_rows)):
        points.append(point)
        if progress is not None:
            progress(1)
    return points


def _exact_steps(exact: _Problem, prob: _Problem, z: np.ndarray, k_search: int | None,
                 b: float, contained: TunedPoint | None) -> tuple[int | None, np.ndarray]:
    """(exact first crossing on the exact spectrum, z) at the point z that the search on the
    quantised copy (`prob`) found, where it crossed at `k_search` (the hint of the exact
    branch and bound).  With a constant LR the contained optimizer's optimum (exact already)
    wins when it crosses earlier, so a richer optimizer never reports more steps than the one
    it contains."""
    cfg, horizon = prob.config(z)
    k = exact.exact(cfg, horizon, b, hint=k_search)[1]
    if contained is not None and contained.reached and (k is None or contained.steps < k):
        zc = prob.coords(contained)
        kc = exact.crossing_of(prob.config(zc)[0], b, contained.steps if k is None else k - 1)
        if kc is not None:
            return kc, zc
    return k, z


def _contained_optimum(spectrum, kind, bs, target, precond, ema, closed, max_steps, space,
                       threads) -> list[TunedPoint] | None:
    """Tuned points of the optimizer this one contains, used as extra starts (None if none).

    Momentum contains SGD (beta = 0), EMA its base optimizer (gamma = 0), a schedule the
    constant learning rate (its steps as horizon); starting from that optimum, the richer
    optimizer never tunes worse than the one it contains."""
    if not closed:
        return tune(spectrum, kind, bs, target, precond=precond, ema=ema, max_steps=max_steps,
                    space=space, threads=threads)
    if ema or kind != "sgd":
        return tune(spectrum, kind if ema else "sgd", bs, target, precond=precond,
                    max_steps=max_steps, space=space, threads=threads)
    return None


def _grid_scores(problem: _Problem, grid: np.ndarray, bs: np.ndarray, const_steps,
                 threads: int) -> tuple[np.ndarray, np.ndarray]:
    """Stage 1: (scores, reached), each of shape (grid points, batch sizes).

    Constant LR: the modes of each grid point are built once and D(k), N(k) evaluated on a
    geometric ladder of steps (ratio 1.5), so L = D + N / B scores every B at once (reached
    stays False: ladder scores are approximate).  Schedules: the exact recurrence per point and
    B, capped at 1.5x the best so far (or the constant-LR steps `const_steps`), every B from
    one run of the B-independent parts (`_Problem.exact_many`)."""
    scores = np.empty((grid.shape[0], bs.size))
    reached = np.zeros((grid.shape[0], bs.size), dtype=bool)
    if problem.closed:
        n_rungs = 8 + int(np.log(problem.max_steps) / np.log(1.5))
        ladder = np.unique(np.round(np.geomspace(1, problem.max_steps, n_rungs))).astype(int)

        def ladder_losses(z):
            modes = problem.modes(problem.config(z)[0])
            return modes.dn_ladder_until(ladder, problem.target, float(bs[0]))

        for gi, (D, N) in enumerate(thread_map(ladder_losses, grid, threads)):
            scores[gi] = problem.ladder_scores(ladder, D, N, bs.astype(np.float64))
        return scores, reached
    for gi, z in enumerate(grid):
        cfg, horizon = problem.config(z)
        caps = [1.5 * min(const_steps[bi], scores[:gi, bi].min(initial=np.inf))
                for bi in range(bs.size)]
        for bi, (score, k) in enumerate(problem.exact_many(cfg, horizon, bs, caps)):
            scores[gi, bi] = score
            reached[gi, bi] = k is not None
    return scores, reached


class _Objective:
    """log(1 + steps) at search coordinates z for one batch size: the surrogate crossing for a
    constant LR, the capped exact recurrence for a schedule.

    State, explicit: `hint` (where the surrogate looks for the crossing; fixed per batch size,
    since with an oscillating loss the crossing found depends on where the search starts and
    a moving start makes the objective noisy), `best` (the best score so far, which caps
    schedule runs at 1.5x), `reached` ((score, z) of the best point that reaches the
    target, for schedules) and `known` (the surrogate values computed, for a constant LR)."""

    def __init__(self, problem: _Problem, batch_size: float, hint: float, best: float,
                 reached: tuple[float, np.ndarray | None]):
        self.problem, self.batch_size = problem, batch_size
        self.hint, self.best, self.reached = hint, best, reached
        self.known: dict[tuple[float, ...], float] = {}     # constant LR: clipped z -> value

    def __call__(self, z, above: float = math.inf) -> float:
        """log(1 + steps) at z, or +inf when that is known to exceed `above` (constant LR:
        the surrogate's search stops there, `nqm.simplex`)."""
        p = self.problem
        if p.closed:
            val = self.surrogate(z, above)
            return math.inf if val is None else math.log1p(val)
        cfg, horizon = p.config(z)
        val, k = p.exact(cfg, horizon, self.batch_size, cap=1.5 * self.best)
        self.best = min(self.best, val)
        if k is not None and val < self.reached[0]:
            self.reached = (val, np.array(z, dtype=np.float64))
        return math.log1p(val)

    def surrogate(self, z, above: float = math.inf) -> float | None:
        """`_Problem.surrogate_at` z, remembered by z's clipped coordinates (the local search
        evaluates some points twice, and distinct points that clip to the same one); None
        when log(1 + surrogate) is known to exceed `above` (the search stops once the
        crossing lies beyond e^above - 1, widened by ABOVE_MARGIN against rounding)."""
        key = self.problem.clipped(z)
        if key in self.known:
            return self.known[key]
        k_above = math.expm1(above) * (1.0 + ABOVE_MARGIN) if 0.0 <= above < math.inf \
            else math.inf
        val = self.problem.surrogate_at(key, self.batch_size, self.hint, k_above)
        if val is not None:
            self.known[key] = val
        return val


def _refine(problem: _Problem, grid: np.ndarray, spacing: np.ndarray, scores: np.ndarray,
            reached: np.ndarray, b: float, nested_z: np.ndarray | None):
    """Stages 2-3 for one batch size: ((score, exact steps or None), z, problem), where
    `problem` carries the bounds after any widening.  Uses only this batch size's grid column
    and contained optimum, so the result does not depend on the other batch sizes."""
    if problem.closed:
        return _refine_closed(problem, grid, spacing, scores, b, nested_z)
    return _refine_schedule(problem, grid, spacing, scores, reached, b, nested_z)


def _starts(grid: np.ndarray, spacing: np.ndarray, scores: np.ndarray,
            nested_z: np.ndarray | None) -> list[np.ndarray]:
    """Starting points: the best grid point, then up to N_STARTS - 1 more in other basins
    (more than 1.5 grid spacings from every start taken) scoring within START_SLACK of the
    best, and the contained optimizer's optimum `nested_z`."""
    order = np.argsort(scores, kind="stable")
    chosen: list[int] = []
    for gi in order:
        if len(chosen) == N_STARTS or scores[gi] > START_SLACK * scores[order[0]]:
            break
        if all(np.any(np.abs(grid[gi] - grid[c]) > 1.5 * spacing) for c in chosen):
            chosen.append(int(gi))
    return [grid[c] for c in chosen] + ([] if nested_z is None else [nested_z])


def _refine_closed(problem: _Problem, grid: np.ndarray, spacing: np.ndarray,
                   scores: np.ndarray, b: float, nested_z: np.ndarray | None):
    """Constant LR: a local search on the surrogate from every start (`_starts`); the local
    optima compared by their exact first crossings; an exact descent from the best
    (`_exact_descent`); while the optimum sits on a widenable bound (`_Problem.binding`), the
    bound is widened and the search repeated from there.  Never worse than any start."""
    best_val = float(scores.min())
    hint = max(best_val, 1.0) if best_val < problem.max_steps else 1.0
    # simplex converged at 0.1% or about two steps, whichever is larger
    fatol = max(1e-3, 2.0 / (1.0 + min(best_val, problem.max_steps)))
    starts = _starts(grid, spacing, scores, nested_z)
    z, k = None, None
    for _ in range(MAX_WIDENINGS + 1):
        objective = _Objective(problem, b, hint=hint, best=best_val, reached=(np.inf, None))
        optima = _local_searches(problem, objective, starts, spacing, fatol)
        optima.sort(key=lambda o: o[1])
        for zc, val in optima + [(z0, None) for z0 in starts[-1:]]:
            zc = np.clip(zc, problem.bounds[:, 0], problem.bounds[:, 1])
            if k is None:      # expected near the surrogate's crossing
                kc = problem.crossing_before(zc, b, problem.max_steps, near=val)
            else:              # only a better point matters: the proof that none is cheap
                kc = problem.crossing_before(zc, b, k - 1, unlikely=True)
            if kc is not None:
                z, k = zc, kc
        if z is None:          # nothing reaches the target yet: the surrogate's best
            z_try = np.clip(optima[0][0], problem.bounds[:, 0], problem.bounds[:, 1])
        elif z.size > 1:       # (in one dimension bounded Brent resolves the optimum)
            z, k = _exact_descent(problem, z, k, b, spacing)
        bind = problem.binding(z if z is not None else z_try)
        if not bind:
            break
        problem = problem.widened(bind)
        starts = [z if z is not None else z_try]
        inside = starts[0].copy()     # and from the middle of the added part
        inside[bind] = problem.bounds[bind, 0] + 0.5 * math.log(WIDEN_FACTOR)
        starts.append(inside)
        spacing = spacing.copy()     # the local search must reach into the widened part
        spacing[bind] = np.maximum(spacing[bind], 0.5 * math.log(WIDEN_FACTOR))
        hint = float(max(k, 1)) if k is not None else hint
    if z is None:
        z = z_try
        cfg, _ = problem.config(z)
        return problem.exact(cfg, None, b), z, problem
    return (float(k), k), z, problem      # k is z's exact first crossing (crossing_before)


def _exact_descent(problem: _Problem, z: np.ndarray, k: int, b: float,
                   spacing: np.ndarray) -> tuple[np.ndarray, int]:
    """Pattern search on the exact first crossing: move to the first neighbour z +- step along
    a coordinate (and, in two dimensions, a diagonal, for ridges) that crosses earlier; when
    none does, divide the step by 3; from DESCENT_STEP down to DESCENT_MIN (the local search
    has converged to about DESCENT_STEP).
    The exact steps are integers and jagged where the loss oscillates, which the smooth
    surrogate of the local search cannot resolve."""
    n = z.size
    dirs = [s * np.eye(n)[j] for j in range(n) for s in (1.0, -1.0)]
    if n == 2:
        dirs += [np.array([a, c]) for a in (1.0, -1.0) for c in (1.0, -1.0)]
    step = np.full(n, DESCENT_STEP)
    known: dict[bytes, int | None] = {}
    while step.max() > DESCENT_MIN:
        for d in dirs:
            zc = np.clip(z + d * step, problem.bounds[:, 0], problem.bounds[:, 1])
            if np.array_equal(zc, z):
                continue
            kc = _crossing_cached(problem, known, zc, b, k - 1)
            if kc is not None:
                z, k = zc, kc
                break
        else:
            step = step / 3.0
    return z, k


def _crossing_cached(problem: _Problem, known: dict, z: np.ndarray, b: float,
                     cap: int) -> int | None:
    """`problem.crossing_before(z, b, cap)`, remembering answers in `known` (z's bytes ->
    exact first crossing, or None: none up to the first cap asked).  The caps of one descent
    only fall, so a stored None stays None and a stored crossing k answers k if k <= cap; the
    pattern search's step back to the point it came from then costs nothing."""
    key = z.tobytes()
    if key not in known:
        known[key] = problem.crossing_before(z, b, cap, unlikely=True)
    k = known[key]
    return k if k is not None and k <= cap else None


def _refine_schedule(problem: _Problem, grid: np.ndarray, spacing: np.ndarray,
                     scores: np.ndarray, reached: np.ndarray, b: float,
                     nested_z: np.ndarray | None):
    """Schedules: refines from the grid's best point, from the runner-up if it lies in another
    basin and scores within 10% of the best so far, and from the constant-LR optimum
    `nested_z`, by Nelder-Mead with bounds; the reported step count is the exact first
    crossing at the chosen point (or at the best point that reaches the target)."""
    max_steps = problem.max_steps
    order = np.argsort(scores, kind="stable")
    best_z, best_val = grid[order[0]], scores[order[0]]
    ok = np.flatnonzero(reached)
    gr = ok[np.argmin(scores[ok])] if ok.size else None
    objective = _Objective(problem, b, hint=max(best_val, 1.0) if best_val < max_steps else 1.0,
                           best=best_val,
                           reached=(scores[gr], grid[gr]) if gr is not None else (np.inf, None))
    fatol = max(1e-3, 2.0 / (1.0 + min(best_val, max_steps)))
    candidates = [(0.0, grid[order[0]])]
    if len(order) > 1 and np.any(np.abs(grid[order[1]] - grid[order[0]]) > 1.5 * spacing):
        candidates.append((0.1, grid[order[1]]))
    if nested_z is not None:
        candidates.append((0.0, nested_z))
    for i, (slack, z0) in enumerate(candidates):
        val0 = best_val if i == 0 else math.expm1(objective(z0))
        if i > 0 and val0 < best_val:
            best_z, best_val = z0, val0
        if i > 0 and val0 > (1.0 + slack) * best_val:
            continue
        z_new, val = _local_search(problem, objective, z0, spacing, fatol)
        if val < best_val:
            best_z, best_val = z_new, val
    cfg, horizon = problem.config(best_z)
    score, k = problem.exact(cfg, horizon, b)
    if k is None and objective.reached[1] is not None:
        # a schedule's near miss can outscore every point that reaches the target; report
        # the best point that does reach it
        best_z = objective.reached[1]
        cfg, horizon = problem.config(best_z)
        score, k = problem.exact(cfg, horizon, b)
    return (score, k), np.clip(best_z, problem.bounds[:, 0], problem.bounds[:, 1]), problem


def _local_searches(problem: _Problem, objective: _Objective, starts: list[np.ndarray],
                    spacing: np.ndarray, fatol: float) -> list[tuple[np.ndarray, float]]:
    """`_local_search` from every start.  A 2 x 2 state map with a constant learning rate
    (two coordinates: momentum, Nesterov, SGD + EMA) runs all its searches in one compiled call
    (`compiled_searches`), bit for bit the Python searches on `objective`, which stay its
    oracle (`USE_SEARCH_KERNEL = False`)."""
    if not (USE_SEARCH_KERNEL and problem.pair and problem.closed and len(problem.names) == 2
            and problem.initial_loss > problem.target):
        return [_local_search(problem, objective, z0, spacing, fatol) for z0 in starts]
    simplexes = np.array([_initial_simplex(problem, z0, spacing) for z0 in starts])
    return compiled_searches(problem, objective, simplexes, fatol,
                             SIMPLEX_FEV * len(problem.names))


def compiled_searches(problem: _Problem, objective: _Objective, simplexes: np.ndarray,
                      fatol: float, maxfev: int) -> list[tuple[np.ndarray, float]]:
    """(z, steps) of `nqm.simplex.nelder_mead` on `objective` from each initial simplex, by
    `nqm._kernels.local_searches_pair` (a 2 x 2 map, two coordinates, constant learning rate;
    the kernel keeps its own memory of values, not `objective.known`)."""
    u, w = problem.parts.powers
    setup = ({"momentum": 0, "nesterov": 1, "sgd": 2}[problem.kind], problem.h_scale, u, w,
             problem.parts.wdet, problem.parts.wn, 1.0 / objective.batch_size,
             *problem.crossing_search(objective.hint), problem.target, ABOVE_MARGIN,
             UNREACHED_CAP)
    best, vals = _kernels.local_searches_pair(
        np.asarray(simplexes, dtype=np.float64), problem.bounds[:, 0].copy(),
        problem.bounds[:, 1].copy(), SIMPLEX_XATOL, fatol, int(maxfev), setup)
    return [(z, math.expm1(v)) for z, v in zip(best, vals.tolist())]


def _initial_simplex(problem: _Problem, z0: np.ndarray, spacing: np.ndarray) -> list:
    """Nelder-Mead's initial simplex at z0: z0 and a step of half a grid spacing along each
    coordinate, pointing inwards."""
    return [z0] + [np.clip(z0 + 0.5 * spacing[j] * np.eye(len(z0))[j] *
                           (1 if z0[j] < problem.bounds[j].mean() else -1),
                           problem.bounds[:, 0], problem.bounds[:, 1])
                   for j in range(len(z0))]


def _local_search(problem: _Problem, objective: _Objective, z0: np.ndarray,
                  spacing: np.ndarray, fatol: float) -> tuple[np.ndarray, float]:
    """(z, steps) of a local minimum near z0: bounded Brent within one grid spacing in one
    dimension (`nqm.brent`); Nelder-Mead with bounds (`nqm.simplex`) from a simplex of half
    grid spacings (pointing inwards) in more; both scipy's algorithms on Python floats."""
    if len(problem.names) == 1:
        lo = max(z0[0] - spacing[0], problem.bounds[0, 0])
        hi = min(z0[0] + spacing[0], problem.bounds[0, 1])
        x, fun = minimize_bounded(objective, lo, hi, xatol=1e-3)
        return np.array([x]), math.expm1(fun)
    z, val = nelder_mead(objective, _initial_simplex(problem, z0, spacing),
                         problem.bounds.tolist(), xatol=SIMPLEX_XATOL, fatol=fatol,
                         maxfev=SIMPLEX_FEV * len(z0))
    return z, math.expm1(val)


def _tuned_point(problem: _Problem, b: int, k: int | None, z: np.ndarray) -> TunedPoint:
    cfg, horizon = problem.config(z)
    edges = problem.edges(z, cfg)
    return TunedPoint(batch_size=b, steps=k, reached=k is not None, lr=cfg.lr,
                      momentum=cfg.momentum, ema=cfg.ema, horizon=horizon, at_edge=bool(edges),
                      edges=edges,
                      lr_limit=stability_factor(problem.kind, cfg.momentum) / problem.h_scale)
