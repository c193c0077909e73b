"""Steps to target: the first crossing, even for non-monotone losses; not reached; diverged."""

import numpy as np
import pytest

from nqm.dynamics import recurrence_losses
from nqm.errors import NQMInputError
from nqm.optimizer import OptimizerConfig
from nqm.schedule import Schedule
from nqm.spectrum import Spectrum, power_law
from nqm.steps import steps_to_target
from tests.helpers import forward_scan


def gap_target(curve, q):
    """A target between two distinct loss values, at least 1e-6 relative apart, near quantile q:
    a target equal to a loss value (to rounding) would make 'first k with L(k) <= target'
    depend on the last bits, which two correct implementations need not share."""
    v = np.unique(curve)
    ok = np.flatnonzero(np.diff(v) >= 1e-6 * v[1:])
    assert ok.size, "no usable gap"
    i = ok[np.argmin(np.abs(ok - q * (v.size - 1)))]
    return 0.5 * (v[i] + v[i + 1])


def scan(spec, cfg, b, target, n):
    curve, _ = recurrence_losses(spec, cfg, b, np.full(n, cfg.lr))
    return forward_scan(curve, target), curve


def test_first_crossing_of_oscillating_momentum_matches_forward_scan():
    """Underdamped heavy ball: the loss oscillates and crosses the target several times."""
    spec = Spectrum(h=np.array([1.0, 0.5, 0.05]), c=np.array([0.0, 0.0, 0.0]),
                    s0=np.array([1.0, 1.0, 1e-4]), count=np.ones(3))
    cfg = OptimizerConfig("momentum", lr=1.0, momentum=0.95)
    curve, _ = recurrence_losses(spec, cfg, 1.0, np.full(400, cfg.lr))
    # choose a target that the oscillating curve crosses, rises above again, and recrosses
    target = 0.05
    first = forward_scan(curve, target)
    assert first > 0 and np.any(curve[first:] > target), "test needs a non-monotone crossing"
    got = steps_to_target(spec, cfg, 1.0, target, max_steps=400)[0]
    assert got.steps == first and got.reached


@pytest.mark.parametrize("seed", range(8))
def test_first_crossing_matches_forward_scan_on_random_configs(seed):
    rng = np.random.default_rng(seed)
    d = 20
    h = rng.uniform(0.01, 1.0, d)
    # some directions start below their noise floor, so their loss rises: non-monotone total
    spec = Spectrum(h=h, c=rng.uniform(0, 3, d) * h, s0=rng.uniform(0, 2, d) * (rng.random(d) > .3),
                    count=rng.integers(1, 4, d).astype(float))
    kind = ["sgd", "momentum", "nesterov"][seed % 3]
    beta = 0.0 if kind == "sgd" else rng.uniform(0.5, 0.97)
    from nqm.optimizer import lr_limit
    lr = rng.uniform(0.2, 0.99) * lr_limit(h, kind, beta, 0.0)
    cfg = OptimizerConfig(kind, lr=lr, momentum=beta, ema=0.9 if seed % 4 == 0 else None)
    n = 3000
    bs = [1.0, 4.0, 64.0]
    for b in bs:
        _, curve = scan(spec, cfg, b, 0.0, n)
        # targets between the minimum and the start, where crossings are interesting
        for q in (0.1, 0.5, 0.9):
            target = gap_target(curve, q)
            want = forward_scan(curve, target)
            got = steps_to_target(spec, cfg, [b], target, max_steps=n)[0]
            assert (got.steps if got.reached else -1) == want, (kind, b, q)


def test_transient_dip_below_target_counts():
    """The loss dips below the target and then rises to a floor above it: the dip is the answer."""
    spec = Spectrum(h=np.array([1.0, 0.01]), c=np.array([0.0, 5.0]), s0=np.array([1.0, 0.0]),
                    count=np.ones(2))
    cfg = OptimizerConfig("sgd", lr=0.5)
    curve, _ = recurrence_losses(spec, cfg, 1.0, np.full(2000, cfg.lr))
    target = 0.5 * (curve.min() + curve[-1])
    assert curve[-1] > target
    want = forward_scan(curve, target)
    assert steps_to_target(spec, cfg, 1.0, target, max_steps=2000)[0].steps == want


def test_not_reached_is_reported_with_budget():
    spec = power_law(d=100)
    cfg = OptimizerConfig("sgd", lr=0.5)
    r = steps_to_target(spec, cfg, [1, 10**6], 1e-3, max_steps=100)
    assert [x.reached for x in r] == [False, False]
    assert all(x.steps is None and x.budget == 100 and not x.diverged for x in r)
    # and the same configuration with a larger budget does reach it at the large batch size
    assert steps_to_target(spec, cfg, [10**6], 1e-3, max_steps=10**4)[0].reached


def test_divergent_lr_is_reported_as_diverged():
    cfg = OptimizerConfig("sgd", lr=2.5)
    r = steps_to_target(power_law(d=10), cfg, 8, 0.01, max_steps=100)[0]
    assert r.diverged and not r.reached and r.steps is None


def test_schedule_steps_match_scan(small_spectrum):
    cfg = OptimizerConfig("momentum", lr=0.6, momentum=0.9)
    sched = Schedule("linear", final=0.0)
    lrs = cfg.lr * sched.multipliers(500)
    curve, _ = recurrence_losses(small_spectrum, cfg, 2.0, lrs)
    target = gap_target(curve, 0.2)
    got = steps_to_target(small_spectrum, cfg, 2.0, target, max_steps=500, schedule=sched,
                          horizon=500)[0]
    assert got.steps == forward_scan(curve, target)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_target(bad):
    with pytest.raises(NQMInputError, match="target"):
        steps_to_target(power_law(d=10), OptimizerConfig(), 1, bad)


def test_bad_batch_size_and_budget():
    with pytest.raises(NQMInputError, match="batch size"):
        steps_to_target(power_law(d=10), OptimizerConfig(), [0], 0.1)
    with pytest.raises(NQMInputError, match="budget"):
        steps_to_target(power_law(d=10), OptimizerConfig(), [1], 0.1, max_steps=0)


def test_first_crossing_with_a_hint_matches_forward_scan():
    """A hint (anywhere: before, at, after the crossing, or past the budget's end) only orders
    the branch and bound; the first crossing is the forward scan's."""
    from nqm.closed_form import Modes
    from nqm.optimizer import lr_limit
    checked = 0
    for seed in range(6):
        rng = np.random.default_rng(100 + seed)
        d = 20
        h = rng.uniform(0.01, 1.0, d)
        spec = Spectrum(h=h, c=rng.uniform(0, 3, d) * h,
                        s0=rng.uniform(0, 2, d) * (rng.random(d) > .3),
                        count=rng.integers(1, 4, d).astype(float))
        kind = ["sgd", "momentum", "nesterov"][seed % 3]
        beta = 0.0 if kind == "sgd" else rng.uniform(0.5, 0.97)
        lr = rng.uniform(0.2, 0.99) * lr_limit(h, kind, beta, 0.0)
        modes = Modes.build(spec, OptimizerConfig(kind, lr=lr, momentum=beta))
        n = 3000
        for b in (1.0, 64.0):
            _, curve = scan(spec, modes.config, b, 0.0, n)
            for q in (0.1, 0.5, 0.9):
                target = gap_target(curve, q)
                want = forward_scan(curve, target)
                checked += want > 10
                for hint in (1, want - 7, want - 1, want, want + 1, want + 500, n, n + 10):
                    got = modes.first_crossings([b], target, n, hint=max(hint, 1))[0]
                    assert got == want, (kind, b, q, hint)
    assert checked >= 10
