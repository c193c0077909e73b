"""The unfitted noise scale: 1, or the measured noise in the quadratic's loss units."""

import math

import numpy as np
import pytest

from nqm.errors import NQMInputError
from nqm.noise_units import base_noise_scale, loss_drop_of, loss_matched_path, segment_scales
from nqm.path import LossPath, Segment
from nqm.spectrum import Spectrum


def test_measured_is_one_whatever_the_losses():
    assert base_noise_scale("measured", 0.3, None) == 1.0
    assert base_noise_scale("measured", 0.3, 2.0) == 1.0


def test_loss_matched_is_the_initial_loss_over_the_real_loss_drop():
    assert base_noise_scale("loss-matched", 0.3, 2.0) == pytest.approx(0.15, rel=1e-15)


def test_loss_drop_from_metadata():
    assert loss_drop_of({"train_loss_init": 2.5, "loss_floor": 0.125}) == 2.375
    assert loss_drop_of({"train_loss_init": 2.5}) == 2.5          # cross-entropy: floor 0
    assert loss_drop_of({"loss_floor": 0.125}) is None


@pytest.mark.parametrize("rule, l0, drop, needle", [
    ("bogus", 0.3, 2.0, "noise_scale must be one of measured, loss-matched, got 'bogus'"),
    ("loss-matched", 0.3, None, "metadata 'train_loss_init'"),
    ("loss-matched", 0.3, 0.0, "ell_0 - ell_floor = 0.0"),
    ("loss-matched", 0.3, -1.0, "ell_0 - ell_floor = -1.0"),
    ("loss-matched", 0.3, math.nan, "ell_0 - ell_floor = nan"),
    ("loss-matched", 0.0, 2.0, "initial loss must be > 0, got 0.0"),
])
def test_bad_input_names_what_is_wrong(rule, l0, drop, needle):
    with pytest.raises(NQMInputError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        base_noise_scale(rule, l0, drop)


def _spectrum(scale):
    """L0 = 1/2 (2 * 1 + 2 * 0.5 * 4) * scale = 3 * scale."""
    return Spectrum(h=np.array([2.0, 0.5]), c=np.array([1.0, 3.0]),
                    s0=scale * np.array([1.0, 4.0]), count=np.array([1.0, 2.0]))


def test_each_segment_of_a_path_is_scaled_by_its_own_loss_ratio():
    path = LossPath((Segment(_spectrum(1.0), 0.4, "a", 0, 2.5),
                     Segment(_spectrum(0.1), None, "b", 5, 1.0)), None, 0.5)
    scales = [3.0 / 2.0, 0.3 / 0.5]                        # L0_j / (l_j - l_floor)
    assert segment_scales(path) == [pytest.approx(v, rel=1e-15) for v in scales]
    scaled = loss_matched_path(path)
    for s, t, rho in zip(path.segments, scaled.segments, segment_scales(path)):
        assert np.array_equal(t.spectrum.c, rho * s.spectrum.c)
        assert np.array_equal(t.spectrum.h, s.spectrum.h)
        assert (t.fraction, t.label, t.step, t.train_loss) == \
            (s.fraction, s.label, s.step, s.train_loss)
    assert scaled.loss_floor == 0.5 and scaled.last_rule is None


@pytest.mark.parametrize("train_loss", [0.5, 0.2, None])
def test_a_segment_without_a_train_loss_above_the_floor_is_refused(train_loss):
    path = LossPath((Segment(_spectrum(1.0), None, "a", 0, train_loss),), None, 0.5)
    with pytest.raises(NQMInputError, match=f"segment 'a': .* above the loss floor 0.5, got "
                                            f"{train_loss}"):
        segment_scales(path)


def test_loss_matched_spectrum_scales_c_only_and_records_kappa0():
    from nqm.noise_units import loss_matched_spectrum

    h = np.array([1.0, 0.1])
    sp = Spectrum(h=h, c=h.copy(), s0=np.array([2.0, 4.0]), count=np.ones(2),
                  meta={"train_loss_init": 1.5, "loss_floor": 0.5})
    same, k1 = loss_matched_spectrum(sp, "measured")
    assert same is sp and k1 == 1.0
    odd = Spectrum(h=h, c=h.copy(), s0=sp.s0, count=sp.count,
                   meta={"train_loss_init": "?", "loss_floor": None})
    assert loss_matched_spectrum(odd, "measured")[0] is odd      # metadata not read
    scaled, rho = loss_matched_spectrum(sp, "loss-matched")
    assert rho == pytest.approx(sp.initial_loss() / 1.0)        # L0 = 1.2
    assert np.array_equal(scaled.c, rho * sp.c) and np.array_equal(scaled.s0, sp.s0)
    assert scaled.meta["noise_scale_kappa0"] == rho and scaled.initial_loss() == sp.initial_loss()
