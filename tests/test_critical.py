import numpy as np
import pytest

from nqm.critical import bootstrap, fit_mccandlish, overhead_batch_size
from nqm.errors import NQMInputError

B = 2.0 ** np.arange(14)


def test_mccandlish_fit_recovers_exact_curve():
    fit = fit_mccandlish(B, 500 * (1 + 256 / B))
    assert fit.s_min == pytest.approx(500)
    assert fit.e_min == pytest.approx(500 * 256)
    assert fit.b_crit == pytest.approx(256)


def test_overhead_definition_on_exact_curve():
    # S B / (S_0 B_0) = (B + 256) / 257 reaches 1.2 at B = 0.2 * 257 + ... = 51.4; the
    # interpolation is linear in log B between powers of two, so allow that error
    got = overhead_batch_size(B, 500 * (1 + 256 / B))
    assert got == pytest.approx(1.2 * 257 - 256, rel=0.05)


def test_overhead_none_when_scaling_stays_perfect():
    assert overhead_batch_size(B, 1e6 / B) is None


def test_not_reached_points_are_ignored():
    s = list(500 * (1 + 256 / B))
    s[-1] = None
    assert fit_mccandlish(B, s).b_crit == pytest.approx(256)


def test_bootstrap_interval_covers_truth_on_noisy_data():
    """Seeded statistical check: 5% multiplicative noise; the 95% interval contains 256."""
    rng = np.random.default_rng(123)
    s = 500 * (1 + 256 / B) * (1 + 0.05 * rng.standard_normal(B.size))
    ci = bootstrap(B, s, n_resamples=500, seed=1)
    lo, hi = ci["mccandlish"]
    assert lo < 256 < hi
    assert hi / lo < 1.5
    again = bootstrap(B, s, n_resamples=500, seed=1)
    assert again == ci


def test_errors():
    with pytest.raises(NQMInputError, match="two or more"):
        fit_mccandlish([1, 2], [10, None])
    with pytest.raises(NQMInputError, match="differ in length"):
        fit_mccandlish([1, 2, 3], [1, 2])
    with pytest.raises(NQMInputError, match="steps at row 1 must be > 0"):
        fit_mccandlish([1, 2], [1, -2])
    with pytest.raises(NQMInputError, match="batch size at row 0"):
        fit_mccandlish([0, 2], [1, 2])


def test_overhead_interval_contains_its_estimate_when_the_fit_is_misspecified():
    """Steps that saturate more sharply than S_min + E_min / B (as the NQM's do): the overhead
    interval is about the data, so it must contain the point estimate."""
    s = np.maximum(1e6 / B, 900.0) * (1 + 0.02 * np.cos(np.arange(B.size)))
    est = overhead_batch_size(B, s)
    lo, hi = bootstrap(B, s, n_resamples=400, seed=2)["overhead_20pct"]
    assert lo <= est <= hi
