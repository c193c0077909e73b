"""Tuned steps to target per batch size under loss-following noise (`nqm.coupled`).

Per batch size B the score of (lr[, beta]) is the exact first step k with E L(k) <= target
(`nqm.coupled.first_crossing`), made continuous for the search by interpolating the crossing
in log loss.  Search (the protocol of Shallue et al. 2019, arXiv 1811.03600, with the model's
expected loss in place of a run):

* box: log lr in [log(lr_lo_factor / h_max^(1-p)), log(lr_hi_factor / h_max^(1-p))]
  (default 1e-5 ... 4 / h_max^(1-p): above the stability limit 2 (1 + beta) / h_max^(1-p)
  of every beta the box holds), and for momentum log(1 - beta) in [log 1e-3, log 1];
* a log grid (`grid` points per axis), every point stopped once it cannot beat the best;
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


class _Scorer:
    """Continuous crossing of (log lr, log(1 - beta)) at one batch size, remembering the best
    integer crossing seen so each evaluation stops once it cannot win."""

    def __init__(self, spectrum, noise, cfg, batch_size):
        self.args = (spectrum, noise)
        self.cfg, self.batch_size = cfg, batch_size
        self.best = (math.inf, math.inf, None)       # (steps, x, params)

    def __call__(self, u: float, w: float | None = None) -> float:
        lr = math.exp(u)
        beta = 0.0 if w is None else 1.0 - math.exp(w)
        cap = self.cfg.max_steps if self.best[0] == math.inf else int(self.best[0]) + 1
        conf = OptimizerConfig(self.cfg.optimizer, lr, beta, self.cfg.precond)
        k, x = first_crossing(*self.args, conf, self.batch_size, self.cfg.target, cap)
        if k is not None and (k, x) < self.best[:2]:
            self.best = (k, x, (lr, beta))
        return x if k is not None else 1e30 * (1 + abs(u))


def _edges(i: int, n: int, names: tuple[str, str]) -> list[str]:
    return [names[0]] if i == 0 else [names[1]] if i == n - 1 else []


def tune_one(spectrum: Spectrum, noise: CoupledNoise, cfg: CoupledTuneConfig,
             batch_size: int) -> dict:
    """One record shaped like `nqm.predict`'s points."""
    hmax = float(np.max(spectrum.h ** (1.0 - cfg.precond)))
    lr_box = np.log([cfg.lr_lo_factor / hmax, cfg.lr_hi_factor / hmax])
    us = np.linspace(*lr_box, cfg.grid)
    score = _Scorer(spectrum, noise, cfg, batch_size)
    if cfg.optimizer == "sgd":
        vals = np.array([score(u) for u in us])
        i = int(np.argmin(vals))
        edges = _edges(i, us.size, ("lr_low", "lr_high"))
        if vals[i] < 1e29:
            minimize_scalar(score, bounds=(us[max(i - 1, 0)], us[min(i + 1, us.size - 1)]),
                            method="bounded", options={"xatol": 1e-6})
    else:
        ws = np.linspace(*np.log(cfg.one_minus_beta), max(cfg.grid // 3, 3))
        vals = np.array([[score(u, w) for w in ws] for u in us])
        i, j = np.unravel_index(int(np.argmin(vals)), vals.shape)
        edges = (_edges(int(i), us.size, ("lr_low", "lr_high"))
                 + _edges(int(j), ws.size, ("beta_high", "beta_low")))
        if vals[i, j] < 1e29:
            lo = np.array([lr_box[0], ws[0]])
            hi = np.array([lr_box[1], ws[-1]])
            minimize(lambda p: score(*np.clip(p, lo, hi)), np.array([us[i], ws[j]]),
                     method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-3})
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
