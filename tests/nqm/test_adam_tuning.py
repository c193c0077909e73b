"""Tuning the mean-field Adam (`nqm.adam_tuning`) against a brute-force grid of the same
model, and its contract with `nqm.calibrate` (the points `nqm.tuning.tune` returns)."""

import math

import numpy as np
import pytest

from nqm.adam import AdamConfig, lr_unit, steps_to_target
from nqm.adam_tuning import AdamSpace, tune_adam
from nqm.errors import NQMInputError
from nqm.spectrum import Spectrum


def _spectrum():
    h = np.array([1.0, 0.3, 0.05, 0.01])
    return Spectrum(h, 0.5 * h, np.array([1.0, 1.0, 2.0, 2.0]), np.array([2.0, 5.0, 10.0, 20.0]))


def brute_force(sp, B, target, max_steps, n_lr=80, n_beta=25):
    """The fewest steps over a fine grid of lr / lr_unit in [1e-4, 10] and 1 - beta1 in
    [1e-3, 1]."""
    best = None
    for z in np.linspace(math.log(1e-4), math.log(10.0), n_lr):
        for y in np.linspace(math.log(1e-3), 0.0, n_beta):
            cfg = AdamConfig(lr_unit(sp) * math.exp(z), 1.0 - math.exp(y))
            k = steps_to_target(sp, B, cfg, target, max_steps if best is None else best)
            if k is not None and (best is None or k < best):
                best = k
    return best


@pytest.mark.slow
@pytest.mark.parametrize("B", [1, 8, 256])
def test_no_worse_than_a_fine_grid(B):
    """Within 5% of (or better than) an 80 x 25 grid's best (the step counts at large B are
    small integers on a jagged surface, where a local search can land one step off)."""
    sp = _spectrum()
    target = 0.02 * sp.initial_loss()
    (point,) = tune_adam(sp, [B], target, max_steps=50000)
    best = brute_force(sp, B, target, 50000)
    assert point.reached and point.steps <= max(1.05 * best, best + 1), (point.steps, best)
    cfg = AdamConfig(point.lr, point.momentum)
    assert steps_to_target(sp, B, cfg, target, 50000) == point.steps   # the point is real


def test_fewer_steps_at_larger_batch_sizes_where_the_crossing_is_jagged():
    """At a few steps the crossing is jagged in (lr, beta1); the dense grid there keeps the
    tuned counts non-increasing in B, as the optimum of a less noisy problem must be."""
    sp = _spectrum()
    points = tune_adam(sp, [16, 64, 128, 256, 1024], 0.05 * sp.initial_loss(), max_steps=20000)
    steps = [p.steps for p in points]
    assert all(a >= b for a, b in zip(steps, steps[1:])), steps


def test_an_optimum_on_the_upper_lr_bound_is_searched_beyond_it():
    sp = _spectrum()
    target = 0.05 * sp.initial_loss()
    (wide,) = tune_adam(sp, [64], target, max_steps=20000)
    low = AdamSpace(lr_ratio=(1e-6, 0.05 * wide.lr / lr_unit(sp)))  # the optimum lies above
    (p,) = tune_adam(sp, [64], target, max_steps=20000, space=low)
    assert p.lr > low.lr_ratio[1] * lr_unit(sp) and "lr at upper bound" not in p.edges


def test_points_follow_the_tuner_contract():
    sp = _spectrum()
    target = 0.05 * sp.initial_loss()
    points = tune_adam(sp, [64, 4, 4], target, max_steps=20000)
    assert [p.batch_size for p in points] == [4, 64]          # sorted, duplicates dropped
    for p in points:
        assert p.reached and p.steps >= 1 and 0.0 <= p.momentum < 1.0
        assert p.ema is None and p.horizon is None and math.isinf(p.lr_limit)
    assert points[1].steps < points[0].steps                  # larger batches need fewer steps
    alone = tune_adam(sp, [64], target, max_steps=20000)[0]
    assert alone == points[1]                                 # independent of the others


def test_unreachable_target_is_reported_not_raised():
    sp = _spectrum()
    (p,) = tune_adam(sp, [1], 1e-9 * sp.initial_loss(), max_steps=200)
    assert not p.reached and p.steps is None


def test_a_reached_optimum_on_the_lower_lr_bound_is_widened():
    sp = _spectrum()
    target = 0.05 * sp.initial_loss()
    (wide,) = tune_adam(sp, [4], target, max_steps=20000)
    high = AdamSpace(lr_ratio=(1.3 * wide.lr / lr_unit(sp), 10.0))
    on_bound = AdamConfig(high.lr_ratio[0] * lr_unit(sp), wide.momentum)
    assert steps_to_target(sp, 4, on_bound, target, 20000) is not None  # reached there
    (p,) = tune_adam(sp, [4], target, max_steps=20000, space=high)
    assert p.reached and p.lr < high.lr_ratio[0] * lr_unit(sp)
    assert "lr at lower bound" not in p.edges


@pytest.mark.parametrize("kwargs,match", [({"beta2": 1.0}, "beta2"), ({"eps": -1.0}, "eps"),
                                          ({"target": 0.0}, "target"),
                                          ({"max_steps": 0}, "budget")])
def test_bad_inputs_name_the_field(kwargs, match):
    args = {"target": 0.1, "max_steps": 100, **kwargs}
    with pytest.raises(NQMInputError, match=match):
        tune_adam(_spectrum(), [1], args.pop("target"), **args)
