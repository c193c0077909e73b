"""What a tuning sweep measures: the best of N noisy runs' first evaluated crossing.

A sweep (Shallue et al. 2019, arXiv 1811.03600; `nqm sweep`) reports per batch size B the
minimum over N trials of each trial's FIRST EVALUATED step whose metric is <= the target.  That
is a first-passage quantity of single runs, not the step where the expected loss crosses: when
one run's loss fluctuates, the luckiest of N crosses earlier, and learning rates whose expected
loss never reaches the target still cross by a fluctuation.

This module simulates the protocol with the model's own stochastic iteration (`nqm.coupled`):
per round N learning rates from a scrambled Sobol sequence over log lr in `lr_range` (and
log(1 - beta) in `one_minus_beta_range` for momentum); all trials of a round share one noise
stream (a sweep feeds every trial the same batches); the metric is read at the steps of
`eval_schedule` (1, 2, ..., each at most `eval_ratio` above the previous); a trial whose loss
exceeds `diverge_factor` times the initial minibatch loss (L + sigma^2 / 2 for least squares)
diverged and is excluded; when the best trial's log lr lies in the outer `outer` fraction of the
range, that side is widened by half the range's width and N more trials run (at most
`max_widen` times).  Gradient noise in the eigenbasis, per step,

    eps = (kappa z1 H delta + sqrt(kappa delta'H delta H + C) z2) / sqrt(B),
    z1 ~ N(0, 1), z2 ~ N(0, I),  C = diag(sigma^2 h),

has exactly the covariance (kappa (H delta delta'H + delta'H delta H) + C) / B of
`nqm.coupled`.  With `noise="data"` the gradient is instead that of real minibatch least
squares on sampled data, g = X'(X delta - sigma xi) / B with the B rows of X ~ N(0, H) and
xi ~ N(0, I) (kappa = 1 only; exact for Gaussian inputs, whose per-example gradients are not
Gaussian: at small B their tails are heavier); the trials then run in lockstep, as in a sweep.
The whole sweep is repeated `repeats` times for a median and spread.

Rows with count > 1 are expanded into round(count) directions (at least 1) of weight
count / round(count), so that each direction fluctuates on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import qmc

from nqm import _coupled_kernels as _k
from nqm.checks import check_batch_sizes, check_budget, check_target
from nqm.coupled import CoupledNoise
from nqm.errors import NQMInputError
from nqm.optimizer import check_precond
from nqm.spectrum import Spectrum


@dataclass(frozen=True)
class ProtocolConfig:
    """The sweep protocol being simulated (defaults: `nqm sweep` with 64 trials)."""

    target: float
    optimizer: str = "sgd"
    precond: float = 0.0
    batch_sizes: tuple[int, ...] = (1, 4, 16, 64, 256, 1024)
    n_trials: int = 64
    lr_range: tuple[float, float] = (1e-3, 3.0)
    one_minus_beta_range: tuple[float, float] = (1e-2, 1.0)
    budget: int = 40000
    max_widen: int = 2
    outer: float = 0.10
    eval_ratio: float = 1.05
    diverge_factor: float = 1e3
    repeats: int = 16
    noise: str = "gaussian"

    def __post_init__(self):
        check_target(self.target)
        if self.noise not in ("gaussian", "data"):
            raise NQMInputError(f"noise must be 'gaussian' or 'data', got '{self.noise}'")
        if self.optimizer not in ("sgd", "momentum"):
            raise NQMInputError(f"optimizer must be sgd or momentum, got '{self.optimizer}'")
        check_precond(self.precond)
        check_batch_sizes(self.batch_sizes)
        check_budget(self.budget)
        for name in ("n_trials", "repeats"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise NQMInputError(f"{name} must be an integer >= 1, got {v}")
        if int(self.max_widen) != self.max_widen or self.max_widen < 0:
            raise NQMInputError(f"max_widen must be an integer >= 0, got {self.max_widen}")
        for name in ("lr_range", "one_minus_beta_range"):
            lo, hi = getattr(self, name)
            if not 0 < lo < hi:
                raise NQMInputError(f"{name} must satisfy 0 < lo < hi, got {lo}, {hi}")
        if not 0 <= self.outer < 0.5:
            raise NQMInputError(f"outer must be in [0, 0.5), got {self.outer}")
        if not self.eval_ratio > 1:
            raise NQMInputError(f"eval_ratio must be > 1, got {self.eval_ratio}")
        if not self.diverge_factor > 1:
            raise NQMInputError(f"diverge_factor must be > 1, got {self.diverge_factor}")


def eval_schedule(budget: int, ratio: float = 1.05) -> list[int]:
    """Steps 1, 2, ..., each at most `ratio` times the previous, and the budget."""
    out, k = [], 1
    while k <= budget:
        out.append(k)
        k = max(k + 1, int(math.floor(k * ratio)))
    if out[-1] != budget:
        out.append(budget)
    return out


class Directions:
    """The spectrum expanded into single directions (see the module docstring)."""

    def __init__(self, spectrum: Spectrum, theta0=None):
        reps = np.maximum(np.rint(spectrum.count), 1).astype(np.int64)
        self.h = np.repeat(spectrum.h, reps)
        self.weight = np.repeat(spectrum.count / reps, reps)
        t0 = np.sqrt(spectrum.s0) if theta0 is None else np.asarray(theta0, dtype=np.float64)
        if t0.shape[-1] != spectrum.n_rows or t0.ndim > 2:
            raise NQMInputError(f"theta0 must have shape ({spectrum.n_rows},) or "
                                f"(n_trials, {spectrum.n_rows}), got {t0.shape}")
        self.theta0 = np.atleast_2d(np.repeat(t0, reps, axis=-1))
        self.initial_loss = float(0.5 * np.mean(self.theta0**2 @ (self.weight * self.h)))

    def starts(self, n: int) -> np.ndarray:
        """Initial points of n trials: the rows of theta0, cycled."""
        return np.ascontiguousarray(self.theta0[np.arange(n) % self.theta0.shape[0]])


def _settings(cfg: ProtocolConfig, rng, lr_range, beta_range):
    dims = 1 if cfg.optimizer == "sgd" else 2
    u = qmc.Sobol(d=dims, scramble=True, seed=rng).random(cfg.n_trials)
    lrs = np.exp(np.log(lr_range[0]) + u[:, 0] * np.log(lr_range[1] / lr_range[0]))
    if dims == 1:
        return lrs, np.zeros(cfg.n_trials)
    lb = np.log(beta_range)
    return lrs, 1.0 - np.exp(lb[0] + u[:, 1] * (lb[1] - lb[0]))


def _round_data(dirs: Directions, noise: CoupledNoise, batch_size: int, precw, lrs, betas,
                cfg: ProtocolConfig, evals, diverge: float, stop_at: int, rng):
    """One round on sampled least-squares batches, all trials in lockstep on the same
    batches; stops at the first evaluation where a trial beats the target."""
    if not noise.coupling:
        raise NQMInputError("noise 'data' samples least squares, whose noise follows the "
                            "loss: coupling must be on")
    theta = dirs.starts(cfg.n_trials).T.copy()          # (d, N)
    vel = np.zeros_like(theta)
    steps = np.full(cfg.n_trials, -1, dtype=np.int64)
    div = np.zeros(cfg.n_trials, dtype=bool)
    sqrt_h, sigma, wh = np.sqrt(dirs.h), math.sqrt(noise.sigma2), dirs.weight * dirs.h
    step = lrs[None, :] * precw[:, None]
    for t in range(1, stop_at + 1):
        x = rng.standard_normal((batch_size, dirs.h.size)) * sqrt_h
        y = sigma * rng.standard_normal((batch_size, 1))
        g = x.T @ (x @ theta - y) / batch_size
        active = ~div
        if cfg.optimizer == "momentum":
            vel = np.where(active, betas * vel - step * g, vel)
            theta = np.where(active, theta + vel, theta)
        else:
            theta = np.where(active, theta - step * g, theta)
        loss = 0.5 * (wh @ theta**2)
        div |= active & ~(loss <= diverge)
        if evals[t]:
            hit = ~div & (loss <= cfg.target)
            if hit.any():
                steps[hit] = t
                break
    return steps, div


def sweep_once(spectrum: Spectrum, noise: CoupledNoise, cfg: ProtocolConfig, batch_size: int,
               rng: np.random.Generator, directions: Directions | None = None) -> dict:
    """One simulated sweep at one batch size: the best trial's steps (None if no trial
    reached the target), lr, momentum, rounds run, trials and divergences."""
    dirs = directions or Directions(spectrum)
    c = np.repeat(noise.additive(spectrum), np.maximum(np.rint(spectrum.count), 1).astype(int))
    precw = dirs.h ** (-cfg.precond)
    evals = np.zeros(cfg.budget + 1, dtype=np.bool_)
    evals[eval_schedule(cfg.budget, cfg.eval_ratio)] = True
    half_s2 = 0.5 * noise.sigma2
    diverge = cfg.diverge_factor * (dirs.initial_loss + half_s2) - half_s2
    lr_range, beta_range = list(cfg.lr_range), list(cfg.one_minus_beta_range)
    best, trials, n_div, rounds = None, 0, 0, 0
    for _ in range(cfg.max_widen + 1):
        rounds += 1
        lrs, betas = _settings(cfg, rng, lr_range, beta_range)
        stop_at = cfg.budget if best is None else best[0]
        if cfg.noise == "data":
            steps, div = _round_data(dirs, noise, batch_size, precw, lrs, betas, cfg, evals,
                                     diverge, stop_at, rng)
        else:
            z = rng.standard_normal((stop_at, dirs.h.size + 1))
            steps, div = _k.first_passage_round(
                dirs.h, np.sqrt(dirs.h), dirs.weight, precw, c, noise.kappa,
                float(batch_size), dirs.starts(cfg.n_trials), lrs, betas,
                cfg.optimizer == "momentum", z, evals, cfg.target, diverge, stop_at)
        trials += cfg.n_trials
        n_div += int(div.sum())
        ok = np.flatnonzero((steps > 0) & ~div)
        if ok.size:
            j = ok[np.argmin(steps[ok])]
            if best is None or steps[j] < best[0]:
                best = (int(steps[j]), float(lrs[j]), float(betas[j]))
        if best is None:
            break
        lo, hi = np.log(lr_range)
        x = (math.log(best[1]) - lo) / (hi - lo)
        if cfg.outer <= x <= 1 - cfg.outer:
            break
        if x < cfg.outer:
            lr_range[0] = float(np.exp(lo - 0.5 * (hi - lo)))
        else:
            lr_range[1] = float(np.exp(hi + 0.5 * (hi - lo)))
    return {"steps": None if best is None else best[0],
            "lr": None if best is None else best[1],
            "momentum": None if best is None else best[2],
            "rounds": rounds, "trials": trials, "diverged": n_div}


def first_passage(spectrum: Spectrum, noise: CoupledNoise, cfg: ProtocolConfig,
                  rng: np.random.Generator, theta0=None) -> list[dict]:
    """Per batch size: the median over `cfg.repeats` simulated sweeps of the best trial's
    first evaluated crossing, its 16th / 84th percentiles, the medians of the best trials' lr,
    momentum and effective lr / (1 - momentum), and every repeat's result.
    Repeats that reach no target count as +inf (the median is None if more than half do).
    `theta0` (per row, or one row per trial) sets the initial points; default sqrt(s0)."""
    if not isinstance(noise, CoupledNoise):
        raise NQMInputError(f"the simulated sweep takes least-squares or additive noise, "
                            f"not {type(noise).__name__}")
    dirs = Directions(spectrum, theta0)
    out = []
    for b in check_batch_sizes(cfg.batch_sizes):
        runs = [sweep_once(spectrum, noise, cfg, int(b), rng, dirs) for _ in range(cfg.repeats)]
        steps = np.array([math.inf if r["steps"] is None else r["steps"] for r in runs])
        q16, med, q84 = np.percentile(steps, [16, 50, 84])
        won = [r for r in runs if r["lr"] is not None]
        out.append({"batch_size": int(b),
                    "steps": None if not np.isfinite(med) else float(med),
                    "reached": bool(np.isfinite(med)),
                    "steps_q16": float(q16), "steps_q84": float(q84),
                    "lr": float(np.median([r["lr"] for r in won])) if won else None,
                    "momentum": (float(np.median([r["momentum"] for r in won]))
                                 if won else None),
                    "lr_effective": (float(np.median([r["lr"] / (1 - r["momentum"])
                                                      for r in won])) if won else None),
                    "repeats": runs})
    return out
