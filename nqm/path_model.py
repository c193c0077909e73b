"""Steps to target of the path model (`nqm.path`), tuned per batch size, for `nqm.calibrate`.

Each segment is the noisy quadratic model of Zhang et al. 2019 (arXiv 1907.04164) with its exact
expected loss; the chain and the shared learning rate are this module's.

With one learning rate lr (and heavy-ball momentum beta) for the whole run, segment j of the
path runs the NQM of checkpoint j (`nqm.closed_form.Modes`: exact expected loss; noise
kappa c_j / B) from s0_j until its expected loss first reaches T_j:

    k_j(lr, beta, B) = min {k : E L_j(k) <= T_j},   S(lr, beta, B) = sum_j k_j,

each segment starting from its measured displacement with no memory of the previous one
(deterministic iterate, momentum buffer zero).  The fitted scalars are those of
`nqm.calibrate`: T_{m-1} = f L0_{m-1} and kappa, shared by every segment.  With one segment
S is exactly the single-quadratic calibrated model's step count.

Tuning minimises S over (lr, beta) separately for every B, in the coordinates of
`nqm.tuning`: u = log(lr / lr_limit(beta)), lr_limit = stability_factor(kind, beta) / max_ij
h_ji^(1-p) (stable in every segment), and v = log(1 - beta) for momentum, within
`nqm.search_space.SearchSpace`'s bounds.  A grid (every B at once) gives N_STARTS starts (its
best points); from each, Nelder-Mead minimises the sum of the segments' crossings interpolated
between integer steps, k_j - 1 + (log L_j(k_j - 1) - log T_j) / (log L_j(k_j - 1) -
log L_j(k_j)), and the point with the fewest integer steps S (grid or local) is reported.  A
segment not reached within the budget scores max_steps (1 + log(L_j(max_steps) / T_j)).  SGD
and heavy ball, each with the H^-p
preconditioner (Adam's stand-in); not Nesterov and not iterate averaging.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.optimize import minimize

from nqm.closed_form import Modes, SpectrumParts
from nqm.errors import NQMInputError
from nqm.optimizer import OptimizerConfig, stability_factor
from nqm.path import LossPath
from nqm.search_space import SearchSpace
from nqm.tuning import unreached_score

KINDS = ("sgd", "momentum")
LOCAL_TOL = (1e-3, 1e-3)     # Nelder-Mead's xatol (log coordinates) and fatol (steps)
MAX_EVALS = 400              # Nelder-Mead evaluations per start
N_STARTS = 3                 # local searches from this many of the best grid points


class PathPoint(NamedTuple):
    """One tuned batch size (the fields `nqm.calibrate` reads) and each segment's steps."""

    batch_size: int
    steps: int | None
    reached: bool
    lr: float | None
    momentum: float | None
    segment_steps: tuple[int, ...] | None


class _Run:
    """The path at one (f, kappa): scores of search coordinates z for a batch size."""

    def __init__(self, model: PathModel, fraction: float, kappa: float):
        self.model = model
        self.parts = [SpectrumParts(p.wdet, kappa * p.wn, p.powers) for p in model.parts]
        self.targets = [s.fraction * l0 if s.fraction is not None else fraction * l0
                        for s, l0 in zip(model.path.segments, model.l0s)]
        self.log_t = [math.log(t) for t in self.targets]

    def modes(self, z) -> list[Modes]:
        cfg = self.model.config(z)
        return [Modes.build(s.spectrum, cfg, p)
                for s, p in zip(self.model.path.segments, self.parts)]

    def crossings(self, z, bs: np.ndarray) -> np.ndarray:
        """(segments, len(bs)) first crossings (-1: not within the budget)."""
        return np.array([m.first_crossings(bs, t, self.model.max_steps)
                         for m, t in zip(self.modes(z), self.targets)])

    def penalty(self, modes: Modes, b: float, j: int) -> float:
        """Segment j not reached within the budget (`nqm.tuning.unreached_score`)."""
        return unreached_score(self.model.max_steps, modes.loss(self.model.max_steps, b),
                               self.log_t[j])

    def surrogate(self, z, b: float) -> float:
        """Sum over segments of the crossing interpolated in log loss (module docstring)."""
        total = 0.0
        for j, m in enumerate(self.modes(z)):
            k = int(m.first_crossings([b], self.targets[j], self.model.max_steps)[0])
            if k < 0:
                total += self.penalty(m, b, j)
            elif k > 0:
                before, at = (math.log(max(v, 1e-300)) for v in m.losses([k - 1, k], b))
                total += k - 1 + (before - self.log_t[j]) / max(before - at, 1e-300)
        return total


def _integer(k: np.ndarray) -> float:
    """Total steps of a column of segment crossings (inf when one is not reached)."""
    return math.inf if np.any(k < 0) else float(np.sum(k))


class PathModel:
    """Tuned steps of one optimizer on the path with (f, kappa), memoised per batch size."""

    def __init__(self, path: LossPath, kind: str, precond: float, max_steps: int,
                 space: SearchSpace | None = None):
        if kind not in KINDS:
            raise NQMInputError(f"the path model has sgd and heavy-ball momentum (with H^-p "
                                f"preconditioning) only, not '{kind}'")
        self.path, self.kind, self.precond = path, kind, float(precond)
        self.max_steps, self.space = int(max_steps), space or SearchSpace()
        self.parts = [SpectrumParts.of(s.spectrum, precond) for s in path.segments]
        self.l0s = [s.spectrum.initial_loss() for s in path.segments]
        self.l0 = self.l0s[-1]
        self.h_scale = max(float(np.max(s.spectrum.h ** (1.0 - precond)))
                           for s in path.segments)
        bounds = [np.log(self.space.lr_ratio)]
        if kind == "momentum":
            bounds.append(np.log(self.space.one_minus_momentum))
        self.bounds = np.array(bounds, dtype=np.float64)
        self._memo: dict = {}

    def config(self, z) -> OptimizerConfig:
        """The optimizer at search coordinates z (clipped to the bounds; module docstring)."""
        z = np.clip(np.asarray(z, dtype=np.float64), self.bounds[:, 0], self.bounds[:, 1])
        beta = 1.0 - math.exp(z[1]) if self.kind == "momentum" else 0.0
        lr = math.exp(z[0]) * stability_factor(self.kind, beta) / self.h_scale
        return OptimizerConfig(self.kind, lr=lr, momentum=beta, precond=self.precond)

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """(points, spacing) of the start grid (`SearchSpace.grid_lr` x `grid_other`)."""
        axes = [np.linspace(lo, hi, self.space.grid_lr if i == 0 else self.space.grid_other)
                for i, (lo, hi) in enumerate(self.bounds)]
        mesh = np.meshgrid(*axes, indexing="ij")
        return (np.stack([m.ravel() for m in mesh], axis=1),
                np.array([ax[1] - ax[0] for ax in axes]))

    def tune(self, fraction: float, kappa: float, batch_sizes) -> list[PathPoint]:
        """Every batch size tuned at (f, kappa) (module docstring)."""
        run = _Run(self, fraction, kappa)
        bs = np.asarray(sorted({int(b) for b in batch_sizes}), dtype=np.int64)
        grid, spacing = self.grid()
        ks = [run.crossings(z, bs) for z in grid]
        out = []
        for i, b in enumerate(bs):
            scores = np.array([_integer(k[:, i]) for k in ks])
            best = int(np.argmin(scores))
            z, k = grid[best], ks[best][:, i]
            for start in np.argsort(scores, kind="stable")[:N_STARTS]:
                z1 = self._local(run, grid[start], spacing, float(b))
                k1 = run.crossings(z1, np.array([b]))[:, 0]
                if _integer(k1) < _integer(k):
                    z, k = z1, k1
            out.append(self._point(int(b), z, k))
        return out

    def _local(self, run: _Run, z0: np.ndarray, spacing: np.ndarray, b: float) -> np.ndarray:
        """Nelder-Mead on the interpolated crossings from z0 (module docstring)."""
        res = minimize(lambda z: run.surrogate(z, b), z0, method="Nelder-Mead",
                       options={"initial_simplex": _simplex(z0, spacing / 2),
                                "xatol": LOCAL_TOL[0], "fatol": LOCAL_TOL[1],
                                "maxfev": MAX_EVALS})
        return res.x

    def _point(self, b: int, z, k: np.ndarray) -> PathPoint:
        cfg = self.config(z)
        reached = bool(np.all(k >= 0))
        return PathPoint(b, int(np.sum(k)) if reached else None, reached, cfg.lr, cfg.momentum,
                         tuple(int(v) for v in k) if reached else None)

    # ---------------------------------------------------------- nqm.calibrate's interface
    def points(self, fraction: float, kappa: float, batch_sizes) -> list[PathPoint]:
        """The tuned batch sizes at (f, kappa), tuned once per (f, kappa, B)."""
        key = (round(math.log(fraction), 9), round(math.log(kappa), 9))
        missing = [int(b) for b in batch_sizes if key + (int(b),) not in self._memo]
        if missing:
            for p in self.tune(fraction, kappa, missing):
                self._memo[key + (p.batch_size,)] = p
        return [self._memo[key + (int(b),)] for b in batch_sizes]

    def curve_sizes(self, sizes) -> tuple[int, ...]:
        """The batch sizes of the plotted curve (`nqm.calibrate.curve_batch_sizes`)."""
        from nqm.calibrate import curve_batch_sizes

        return curve_batch_sizes(sizes)

    def log_steps(self, fraction: float, kappa: float, batch_size: int) -> float:
        """log of the tuned total steps (`nqm.calibrate.log_steps_of`)."""
        from nqm.calibrate import log_steps_of

        return log_steps_of(self.points(fraction, kappa, (batch_size,))[0], self.max_steps)


def _simplex(z0: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Nelder-Mead's start: z0 and z0 moved by `step` along each coordinate."""
    return np.vstack([z0] + [z0 + np.eye(z0.size)[i] * step[i] for i in range(z0.size)])
