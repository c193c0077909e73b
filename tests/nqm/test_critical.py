import numpy as np
import pytest

from nqm.critical import bootstrap, estimate, fit_mccandlish, overhead_batch_size
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


# ----------------------------------------------------------------- judged estimates
def test_estimate_flags_a_value_outside_the_batch_sizes_as_extrapolated():
    b = 2.0 ** np.arange(2, 7)                      # 4..64, true B_crit 256
    est = estimate(b, 500 * (1 + 256 / b))
    assert est.values["mccandlish"] == pytest.approx(256)
    assert est.extrapolated == ("mccandlish",) and est.batch_range == (4.0, 64.0)
    assert est.flags()["extrapolated"] == ["mccandlish"]
    inside = estimate(B, 500 * (1 + 256 / B))        # 1..8192
    assert inside.extrapolated == () and inside.values["mccandlish"] == pytest.approx(256)


def test_estimate_two_points_has_no_bootstrap_interval():
    est = estimate([64, 256], [1000, 400], n_resamples=200, seed=0)
    assert est.values["mccandlish"] == pytest.approx(256)
    assert est.interval["mccandlish"] == [None, None]
    assert "need >= 3 batch sizes" in est.not_determined["interval"]


def test_estimate_flat_steps_are_not_determined():
    b = [8, 16, 32, 64]
    est = estimate(b, [100, 100, 100, 100], n_resamples=200)
    assert est.values["mccandlish"] is None
    assert est.not_determined["mccandlish"].startswith("steps do not fall with batch size")
    assert est.interval["mccandlish"] == [None, None]
    noisy = estimate(b, [100, 97, 102, 99], n_resamples=200)     # flat within noise
    assert noisy.values["mccandlish"] is None and "do not fall" in noisy.not_determined[
        "mccandlish"]


def test_estimate_rising_steps_are_not_determined_and_warned():
    est = estimate([8, 16, 32, 64], [100, 130, 170, 220])
    assert est.values["mccandlish"] is None
    assert est.not_determined["mccandlish"] == "steps rise with batch size"
    assert any("rise by more than 25%" in w and "32 -> 64" in w for w in est.warnings)


def test_estimate_warns_about_one_rising_step_beyond_25_percent():
    s = list(500 * (1 + 256 / B))
    s[8] = s[7] * 1.3                                 # +30% from B = 128 to 256
    est = estimate(B, s)
    assert est.values["mccandlish"] is not None
    assert len(est.warnings) == 1 and "128 -> 256 (+30%)" in est.warnings[0]
    s[8] = s[7] * 1.2                                 # +20%: within the tolerance
    assert estimate(B, s).warnings == ()


def test_estimate_averages_duplicate_batch_sizes_geometrically():
    b = [8, 16, 16, 32, 64, 128]
    s = [1000, 600, 500, 300, 250, 240]
    est = estimate(b, s)
    merged = fit_mccandlish([8, 16, 32, 64, 128], [1000, np.sqrt(600 * 500), 300, 250, 240])
    assert est.s_min == pytest.approx(merged.s_min) and est.e_min == pytest.approx(merged.e_min)
    assert est.warnings == ("batch size 16 has 2 reached step counts: they are averaged "
                            "(geometric mean)",)


def test_estimate_perfect_scaling_and_too_few_points():
    est = estimate(B, 1e6 / B)
    assert est.values["mccandlish"] is None and "above the largest" in est.not_determined[
        "mccandlish"]
    assert est.values["overhead_20pct"] is None and "within 20%" in est.not_determined[
        "overhead_20pct"]
    one = estimate([4, 8], [100, None], n_resamples=100)
    assert one.s_min is None and one.values == {"mccandlish": None, "overhead_20pct": None}
    assert "two or more" in one.not_determined["interval"]


def test_estimate_interval_matches_bootstrap_on_noisy_data():
    rng = np.random.default_rng(123)
    s = 500 * (1 + 256 / B) * (1 + 0.05 * rng.standard_normal(B.size))
    est = estimate(B, s, n_resamples=300, seed=4)
    assert est.interval == bootstrap(B, s, n_resamples=300, seed=4)
    assert "interval" not in est.not_determined
