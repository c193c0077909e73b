"""Input checks shared by the pipelines: one place, one message per kind of bad value.

Each returns the value normalised or raises `NQMInputError` naming the value.  This module
imports no kernels, so options are validated before anything slow is imported.
"""

from __future__ import annotations

import numpy as np

from nqm.errors import NQMInputError

DEFAULT_MAX_STEPS = 10**8


def check_target(target: float) -> float:
    """The target loss as a float; NQMInputError unless finite and > 0."""
    if not (np.isfinite(target) and target > 0):
        raise NQMInputError(f"target loss must be a finite number > 0, got {target}")
    return float(target)


def check_target_below_initial(spectrum, target: float) -> float:
    """A target at or above the initial expected loss E L(theta_0) is met at step 0: refuse it."""
    target = check_target(target)
    initial = spectrum.initial_loss()
    if target >= initial:
        raise NQMInputError(f"target {target:g} is at or above the initial loss {initial:.4g} "
                            f"of this spectrum: nothing to do")
    return target


def check_budget(max_steps: int) -> int:
    """The step budget as an int; NQMInputError unless a positive integer."""
    if int(max_steps) != max_steps or max_steps < 1:
        raise NQMInputError(f"step budget must be a positive integer, got {max_steps}")
    return int(max_steps)


def check_batch_size(batch_size) -> float:
    """The batch size B as a float; NQMInputError unless finite and > 0 (the expected
    loss is defined for real B, the noise term scaling as 1/B)."""
    if not (np.isfinite(batch_size) and batch_size > 0):
        raise NQMInputError(f"batch size must be a finite number > 0, got {batch_size}")
    return float(batch_size)


def check_batch_sizes(batch_sizes) -> np.ndarray:
    """Sorted unique integer batch sizes >= 1 (for tuning and prediction)."""
    bs = np.atleast_1d(np.asarray(batch_sizes))
    if bs.size == 0 or not np.all(np.isfinite(bs)) or np.any(bs < 1) or np.any(bs != np.round(bs)):
        raise NQMInputError(f"batch sizes must be integers >= 1, got {list(bs)}")
    return np.unique(bs.astype(np.int64))
