"""What a sweep measures, without simulation: a quantile of one run's loss at evaluated steps.

A sweep (Shallue et al. 2019, arXiv 1811.03600) reports the best of N trials' first evaluated
step whose loss is <= the target (`nqm.first_passage` simulates it).  Here it is approximated
deterministically.  For a constant learning rate the NQM iterate of one run is a linear
function of Gaussian noise (Zhang et al. 2019, arXiv 1907.04164), so in direction i

    delta_i(k) ~ N(m_i(k), v_i(k)),   m_i(k) = sqrt(s0_i) d_i(k),   v_i(k) = (c_i / B) n_i(k),

with d_i and n_i the deterministic and noise responses of `nqm.closed_form.Modes`
(d_i(k) = Re sum_j q_ij lam_ij^k, n_i(k) = Re sum_jl g_ij g_il (1 - (lam_ij lam_il)^k) /
(1 - lam_ij lam_il)); theta(0) = sqrt(s0) is deterministic, as in the simulated sweep.
A row with count_i stands for r_i = max(round(count_i), 1) independent directions of weight
w_i = count_i / r_i (as `nqm.first_passage.Directions`), so for L = 1/2 sum count_i h_i delta_i^2

    E L(k)   = sum_i 1/2 count_i h_i (m_i^2 + v_i)                 (= D(k) + N(k)/B, exact)
    Var L(k) = sum_i 1/2 r_i w_i^2 h_i^2 (v_i^2 + 2 m_i^2 v_i)     (exact for Gaussian delta).

Assumed (approximations): L(k) is Gamma distributed with that mean and variance (a weighted
sum of non-central chi-squares, matched in two moments); the best of N trials' first crossing
is the first evaluated step k where the `quantile` q of L(k) is <= the target (the marginal at
each step stands in for the first passage, and the N trials, which share one noise stream and
differ only in their learning rates, count as a few effective independent runs: q ~ 1/N_eff);
the learning rate (and momentum) is the one whose q-crossing is earliest, as if the sweep's
trials sampled it finely.  Evaluations at steps 1, 2, ... at most `eval_ratio` apart
(`nqm.first_passage.eval_schedule`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from scipy.special import gammaincinv

from nqm.closed_form import Modes
from nqm.errors import NQMInputError
from nqm.first_passage import eval_schedule
from nqm.optimizer import OptimizerConfig, check_precond, lr_limit
from nqm.spectrum import Spectrum


@dataclass(frozen=True)
class PassageConfig:
    """The approximation's choices: the quantile q, the evaluation spacing, and the tuning
    grid (`lr_points` learning rates log-spaced from `lr_span` times the stability limit up to
    it; for momentum `beta_points` values of 1 - beta log-spaced over `one_minus_beta_range`,
    and beta = 0)."""

    quantile: float = 0.2
    eval_ratio: float = 1.05
    lr_points: int = 120
    lr_span: float = 1e-5
    beta_points: int = 7
    one_minus_beta_range: tuple[float, float] = (1e-3, 1.0)

    def __post_init__(self):
        if not 0.0 < self.quantile < 1.0:
            raise NQMInputError(f"quantile must be in (0, 1), got {self.quantile}")
        if not self.eval_ratio > 1.0:
            raise NQMInputError(f"eval_ratio must be > 1, got {self.eval_ratio}")
        for name in ("lr_points", "beta_points"):
            v = getattr(self, name)
            if isinstance(v, bool) or int(v) != v or v < 2:
                raise NQMInputError(f"{name} must be an integer >= 2, got {v}")
        if not 0.0 < self.lr_span < 1.0:
            raise NQMInputError(f"lr_span must be in (0, 1), got {self.lr_span}")
        lo, hi = self.one_minus_beta_range
        if not 0.0 < lo < hi <= 1.0:
            raise NQMInputError(f"one_minus_beta_range must satisfy 0 < lo < hi <= 1, "
                                f"got {lo}, {hi}")


def quantile_for_trials(n_trials: int) -> float:
    """q = 1 / (1 + N_eff), N_eff = sqrt(N) / 2: the trials of a sweep share one noise stream
    and only those near the best lr compete, so N trials act as a few independent runs.
    Chosen by matching the simulated sweep (`nqm.first_passage`) on the linreg spectrum:
    N = 64 -> q = 0.2, N = 16 -> q = 1/3 (docs/validation.md, item 7)."""
    if isinstance(n_trials, bool) or int(n_trials) != n_trials or n_trials < 1:
        raise NQMInputError(f"trials must be an integer >= 1, got {n_trials}")
    return 1.0 / (1.0 + 0.5 * math.sqrt(n_trials))


class PassagePoint(NamedTuple):
    """Tuned result at one batch size (the fields `nqm.calibrate` reads of a tuned point)."""

    batch_size: int
    steps: int | None
    reached: bool
    lr: float | None       # None where no setting reaches the target
    momentum: float | None


def responses(modes: Modes, ks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d, n): each row's deterministic and noise responses at the steps ks, shape (K, rows).
    With P_j = lam_j^k: d = Re sum_j q_j P_j and n = Re sum_jl G_jl (1 - P_j P_l),
    G_jl = g_j g_l / (1 - lam_j lam_l)."""
    k = np.asarray(ks, dtype=np.float64)[:, None, None]
    with np.errstate(over="ignore", invalid="ignore"):
        p = np.exp(k * modes.logabs) * np.exp(1j * (k * modes.arg))     # (K, rows, m)
        d = np.real(np.sum(modes.q * p, axis=-1))
        G = modes.g[:, :, None] * modes.g[:, None, :] * modes.inv1m      # (rows, m, m)
        n = np.real(np.sum(G, axis=(-2, -1)) - np.einsum("krj,rjl,krl->kr", p, G, p))
    return d, n


def loss_moments(spectrum: Spectrum, d: np.ndarray, n: np.ndarray,
                 batch_size: float) -> tuple[np.ndarray, np.ndarray]:
    """(E L(k), Var L(k)) of the module docstring from the responses (d, n) at one batch size."""
    reps = np.maximum(np.rint(spectrum.count), 1.0)
    m2 = spectrum.s0 * d**2
    v = spectrum.c * n / batch_size
    mean = 0.5 * np.sum(spectrum.count * spectrum.h * (m2 + v), axis=-1)
    var = 0.5 * np.sum(spectrum.count**2 / reps * spectrum.h**2 * (v**2 + 2.0 * m2 * v),
                       axis=-1)
    return mean, var


def gamma_quantile(mean: np.ndarray, var: np.ndarray, q: float) -> np.ndarray:
    """The q-quantile of the Gamma law with this mean and variance (the mean where var = 0)."""
    mean, var = np.broadcast_arrays(np.asarray(mean, float), np.asarray(var, float))
    out = mean.copy()
    ok = (var > 0) & (mean > 0) & np.isfinite(mean) & np.isfinite(var)
    shape = mean[ok] ** 2 / var[ok]
    out[ok] = gammaincinv(shape, q) * (var[ok] / mean[ok])
    return out


def first_quantile_crossing(q_loss: np.ndarray, ks: np.ndarray, target: float) -> int | None:
    """The first step of ks whose loss quantile is <= target (None if none)."""
    hit = np.flatnonzero(q_loss <= target)
    return int(ks[hit[0]]) if hit.size else None


def crossing_steps(spectrum: Spectrum, config: OptimizerConfig, batch_sizes, target: float,
                   ks: np.ndarray, quantile: float, chunk: int = 96) -> list[int | None]:
    """The q-crossing of one (lr, beta) at every batch size (None: unstable or not reached).
    The steps are taken `chunk` at a time, stopping once every batch size has crossed."""
    modes = Modes.build(spectrum, config)
    out: dict = {b: None for b in batch_sizes}
    if not modes.stable:
        return list(out.values())
    pending = list(batch_sizes)
    for start in range(0, len(ks), chunk):
        part = ks[start:start + chunk]
        d, n = responses(modes, part)
        for b in list(pending):
            mean, var = loss_moments(spectrum, d, n, float(b))
            hit = first_quantile_crossing(gamma_quantile(mean, var, quantile), part, target)
            if hit is not None:
                out[b] = hit
                pending.remove(b)
        if not pending:
            break
    return list(out.values())


def _betas(kind: str, cfg: PassageConfig) -> np.ndarray:
    if kind == "sgd":
        return np.zeros(1)
    lo, hi = np.log(cfg.one_minus_beta_range)
    return np.unique(np.concatenate([[0.0], 1.0 - np.exp(np.linspace(lo, hi, cfg.beta_points))]))


class PassageTable:
    """The moments of every (lr, beta) of the tuning grid at every evaluated step, reduced to
    four sums per step so that any target, noise scale kappa (c -> kappa c) and batch size B
    is scored without recomputing responses.  With x = kappa / B, a_i = s0_i d_i^2 and
    b_i = c_i n_i (module docstring: m_i^2 = a_i, v_i = x b_i):

        E L   = D + x N,         D = 1/2 sum count h a,   N = 1/2 sum count h b,
        Var L = x^2 V2 + x V1,   V2 = 1/2 sum r w^2 h^2 b^2,   V1 = sum r w^2 h^2 a b.

    The grid: for each beta (`_betas`), `lr_points` learning rates log-spaced from `lr_span`
    times the stability limit up to it."""

    def __init__(self, spectrum: Spectrum, kind: str, precond: float, max_steps: int,
                 config: PassageConfig = PassageConfig()):
        if kind not in ("sgd", "momentum"):
            raise NQMInputError(f"the first-passage predictor models sgd and momentum, "
                                f"not '{kind}'")
        check_precond(precond)
        self.config = config
        self.ks = np.asarray(eval_schedule(int(max_steps), config.eval_ratio), dtype=np.int64)
        self.settings, sums = [], []
        ch = 0.5 * spectrum.count * spectrum.h
        w2h2 = spectrum.count**2 / np.maximum(np.rint(spectrum.count), 1.0) * spectrum.h**2
        for beta in _betas(kind, config):
            limit = lr_limit(spectrum.h, kind, beta, precond) * (1.0 - 1e-9)
            for lr in limit * np.exp(np.linspace(math.log(config.lr_span), 0.0,
                                                 config.lr_points)):
                modes = Modes.build(spectrum, OptimizerConfig(kind=kind, lr=float(lr),
                                                              momentum=float(beta),
                                                              precond=precond))
                if not modes.stable:
                    continue
                d, n = responses(modes, self.ks)
                a, b = spectrum.s0 * d**2, spectrum.c * n
                sums.append(np.stack([a @ ch, b @ ch, 0.5 * (b**2 @ w2h2), (a * b) @ w2h2]))
                self.settings.append((float(lr), float(beta)))
        self.sums = np.array(sums)                                   # (settings, 4, K)

    def crossings(self, target: float, batch_size: float, noise_scale: float = 1.0,
                  quantile: float | None = None):
        """Per setting, the first evaluated step whose loss quantile (default the config's)
        is <= target (-1: none)."""
        x = noise_scale / batch_size
        D, N, V2, V1 = (self.sums[:, j] for j in range(4))
        q = gamma_quantile(D + x * N, x * x * V2 + x * V1,
                           self.config.quantile if quantile is None else quantile)
        hit = q <= target
        first = np.argmax(hit, axis=1)
        return np.where(hit.any(axis=1), self.ks[first], -1)

    def tune(self, target: float, batch_sizes, noise_scale: float = 1.0,
             quantile: float | None = None) -> list[PassagePoint]:
        """Per batch size, the setting with the earliest q-crossing (the smallest lr of ties)."""
        out = []
        for b in sorted({int(v) for v in batch_sizes}):
            steps = self.crossings(target, float(b), noise_scale, quantile)
            ok = np.flatnonzero(steps > 0)
            if not ok.size:
                out.append(PassagePoint(b, None, False, None, None))
                continue
            j = ok[np.argmin(steps[ok])]
            lr, beta = self.settings[j]
            out.append(PassagePoint(b, int(steps[j]), True, lr, beta))
        return out


_TABLES: dict = {}
MAX_TABLES = 8   # tables kept for reuse (a calibration builds a few on one spectrum)


def table_for(spectrum: Spectrum, kind: str, precond: float, max_steps: int,
              config: PassageConfig = PassageConfig()) -> PassageTable:
    """`PassageTable(...)`, reused while the same spectrum and settings come again (the
    quantile is not part of the table: `PassageTable.tune` takes it)."""
    key = (spectrum.h.tobytes(), spectrum.c.tobytes(), spectrum.s0.tobytes(),
           spectrum.count.tobytes(), kind, float(precond), int(max_steps),
           replace(config, quantile=0.5))
    if key not in _TABLES:
        if len(_TABLES) >= MAX_TABLES:
            _TABLES.pop(next(iter(_TABLES)))
        _TABLES[key] = PassageTable(spectrum, kind, precond, max_steps, config)
    return _TABLES[key]


def tune_passage(spectrum: Spectrum, kind: str, batch_sizes, target: float,
                 precond: float = 0.0, max_steps: int = 10**6,
                 config: PassageConfig = PassageConfig()) -> list[PassagePoint]:
    """Per batch size, the (lr, beta) of the grid with the earliest q-crossing (module
    docstring; `PassageTable`).  `kind` is sgd or momentum (heavy ball)."""
    return table_for(spectrum, kind, precond, max_steps, config).tune(
        target, batch_sizes, quantile=config.quantile)
