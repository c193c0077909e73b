"""Tuned steps to target per batch size under loss-following noise (`nqm.coupled`).

Per batch size B the score of (lr[, beta]) is the exact first step k with E L(k) <= target
(`nqm.coupled.first_crossing`), made continuous for the search by interpolating the crossing
in log loss.  Search (the protocol of Shallue et al. 2019, arXiv 1811.03600, with the model's
expected loss in place of a run):

* box: log lr in [log(lr_lo_factor / h_max^(1-p)), log(lr_hi_factor / h_max^(1-p))]
  (default 1e-5 ... 4 / h_max^(1-p): above the stability limit 2 (1 + beta) / h_max^(1-p)
  of every beta the box holds), and for momentum log(1 - beta) in [log 1e-3, log 1];
* a log grid (`grid` points per axis), every point stopped once it cannot beat the best
  (under a step cap that grows until some point crosses: `_grid`);
* then bounded Brent on log lr between the grid neighbours of the best point (SGD), or
  Nelder-Mead on (log lr, log(1 - beta)) from it, clipped to the box (momentum);
* the exact integer crossing at the optimum (never worse than the best grid point).
An optimum on a grid edge is flagged in `edges` ("lr_low", "lr_high", "beta_low", "beta_high").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize, minimize_scalar

from nqm.checks import check_batch_sizes, check_budget, check_target
from nqm.coupled import CoupledNoise, first_crossing
from nqm.errors import NQMInputError
from nqm.optimizer import OptimizerConfig, check_precond
from nqm.spectrum import Spectrum


@dataclass(frozen=True)
class CoupledTuneConfig:
    """Options of the loss-following model's tuning: target, optimizer, preconditioner, ..."""

    target: float
    optimizer: str = "sgd"
    precond: float = 0.0
    batch_sizes: tuple[int, ...] = (1, 4, 16, 64, 256, 1024)
    max_steps: int = 10**6
    grid: int = 40
    lr_lo_factor: float = 1e-5
    lr_hi_factor: float = 4.0
    one_minus_beta: tuple[float, float] = (1e-3, 1.0)
    local_tol: tuple[float, float] = (1e-4, 1e-3)   # Nelder-Mead's (xatol, fatol)

    def __post_init__(self):
        check_target(self.target)
        if self.optimizer not in ("sgd", "momentum"):
            raise NQMInputError(f"optimizer must be sgd or momentum, got '{self.optimizer}'")
        check_precond(self.precond)
        check_batch_sizes(self.batch_sizes)
        check_budget(self.max_steps)
        if int(self.grid) != self.grid or self.grid < 3:
            raise NQMInputError(f"grid must be an integer >= 3, got {self.grid}")
        if not 0 < self.lr_lo_factor < self.lr_hi_factor:
            raise NQMInputError(f"lr_lo_factor must be in (0, lr_hi_factor), "
                                f"got {self.lr_lo_factor}")
        lo, hi = self.one_minus_beta
        if not 0 < lo < hi <= 1:
            raise NQMInputError(f"one_minus_beta must satisfy 0 < lo < hi <= 1, got {lo}, {hi}")
        if not all(t > 0 for t in self.local_tol) or len(self.local_tol) != 2:
            raise NQMInputError(f"local_tol must be two numbers > 0, got {self.local_tol}")


class _Scorer:
    """Continuous crossing of (log lr, log(1 - beta)) at one batch size, remembering the best
    integer crossing seen so each evaluation stops once it cannot win."""

    def __init__(self, spectrum, noise, cfg, batch_size):
        self.args = (spectrum, noise)
        self.cfg, self.batch_size = cfg, batch_size
        self.best = (math.inf, math.inf, None)       # (steps, x, params)
        self.limit = cfg.max_steps                   # the grid pass's step cap (`_grid`)

    def __call__(self, u: float, w: float | None = None) -> float:
        lr = math.exp(u)
        beta = 0.0 if w is None else 1.0 - math.exp(w)
        cap = self.limit if self.best[0] == math.inf else min(int(self.best[0]) + 1, self.limit)
        conf = OptimizerConfig(self.cfg.optimizer, lr, beta, self.cfg.precond)
        k, x = first_crossing(*self.args, conf, self.batch_size, self.cfg.target, cap)
        if k is not None and (k, x) < self.best[:2]:
            self.best = (k, x, (lr, beta))
        return x if k is not None else 1e30 * (1 + abs(u))


def _grid(us: np.ndarray, fn, score: _Scorer) -> np.ndarray:
    """fn at every grid lr (values in grid order), under a step cap that starts at
    max_steps / 512 and grows 8x until some point crosses (then max_steps again for the local
    search).  Points are scored from the largest lr down.  A point that would cross only
    after the cap cannot beat the one that crossed under it, so the argmin, hence the search,
    is that of scoring every point to max_steps; the cap only saves the runs that plateau
    above the target."""
    max_steps = score.cfg.max_steps
    score.limit = min(max(max_steps // 512, 64), max_steps)
    while True:
        vals = [None] * us.size
        for i in range(us.size - 1, -1, -1):
            vals[i] = fn(us[i])
        if score.best[0] < math.inf or score.limit >= max_steps:
            break
        score.limit = min(8 * score.limit, max_steps)
    score.limit = max_steps
    return np.array(vals)


def _edges(i: int, n: int, names: tuple[str, str]) -> list[str]:
    return [names[0]] if i == 0 else [names[1]] if i == n - 1 else []


def _local(score: _Scorer, cfg: CoupledTuneConfig, lr_box, start) -> list[str]:
    """The local search alone from start = (lr, beta) (no grid): bounded Brent on log lr
    within +-1 of the start (SGD) or Nelder-Mead on (log lr, log(1 - beta)) (momentum)."""
    u0 = float(np.clip(math.log(start[0]), *lr_box))
    if cfg.optimizer == "sgd":
        score(u0)
        minimize_scalar(score, bounds=(max(u0 - 1.0, lr_box[0]), min(u0 + 1.0, lr_box[1])),
                        method="bounded", options={"xatol": 1e-6})
        return []
    lo = np.array([lr_box[0], math.log(cfg.one_minus_beta[0])])
    hi = np.array([lr_box[1], math.log(cfg.one_minus_beta[1])])
    p0 = np.clip([u0, math.log(max(1.0 - start[1], 1e-300))], lo, hi)
    score(*p0)
    minimize(lambda p: score(*np.clip(p, lo, hi)), p0, method="Nelder-Mead",
             options={"xatol": cfg.local_tol[0], "fatol": cfg.local_tol[1]})
    return []


def tune_one(spectrum: Spectrum, noise: CoupledNoise, cfg: CoupledTuneConfig,
             batch_size: int, start: tuple[float, float] | None = None) -> dict:
    """One record shaped like `nqm.predict`'s points.  With `start` = (lr, beta) (an optimum
    of a nearby problem) only the local search runs from it, without the grid, and no edge
    is flagged."""
    hmax = float(np.max(spectrum.h ** (1.0 - cfg.precond)))
    lr_box = np.log([cfg.lr_lo_factor / hmax, cfg.lr_hi_factor / hmax])
    us = np.linspace(*lr_box, cfg.grid)
    score = _Scorer(spectrum, noise, cfg, batch_size)
    if start is not None:
        edges = _local(score, cfg, lr_box, start)
    elif cfg.optimizer == "sgd":
        vals = _grid(us, score, score)
        i = int(np.argmin(vals))
        edges = _edges(i, us.size, ("lr_low", "lr_high"))
        if vals[i] < 1e29:
            minimize_scalar(score, bounds=(us[max(i - 1, 0)], us[min(i + 1, us.size - 1)]),
                            method="bounded", options={"xatol": 1e-6})
    else:
        ws = np.linspace(*np.log(cfg.one_minus_beta), max(cfg.grid // 3, 3))
        vals = _grid(us, lambda u: [score(u, w) for w in ws], score)
        i, j = np.unravel_index(int(np.argmin(vals)), vals.shape)
        edges = (_edges(int(i), us.size, ("lr_low", "lr_high"))
                 + _edges(int(j), ws.size, ("beta_high", "beta_low")))
        if vals[i, j] < 1e29:
            lo = np.array([lr_box[0], ws[0]])
            hi = np.array([lr_box[1], ws[-1]])
            minimize(lambda p: score(*np.clip(p, lo, hi)), np.array([us[i], ws[j]]),
                     method="Nelder-Mead",
                     options={"xatol": cfg.local_tol[0], "fatol": cfg.local_tol[1]})
    steps, _, params = score.best
    reached = params is not None
    return {"batch_size": int(batch_size), "steps": int(steps) if reached else None,
            "reached": reached, "lr": params[0] if reached else None,
            "momentum": params[1] if reached else None,
            "lr_effective": params[0] / (1 - params[1]) if reached else None,
            "at_edge": bool(edges),
            "edges": edges, "lr_box": [float(np.exp(lr_box[0])), float(np.exp(lr_box[1]))]}


def tune(spectrum: Spectrum, noise: CoupledNoise, cfg: CoupledTuneConfig) -> list[dict]:
    """Tuned records for every batch size of `cfg`, smallest first."""
    return [tune_one(spectrum, noise, cfg, int(b)) for b in check_batch_sizes(cfg.batch_sizes)]
