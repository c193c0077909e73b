"""The noise floor of the held-out error: exact without spread, the order statistic with it."""

import math

import numpy as np
import pytest

from figures.noise_floor import floor, sigmas

LINREG_BANDS = {1: None, 4: None, 16: None, 64: None, 256: None, 1024: None}


def test_no_spread_no_error():
    out = floor({b: 0.0 for b in LINREG_BANDS}, 63.0, 9885.0, 100, np.random.default_rng(0))
    assert out["points_only"]["median"] == pytest.approx(1.0, abs=1e-12)
    assert out["with_fit"]["median"] == pytest.approx(1.0, abs=1e-9)


def test_points_only_median_is_the_order_statistic_of_four():
    """Four held-out points of equal spread s: P(max |z| <= t) = (2 Phi(t) - 1)^4 = 1/2 at
    t = 1.4069, so the median worst error is exp(1.4069 s) (within 1% at 20000 draws)."""
    s = 0.15
    out = floor({b: s for b in LINREG_BANDS}, 63.0, 9885.0, 20000, np.random.default_rng(1))
    assert out["points_only"]["median"] == pytest.approx(math.exp(1.4069 * s), rel=0.01)
    assert out["with_fit"]["median"] > out["points_only"]["median"]


def test_sigma_from_band():
    assert sigmas({4: (100.0, 100.0 * math.e**0.4)})[4] == pytest.approx(0.2)
