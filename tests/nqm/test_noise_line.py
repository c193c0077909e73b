"""The noise line (`nqm.noise_line`): l_noise and l_ref from noise measured at checkpoints."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from nqm.errors import NQMInputError
from nqm.noise_line import fit_noise_line, line_from_measure, read_checkpoints
from nqm.spectrum import load

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("a,b,floor", [(0.5, 4.0, 0.0), (-0.2, 10.0, 0.125), (12.0, -2.0, 0.0)])
def test_exact_line_gives_the_measured_noise_ratios(a, b, floor):
    """Points on tau = a + b ell: the NQM noise at L(ell) over the reference's is tau / tau_ref."""
    ell = np.array([2.3, 1.1, 0.6, 0.3])
    tau = a + b * ell
    l0, loss_init, loss_ref = 0.7, 2.3, 0.3
    line = fit_noise_line(ell, tau, loss_init, loss_ref, l0, floor)
    assert line.slope == pytest.approx(b, rel=1e-12)
    assert line.intercept == pytest.approx(a, rel=1e-9, abs=1e-12)
    noise = line.noise()
    for e in (2.3, 1.1, 0.45, 0.3):
        big_l = l0 * (e - floor) / (loss_init - floor)       # the train-loss rule's map
        assert noise.relative(big_l) == pytest.approx((a + b * e) / (a + b * loss_ref), rel=1e-9)
    assert line.l_ref == pytest.approx(l0 * (loss_ref - floor) / (loss_init - floor))


def test_constant_noise_gives_infinite_l_noise():
    line = fit_noise_line([1.0, 2.0, 3.0], [5.0, 5.0, 5.0], 3.0, 1.0, 1.0)
    assert math.isinf(line.l_noise)
    assert line.noise().relative(0.123) == 1.0
    assert line.as_dict()["l_noise"] is None


def test_least_squares_noise_is_recovered():
    """Least squares: tr Sigma = 2 L tr H + sigma^2 tr H (+ the own-direction term), a line
    through zero at L = -sigma^2 / 2, i.e. ell = floor - sigma^2/2 = 0 with floor = sigma^2 / 2."""
    sigma2, tr_h = 0.25, 4.0
    floor = sigma2 / 2
    ell = floor + np.array([2.0, 0.5, 0.1])                 # real loss = excess + floor
    tau = tr_h * (2 * (ell - floor) + sigma2)
    line = fit_noise_line(ell, tau, ell[0], ell[-1], l0=2.0, loss_floor=floor)
    assert line.l_noise == pytest.approx(sigma2 / 2, rel=1e-9)


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(NQMInputError, match="two or more checkpoints"):
        fit_noise_line([1.0], [2.0], 2.0, 1.0, 1.0)
    with pytest.raises(NQMInputError, match="two or more checkpoints"):
        fit_noise_line([1.0, 1.0, 2.0], [2.0, 3.0, float("nan")], 2.0, 1.0, 1.0)
    with pytest.raises(NQMInputError, match="same length"):
        fit_noise_line([1.0, 2.0], [2.0], 2.0, 1.0, 1.0)
    with pytest.raises(NQMInputError, match="<= 0 at the reference"):
        fit_noise_line([1.0, 2.0], [1.0, 3.0], 2.0, 0.2, 1.0)
    with pytest.raises(NQMInputError, match="loss_init"):
        fit_noise_line([1.0, 2.0], [1.0, 3.0], 0.1, 1.0, 1.0, loss_floor=0.2)
    with pytest.raises(NQMInputError, match="l0"):
        fit_noise_line([1.0, 2.0], [1.0, 3.0], 2.0, 1.0, 0.0)


def test_reads_a_measurement(tmp_path):
    path = ROOT / "figures/measure/linreg/measure.json"
    losses, values, init = read_checkpoints(path)
    assert len(losses) == 4 and init == losses[0]
    spectrum = load(ROOT / "figures/measure/linreg/spectrum_target.npz")
    line = line_from_measure(path, spectrum.initial_loss(), spectrum.meta)
    # linreg's noise is close to proportional to the loss: it vanishes near the floor
    assert line.n_points == 4 and 0 < line.l_noise < 0.2 and line.slope > 0
    one = tmp_path / "one.json"
    one.write_text(json.dumps({"along_training": [{"step": 0, "train_loss": 2.0,
                                                   "trace_sigma": 1.0}]}))
    with pytest.raises(NQMInputError, match="two or more checkpoints"):
        line_from_measure(one, 1.0, {"train_loss": 1.0, "train_loss_init": 2.0})
    with pytest.raises(NQMInputError, match="cannot read checkpoints"):
        read_checkpoints(tmp_path / "missing.json")
