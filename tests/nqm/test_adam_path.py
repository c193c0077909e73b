"""The mean-field Adam on the path model (`nqm.adam_path`): one segment is the single-quadratic
tuner, a chain's steps are each segment's own crossing at the tuned settings added up, and no
point of a brute-force grid does better."""

import math

import numpy as np
import pytest

from nqm.adam import AdamConfig, steps_to_target
from nqm.adam_path import AdamPathModel
from nqm.adam_tuning import tune_adam
from nqm.calibrate import CalibrateConfig, calibrate
from nqm.path import LossPath, Segment
from nqm.spectrum import Spectrum, load
from nqm.sweep_data import load_sweep
from tests.helpers import small_spectrum

MEASURED = "figures/measure-path/{}/spectrum_target.npz"


def _small(seed: int) -> Spectrum:
    return small_spectrum(seed, 6)


def _chain() -> LossPath:
    return LossPath((Segment(_small(1), 0.3, "a", 0), Segment(_small(2), None, "b", 10)))


def _segment_steps(model, f, kappa, b, cfg, max_steps):
    """Each segment's own first crossing at cfg (`nqm.adam.steps_to_target`), None if none."""
    return [steps_to_target(sp, b, cfg, t, max_steps)
            for sp, t in model.segments(f, kappa)]


def test_one_segment_is_the_single_quadratic_tuner():
    s = load(MEASURED.format("linreg"))
    model = AdamPathModel(LossPath((Segment(s, None, "target"),)), 10**5)
    f, kappa, bs = 0.05, 0.3, [1, 16, 1024]
    got = model.points(f, kappa, bs)
    scaled = Spectrum(h=s.h, c=kappa * s.c, s0=s.s0, count=s.count)
    want = tune_adam(scaled, bs, f * s.initial_loss(), max_steps=10**5)
    assert [(p.steps, p.lr, p.momentum) for p in got] == \
        [(p.steps, p.lr, p.momentum) for p in want]
    assert [p.segment_steps for p in got] == [(p.steps,) for p in want]


@pytest.mark.parametrize("b, f, budget", [(1, 0.02, 20000), (64, 0.02, 20000),
                                           (1, 0.002, 50000)])
def test_a_chain_adds_its_segments_crossings_and_beats_a_grid(b, f, budget):
    """The tuned total is the sum of the segments' crossings run one by one at the tuned
    (lr, beta1); no point of a 40 x 12 grid over (lr / unit, 1 - beta1) needs fewer steps.
    (f = 0.002: the first grid runs, capped at 1000 steps, reach neither segment's target, and
    the deepening must follow the runs that finish the first segment.)"""
    model, kappa = AdamPathModel(_chain(), budget), 0.5
    p = model.points(f, kappa, [b])[0]
    cfg = AdamConfig(lr=p.lr, beta1=p.momentum)
    parts = _segment_steps(model, f, kappa, b, cfg, budget)
    assert p.reached and p.segment_steps == tuple(parts) and sum(parts) == p.steps > 10
    unit = math.sqrt(float(np.sum(_small(1).count * _small(1).s0) / np.sum(_small(1).count)))
    best = math.inf
    for lr in unit * np.logspace(-5, 1, 40):
        for m in np.logspace(-3, 0, 12):
            ks = _segment_steps(model, f, kappa, b, AdamConfig(lr=lr, beta1=1.0 - m), budget)
            if None not in ks:
                best = min(best, sum(ks))
    assert p.steps <= best


def test_an_unreachable_segment_leaves_the_point_unreached():
    p = AdamPathModel(_chain(), 30).points(1e-9, 1.0, [1])[0]
    assert not p.reached and p.steps is None and p.segment_steps is None


def test_a_chain_with_no_segment_or_a_bad_target_is_refused_in_one_line():
    from nqm.adam_tuning import tune_chain
    from nqm.errors import NQMInputError

    with pytest.raises(NQMInputError, match="at least one"):
        tune_chain([], [1])
    with pytest.raises(NQMInputError, match="target"):
        tune_chain([(_small(1), -1.0)], [1])


@pytest.mark.slow
def test_calibrate_transfers_to_the_mean_field_adam_on_a_one_segment_path():
    """With one segment the path's Adam transfer is the single quadratic's."""
    s = load(MEASURED.format("linreg"))
    sgd, adam = (load_sweep(f"figures/sweeps/linreg-{o}") for o in ("sgd", "adam"))
    proxy = tuple({**dict(CalibrateConfig().proxy), "adam": ("adam", 0.0)}.items())
    one = calibrate(s, sgd, CalibrateConfig(proxy=proxy,
                                            path=LossPath((Segment(s, None, "target"),))),
                    transfer=(adam,))
    ref = calibrate(s, sgd, CalibrateConfig(proxy=proxy), transfer=(adam,))
    assert one["transfer"][0]["nqm_optimizer"]["kind"] == "adam"
    assert [p["predicted"] for p in one["transfer"][0]["points"]] == \
        [p["predicted"] for p in ref["transfer"][0]["points"]]
    assert one["transfer"][0]["error"] == ref["transfer"][0]["error"]
