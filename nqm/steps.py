"""Steps to target: the first step k at which the expected loss is <= the target.

The first crossing is exact even when the loss is not monotone (momentum oscillates): the
constant-LR case uses the branch and bound of `nqm._kernels.first_crossings`, other schedules
scan the step recurrence.  A target not reached within `max_steps` is reported as not reached,
with the budget; an unstable configuration (spectral radius >= 1) as diverged.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from nqm.checks import DEFAULT_MAX_STEPS, check_batch_size, check_budget, check_target
from nqm.closed_form import Modes
from nqm.dynamics import lr_sequence, recurrence_losses
from nqm.optimizer import OptimizerConfig
from nqm.schedule import Schedule
from nqm.spectrum import Spectrum


class StepsResult(NamedTuple):
    """Steps to the target at one batch size (None when not reached within `budget`) and
    whether the loss diverged."""

    batch_size: float
    steps: int | None       # None when not reached
    reached: bool
    diverged: bool
    budget: int


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
