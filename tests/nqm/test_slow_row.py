"""nqm.slow_row: the dropped directions of a measured spectrum as one slow row."""

import numpy as np
import pytest

from nqm.errors import NQMInputError
from nqm.slow_row import SlowRowConfig, with_slow_row
from nqm.spectrum import Spectrum

META = {"h_floor": 2e-6, "dropped_directions": 50.0, "bulk_noise_exponent": 1.5}


def _sp(**meta):
    """Two top rows and two bulk bins (count > 1), c of the bulk on c = 0.3 h^1.5."""
    h = np.array([3.0, 1.0, 0.1, 0.01])
    c = np.array([0.5, 0.4, 0.3 * 0.1**1.5, 0.3 * 0.01**1.5])
    return Spectrum(h=h, c=c, s0=np.array([2.0, 1.0, 0.05, 0.02]),
                    count=np.array([1.0, 1.0, 20.0, 30.0]), meta={**META, **meta})


def test_the_row_holds_the_dropped_count_and_the_remaining_distance():
    base = _sp()
    kept = 2.0 + 1.0 + 20 * 0.05 + 30 * 0.02                  # 4.6
    sp = with_slow_row(base, SlowRowConfig(displacement_sq=14.6))
    assert sp.n_rows == base.n_rows + 1
    assert sp.h[-1] == pytest.approx(2e-6) and sp.count[-1] == 50.0
    assert sp.s0[-1] == pytest.approx((14.6 - kept) / 50.0)
    assert float(np.sum(sp.count * sp.s0)) == pytest.approx(14.6)
    assert sp.dimension == pytest.approx(base.dimension + 50.0)
    np.testing.assert_array_equal(sp.h[:-1], base.h)
    np.testing.assert_array_equal(sp.s0[:-1], base.s0)
    assert sp.meta["slow_row_displacement_sq_kept"] == pytest.approx(kept)


def test_the_row_noise_follows_the_bulk_law_at_h_slow():
    sp = with_slow_row(_sp(), SlowRowConfig(displacement_sq=14.6, h_factor=10.0))
    assert sp.h[-1] == pytest.approx(2e-5)
    assert sp.c[-1] == pytest.approx(0.3 * 2e-5**1.5, rel=1e-12)
    assert sp.meta["slow_row_added_trace_sigma"] == pytest.approx(50 * 0.3 * 2e-5**1.5)


def test_a_slow_obvious_reference_gives_the_same_row():
    base = _sp(dropped_directions=7.5, bulk_noise_exponent=0.7)
    sp = with_slow_row(base, SlowRowConfig(displacement_sq=9.0, h_factor=0.1))
    held = 0.0
    for n, s in zip(base.count, base.s0):
        held += n * s
    lowest = min(range(base.n_rows), key=lambda i: base.h[i])
    a = base.c[lowest] / base.h[lowest] ** 0.7
    assert (sp.h[-1], sp.count[-1]) == pytest.approx((2e-7, 7.5))
    assert sp.s0[-1] == pytest.approx((9.0 - held) / 7.5)
    assert sp.c[-1] == pytest.approx(a * 2e-7**0.7)


@pytest.mark.parametrize("dropped", [0.0, 0.4])
def test_nothing_changes_when_nothing_was_dropped(dropped):
    base = _sp(dropped_directions=dropped)
    assert with_slow_row(base, SlowRowConfig(displacement_sq=100.0)) is base


def test_no_distance_left_gives_a_row_at_rest():
    sp = with_slow_row(_sp(), SlowRowConfig(displacement_sq=1.0))
    assert sp.s0[-1] == 0.0 and sp.count[-1] == 50.0


@pytest.mark.parametrize("kwargs, needle", [
    ({"displacement_sq": -1.0}, "displacement_sq must be a finite number >= 0, got -1.0"),
    ({"displacement_sq": float("nan")}, "displacement_sq must be a finite number >= 0"),
    ({"displacement_sq": 1.0, "h_factor": 0.0}, "h_factor must be a finite number > 0, got 0.0"),
    ({"displacement_sq": 1.0, "h_factor": float("inf")}, "h_factor must be a finite number > 0"),
])
def test_bad_config_is_one_line_naming_the_field(kwargs, needle):
    with pytest.raises(NQMInputError) as exc:
        SlowRowConfig(**kwargs)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_a_spectrum_without_the_metadata_is_refused_naming_what_is_missing():
    sp = Spectrum(h=[1.0], c=[1.0], s0=[1.0], count=[1.0], meta={"h_floor": 1e-6})
    with pytest.raises(NQMInputError, match="lack dropped_directions, bulk_noise_exponent"):
        with_slow_row(sp, SlowRowConfig(displacement_sq=1.0))
