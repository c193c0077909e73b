"""Calibration with noise that follows the loss (`nqm.loss_model` through `nqm.calibrate`)."""

import math

import pytest

from nqm.calibrate import CalibrateConfig, _Model, calibrate
from nqm.errors import NQMInputError
from nqm.loss_model import LossFollowingModel
from nqm.noise_line import NoiseLine
from nqm.spectrum import Spectrum, power_law
from nqm.sweep_data import DEFAULT_PROXY, SweepData, SweepPoint

SIZES = (1, 8, 64, 512)
LINE = NoiseLine(slope=4.0, intercept=0.2, n_points=3, l_noise=0.02, l_ref=0.05)


def _spectrum():
    s = power_law(d=100, alpha=1.0, bins=10)
    return Spectrum(h=s.h, c=s.c, s0=s.s0, count=s.count, meta={"workload": "toy"})


def _sweep(steps, optimizer="sgd"):
    points = tuple(SweepPoint(b, s, None, None, 64, False) for b, s in zip(SIZES, steps))
    return SweepData("toy", optimizer, 0.1, points, "synthetic")


@pytest.mark.slow
def test_recovers_its_own_fraction_and_noise_scale():
    spec = _spectrum()
    model = LossFollowingModel(spec, "sgd", 0.0, 10**6, LINE)
    steps = [p.steps for p in model.points(0.01, 2.0, SIZES)]
    assert steps[0] > 3 * steps[-1]                      # noise matters at the small end
    rec = calibrate(spec, _sweep(steps), CalibrateConfig(noise_line=LINE))
    assert rec["noise"]["model"] == "loss-following" and rec["noise"]["l_noise"] == 0.02
    assert rec["fitted"]["target_fraction"] == pytest.approx(0.01, rel=0.05)
    assert rec["fitted"]["noise_scale"] == pytest.approx(2.0, rel=0.05)
    assert rec["error"]["nqm_worst"] < 1.05


@pytest.mark.slow
def test_infinite_l_noise_is_the_constant_noise_calibration():
    """l_noise = inf through the coupled tuner against the constant-noise tuner: the same
    model, so the same tuned steps up to the two searches' resolution."""
    spec = _spectrum()
    const = NoiseLine(0.0, 1.0, 2, math.inf, 0.05)
    ours = LossFollowingModel(spec, "sgd", 0.0, 10**6, const).points(0.01, 2.0, SIZES)
    ref = _Model(spec, "sgd", 0.0, 10**6, None).points(0.01, 2.0, SIZES)
    for a, b in zip(ours, ref):
        assert a.steps == pytest.approx(b.steps, rel=0.01)
    following = LossFollowingModel(spec, "sgd", 0.0, 10**6, LINE).points(0.01, 2.0, SIZES)
    assert 0.01 * spec.initial_loss() < LINE.l_ref      # the target lies below l_ref, where
    assert following[0].steps < 0.9 * ours[0].steps     # the noise is smaller than measured


def test_refusals_name_what_is_wrong():
    with pytest.raises(NQMInputError, match="noise_line"):
        CalibrateConfig(noise_line=0.3)
    with pytest.raises(NQMInputError, match="loss-following noise models sgd, momentum"):
        calibrate(_spectrum(), _sweep([1000, 200, 60, 40], optimizer="nesterov"),
                  CalibrateConfig(noise_line=LINE, proxy=tuple(DEFAULT_PROXY.items())))
