"""Expected loss curves of the NQM (no sampling): closed form or step recurrence.

Constant learning rate: `nqm.closed_form.Modes`, O(d) per requested step.
Any other schedule: the second-moment recurrence M' = A_t M A_t' + (c/B) b_t b_t' in a Numba
kernel (`nqm._kernels.recurrence`), O(d) per step.  Both follow Zhang et al. 2019 section 2.
"""

from __future__ import annotations

import numpy as np

from nqm import _kernels
from nqm.checks import check_batch_size
from nqm.closed_form import Modes
from nqm.errors import NQMInputError
from nqm.optimizer import OptimizerConfig, transition
from nqm.schedule import Schedule
from nqm.spectrum import Spectrum


def lr_sequence(config: OptimizerConfig, schedule: Schedule | None, n_steps: int,
                horizon: int | None) -> np.ndarray:
    """lr_t for t < n_steps: lr * schedule multipliers over `horizon` (default n_steps)."""
    if schedule is None or schedule.is_constant:
        return np.full(n_steps, config.lr)
    return config.lr * schedule.multipliers(horizon or n_steps, n_steps)


def recurrence_losses(spectrum: Spectrum, config: OptimizerConfig, batch_size: float,
                      lrs: np.ndarray, target: float = -1.0,
                      stop_at_target: bool = False) -> tuple[np.ndarray, int]:
    """Expected loss at steps 0..len(lrs) by the step recurrence; and the first step <= target."""
    batch_size = check_batch_size(batch_size)
    tr = transition(spectrum.h, config.kind, config.momentum, config.precond, config.ema)
    wl = 0.5 * spectrum.count * spectrum.h
    return _kernels.recurrence(tr.A0, tr.A1, tr.b1, tr.f, tr.e, wl, spectrum.s0,
                               spectrum.c / batch_size, np.asarray(lrs, dtype=np.float64),
                               float(target), bool(stop_at_target))


def recurrence_parts(spectrum: Spectrum, config: OptimizerConfig, lrs: np.ndarray,
                     target: float, smallest_batch: float) -> tuple[np.ndarray, np.ndarray]:
    """(D_t, N_t) with loss D_t + N_t / B at steps 0..len(lrs) for every batch size B at once
    (`nqm._kernels.recurrence_dn`); the run stops once the loss at `smallest_batch` (hence at
    every larger batch size) is <= target, or on divergence, and the arrays end there."""
    tr = transition(spectrum.h, config.kind, config.momentum, config.precond, config.ema)
    wl = 0.5 * spectrum.count * spectrum.h
    D, N, last = _kernels.recurrence_dn(tr.A0, tr.A1, tr.b1, tr.f, tr.e, wl * spectrum.s0,
                                        wl * spectrum.c, np.asarray(lrs, dtype=np.float64),
                                        float(target), 1.0 / float(smallest_batch))
    return D[:last + 1], N[:last + 1]


def expected_loss(spectrum: Spectrum, config: OptimizerConfig, batch_size: float, steps,
                  schedule: Schedule | None = None, horizon: int | None = None) -> np.ndarray:
    """E L(theta_k) at each k in `steps` (an int means 0..steps)."""
    batch_size = check_batch_size(batch_size)
    ks = np.arange(int(steps) + 1) if np.ndim(steps) == 0 else np.asarray(steps, dtype=np.int64)
    if ks.size and ks.min() < 0:
        raise NQMInputError("steps must be >= 0")
    if schedule is None or schedule.is_constant:
        modes = Modes.build(spectrum, config)
        if modes.stable:
            return modes.losses(ks, batch_size)
    n = int(ks.max()) if ks.size else 0
    curve, _ = recurrence_losses(spectrum, config, batch_size,
                                 lr_sequence(config, schedule, n, horizon))
    return curve[ks]


def monte_carlo(spectrum: Spectrum, config: OptimizerConfig, batch_size: float, n_steps: int,
                n_runs: int, rng: np.random.Generator | int, schedule: Schedule | None = None,
                horizon: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean loss and its standard error over `n_runs` sampled runs (Gaussian noise).

    `rng`: a numpy Generator (advanced in place) or a seed for a new one.

    theta_0,i ~ N(0, s0_i) and eps_t,i ~ N(0, c_i / B), independent; each row of the spectrum is
    sampled once and weighted by its count (unbiased for the expectation).
    """
    batch_size = check_batch_size(batch_size)
    if n_runs < 2:
        raise NQMInputError(f"Monte Carlo needs at least 2 runs, got {n_runs}")
    kinds = {"sgd": 0, "momentum": 1, "nesterov": 2}
    return _kernels.monte_carlo(
        spectrum.h, np.sqrt(spectrum.c / batch_size), np.sqrt(spectrum.s0),
        0.5 * spectrum.count * spectrum.h, spectrum.h ** (-config.precond), kinds[config.kind],
        config.momentum, -1.0 if config.ema is None else config.ema,
        lr_sequence(config, schedule, int(n_steps), horizon), int(n_runs),
        np.random.default_rng(rng))
