"""The calibrated NQM with noise that follows the loss (`nqm.loss_noise`), for `nqm.calibrate`.

Same two scalars as the constant-noise model (`nqm.calibrate`): target T = f L0 and noise
scale kappa, here c_i(L) = kappa c_i (L + l_noise) / (L_ref + l_noise).  The noise still enters
the second moments only as kappa / B, so kappa is still exactly B -> B / kappa.  L(k) is no
longer D(k) + N(k) / B, so each (f, kappa, B) is tuned on the exact second-moment recurrence
(`nqm.coupled_tuning`: SGD, heavy ball, H^-p preconditioning; not Nesterov or EMA).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from nqm.coupled_tuning import CoupledTuneConfig, tune_one
from nqm.errors import NQMInputError
from nqm.noise_line import NoiseLine
from nqm.spectrum import Spectrum


class LossPoint(NamedTuple):
    """One tuned batch size (the fields `nqm.calibrate` reads of `nqm.tuning.TunedPoint`)."""

    batch_size: int
    steps: int | None
    reached: bool
    lr: float | None
    momentum: float | None


class LossFollowingModel:
    """Tuned steps of one optimizer on the spectrum with (f, kappa) and the noise line.

    Each batch size is tuned on its own, with the coupled tuner's full search (grid `GRID`,
    Nelder-Mead to `LOCAL_TOL`) for every reported point (`points`).  The fit's many
    evaluations (`log_steps`, roots to `LOG_TOL`) run the full search at the first (f, kappa)
    of each batch size and afterwards only the local search from the optimum of the nearest
    (log f, log kappa) already tuned, where that optimum took WARM_MIN_STEPS steps or more
    (the full search otherwise, or if the local one does not reach the target: at large
    batch sizes a local search from a neighbour's optimum can stay in a worse basin).
    Plots get the measured batch sizes only (`curve_sizes`).
    """

    GRID = 16                 # grid points per lr axis (momentum: GRID // 3 in beta)
    LOCAL_TOL = (1e-2, 0.5)   # Nelder-Mead's (xatol in log, fatol in steps)
    LOG_TOL = 1e-2            # the fit's root finding in log f and log kappa (1%)
    WARM_MIN_STEPS = 1000     # warm starts only where the nearest optimum took this many steps

    def __init__(self, spectrum: Spectrum, kind: str, precond: float, max_steps: int,
                 line: NoiseLine):
        if kind not in ("sgd", "momentum"):
            raise NQMInputError(f"the loss-following noise model has sgd and momentum (with "
                                f"precond) only, not '{kind}'")
        self.spectrum, self.kind, self.precond = spectrum, kind, precond
        self.max_steps, self.line = max_steps, line
        self.l0 = spectrum.initial_loss()
        self._full: dict = {}
        self._warm: dict = {}

    def _tune(self, fraction: float, kappa: float, batch_size: int, start=None) -> LossPoint:
        cfg = CoupledTuneConfig(fraction * self.l0, self.kind, self.precond,
                                (int(batch_size),), self.max_steps, grid=self.GRID,
                                local_tol=self.LOCAL_TOL)
        r = tune_one(self.spectrum, self.line.noise(kappa), cfg, int(batch_size), start)
        return LossPoint(r["batch_size"], r["steps"], r["reached"], r["lr"], r["momentum"])

    def _one(self, fraction: float, kappa: float, batch_size: int) -> LossPoint:
        key = (round(math.log(fraction), 9), round(math.log(kappa), 9), int(batch_size))
        if key not in self._full:
            self._full[key] = self._tune(fraction, kappa, batch_size)
        return self._full[key]

    def _nearby(self, fraction: float, kappa: float, batch_size: int) -> LossPoint:
        key = (round(math.log(fraction), 9), round(math.log(kappa), 9), int(batch_size))
        done = {**self._warm, **self._full}
        if key in done:
            return done[key]
        near = [(math.hypot(k[0] - key[0], k[1] - key[1]), p) for k, p in done.items()
                if k[2] == key[2] and p.reached]
        if not near:
            return self._one(fraction, kappa, batch_size)
        start = min(near, key=lambda t: t[0])[1]
        if start.steps < self.WARM_MIN_STEPS:          # short runs: the full search is cheap
            return self._one(fraction, kappa, batch_size)
        p = self._tune(fraction, kappa, batch_size, (start.lr, start.momentum))
        self._warm[key] = p if p.reached else self._one(fraction, kappa, batch_size)
        return self._warm[key]

    def points(self, fraction: float, kappa: float, batch_sizes) -> list[LossPoint]:
        """Each batch size tuned by the full search at (f, kappa)."""
        return [self._one(fraction, kappa, b) for b in batch_sizes]

    def curve_sizes(self, sizes) -> tuple[int, ...]:
        """The batch sizes of the plotted curve: the measured ones."""
        return tuple(sizes)

    def log_steps(self, fraction: float, kappa: float, batch_size: int) -> float:
        """log of the tuned steps inside the fit (warm-started; 10 x budget if unreached)."""
        from nqm.calibrate import log_steps_of

        return log_steps_of(self._nearby(fraction, kappa, batch_size), self.max_steps)
