"""Steps to target: the first step k at which the expected loss is <= the target.

The first crossing is exact even when the loss is not monotone (momentum oscillates): the
constant-LR case uses the branch and bound of `nqm._kernels.first_crossings`, other schedules
scan the step recurrence.  A target not reached within `max_steps` is reported as not reached,
with the budget; an unstable configuration (spectral radius >= 1) as diverged.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from nqm.closed_form import Modes
from nqm.dynamics import check_batch_size, lr_sequence, recurrence_losses
from nqm.errors import NQMInputError
from nqm.optimizer import OptimizerConfig
from nqm.schedule import Schedule
from nqm.spectrum import Spectrum

DEFAULT_MAX_STEPS = 10**8


class StepsResult(NamedTuple):
    batch_size: float
    steps: int | None       # None when not reached
    reached: bool
    diverged: bool
    budget: int


def check_target(target: float) -> float:
    if not (np.isfinite(target) and target > 0):
        raise NQMInputError(f"target loss must be a finite number > 0, got {target}")
    return float(target)


def check_target_below_initial(spectrum: Spectrum, target: float) -> float:
    """A target at or above the initial expected loss E L(theta_0) is met at step 0: refuse it."""
    target = check_target(target)
    initial = spectrum.initial_loss()
    if target >= initial:
        raise NQMInputError(f"target {target:g} is at or above the initial loss {initial:.4g} "
                            f"of this spectrum: nothing to do")
    return target


def check_budget(max_steps: int) -> int:
    if int(max_steps) != max_steps or max_steps < 1:
        raise NQMInputError(f"step budget must be a positive integer, got {max_steps}")
    return int(max_steps)


def check_batch_sizes(batch_sizes) -> np.ndarray:
    """Sorted unique integer batch sizes >= 1 (for tuning and prediction)."""
    bs = np.atleast_1d(np.asarray(batch_sizes))
    if bs.size == 0 or not np.all(np.isfinite(bs)) or np.any(bs < 1) or np.any(bs != np.round(bs)):
        raise NQMInputError(f"batch sizes must be integers >= 1, got {list(bs)}")
    return np.unique(bs.astype(np.int64))


def steps_to_target(spectrum: Spectrum, config: OptimizerConfig, batch_sizes, target: float,
                    max_steps: int = DEFAULT_MAX_STEPS, schedule: Schedule | None = None,
                    horizon: int | None = None) -> list[StepsResult]:
    """First k <= max_steps with E L(theta_k) <= target, for each batch size."""
    target = check_target(target)
    max_steps = check_budget(max_steps)
    bs = [check_batch_size(b) for b in np.atleast_1d(batch_sizes)]
    if schedule is None or schedule.is_constant:
        modes = Modes.build(spectrum, config)
        if not modes.stable:
            return [StepsResult(b, None, False, True, max_steps) for b in bs]
        ks = modes.first_crossings(bs, target, max_steps)
        return [StepsResult(b, int(k) if k >= 0 else None, bool(k >= 0), False, max_steps)
                for b, k in zip(bs, ks)]
    out = []
    n = min(max_steps, horizon or max_steps)
    lrs = lr_sequence(config, schedule, n, horizon)
    for b in bs:
        curve, k = recurrence_losses(spectrum, config, b, lrs, target, stop_at_target=True)
        diverged = k < 0 and bool(np.isinf(curve).any())
        out.append(StepsResult(b, int(k) if k >= 0 else None, k >= 0, diverged, max_steps))
    return out
