"""The unfitted noise scale: 1, or the measured noise in the quadratic's loss units."""

import math

import pytest

from nqm.errors import NQMInputError
from nqm.noise_units import base_noise_scale, loss_drop_of


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
