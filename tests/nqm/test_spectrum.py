import json
import tracemalloc

import numpy as np
import pytest

from nqm import spectrum as spectrum_module
from nqm.errors import NQMInputError
from nqm.spectrum import Spectrum, load, parse_spec, power_law


def test_power_law_defaults_are_zhang_et_al():
    s = power_law()
    assert s.n_rows == 10_000
    np.testing.assert_allclose(s.h, 1.0 / np.arange(1, 10_001))
    np.testing.assert_array_equal(s.c, s.h)
    np.testing.assert_array_equal(s.s0, 1.0)
    assert s.initial_loss() == pytest.approx(0.5 * np.sum(1.0 / np.arange(1, 10_001)))


def test_spectrum_is_immutable():
    s = power_law(d=5)
    with pytest.raises(ValueError):
        s.h[0] = 3.0
    with pytest.raises(AttributeError):
        s.h = np.ones(5)


@pytest.mark.parametrize("field,value,msg", [
    ("h", [1.0, np.nan, 1.0], "'h' is not finite at index 1"),
    ("h", [1.0, 0.5, -0.1], "'h' must be > 0 .* at index 2"),
    ("c", [1.0, -1.0, 1.0], "'c' must be >= 0 at index 1"),
    ("s0", [1.0, 1.0, np.inf], "'s0' is not finite at index 2"),
    ("count", [1.0, 0.0, 1.0], "'count' must be > 0 at index 1"),
    ("c", [1.0, 1.0], "'c' has length 2 but 'h' has length 3"),
])
def test_validation_names_field_and_index(field, value, msg):
    kw = {"h": [1.0, 0.5, 0.1], "c": [1.0, 1.0, 1.0], "s0": [1.0, 1.0, 1.0],
          "count": [1.0, 1.0, 1.0]}
    kw[field] = value
    with pytest.raises(NQMInputError, match=msg):
        Spectrum(**kw)


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_file_round_trip(tmp_path, suffix):
    s = Spectrum(h=[1.0, 0.1], c=[0.5, 0.05], s0=[2.0, 1.0], count=[1.0, 1000.0],
                 meta={"workload": "x"})
    path = tmp_path / f"spec{suffix}"
    s.save(path)
    t = load(path)
    for f in ("h", "c", "s0", "count"):
        np.testing.assert_array_equal(getattr(t, f), getattr(s, f))
    assert t.meta["workload"] == "x"


def test_file_count_is_optional(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"h": [1, 0.5], "c": [1, 1], "s0": [1, 1]}))
    np.testing.assert_array_equal(load(path).count, [1.0, 1.0])


@pytest.mark.parametrize("content,msg", [
    ("{not json", "not valid JSON"),
    ('{"h": [1], "c": [1]}', "lacks field"),
    ('[1, 2]', "JSON object"),
    ('{"h": ["a"], "c": [1], "s0": [1]}', "'h' is not numeric"),
])
def test_malformed_files(tmp_path, content, msg):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(NQMInputError, match=msg):
        load(path)


def test_corrupt_npz_and_wrong_suffix_and_missing(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(NQMInputError, match="not a readable .npz"):
        load(bad)
    (tmp_path / "x.txt").write_text("h c s0")
    with pytest.raises(NQMInputError, match="must end in"):
        load(tmp_path / "x.txt")
    with pytest.raises(NQMInputError, match="not found"):
        load(tmp_path / "missing.npz")


def test_parse_spec():
    s = parse_spec("power:d=100,alpha=2,noise_scale=3,s0=0.5")
    np.testing.assert_allclose(s.h, np.arange(1, 101) ** -2.0)
    np.testing.assert_allclose(s.c, 3 * s.h)
    with pytest.raises(NQMInputError, match="bad power-law spectrum option 'beta=1'"):
        parse_spec("power:d=10,beta=1")
    with pytest.raises(NQMInputError, match="non-numeric"):
        parse_spec("power:d=ten")


def test_binning_keeps_dimension_and_linear_sums():
    s = power_law(d=10_000)
    b = s.binned(200)
    assert b.n_rows <= 200
    assert b.dimension == pytest.approx(10_000)
    # count-weighted means keep sum(count * c) and sum(count * s0) exactly
    assert np.sum(b.count * b.c) == pytest.approx(np.sum(s.c))
    assert np.sum(b.count * b.s0) == pytest.approx(10_000)
    # the initial loss sum(h s0)/2 is exact too because s0 is constant here
    assert b.initial_loss() == pytest.approx(s.initial_loss())


def test_noise_scales_closed_form():
    s = Spectrum(h=[2.0, 1.0], c=[3.0, 1.0], s0=[1.0, 4.0], count=[1.0, 2.0])
    b_noise, b_simple = s.noise_scales()
    assert b_simple == pytest.approx((3 + 2 * 1) / (4 * 1 + 2 * 1 * 4))
    assert b_noise == pytest.approx((2 * 3 + 2 * 1) / (8 * 1 + 2 * 1 * 4))


def _full_then_binned(d, alpha, noise_scale, noise_exponent, s0, bins):
    """All d directions, then `Spectrum.binned`."""
    return power_law(d=d, alpha=alpha, noise_scale=noise_scale, noise_exponent=noise_exponent,
                     s0=s0).binned(bins)


@pytest.mark.parametrize("explicit", [1 << 16, 64])
@pytest.mark.parametrize("alpha,noise_exponent,bins", [
    (1.0, 1.0, 200), (0.5, 2.0, 50), (1.7, 0.3, 1), (0.0, 1.0, 10), (3.0, 1.0, 30)])
def test_binned_power_law_equals_binning_the_full_spectrum(monkeypatch, explicit, alpha,
                                                           noise_exponent, bins):
    """The power sums per bin give the rows of binning all d = 10^5 directions, with the same
    directions in each bin (explicit = 64 sends nearly every bin through Euler-Maclaurin)."""
    monkeypatch.setattr(spectrum_module, "EXPLICIT_TERMS", explicit)
    full = _full_then_binned(10**5, alpha, 2.0, noise_exponent, 0.5, bins)
    fast = power_law(d=10**5, alpha=alpha, noise_scale=2.0, noise_exponent=noise_exponent,
                     s0=0.5, bins=bins)
    np.testing.assert_array_equal(fast.count, full.count)
    np.testing.assert_allclose(fast.h, full.h, rtol=1e-12)
    np.testing.assert_allclose(fast.c, full.c, rtol=1e-12)
    np.testing.assert_allclose(fast.s0, full.s0, rtol=1e-14)
    assert fast.meta == full.meta
    assert fast.initial_loss() == pytest.approx(full.initial_loss(), rel=1e-12)


def test_binned_power_law_of_a_billion_directions_is_small():
    tracemalloc.start()
    try:
        s = parse_spec("power:d=1000000000,bins=200")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100e6
    assert s.n_rows <= 200 and s.dimension == 1e9
    # 1/2 sum_{i <= d} 1/i = (ln d + Euler's gamma + 1/(2d)) / 2 for h = c = 1/i, s0 = 1
    assert s.initial_loss() == pytest.approx(0.5 * (np.log(1e9) + np.euler_gamma + 0.5e-9),
                                             rel=1e-12)


def test_power_law_too_large_for_memory_is_refused(monkeypatch):
    monkeypatch.setattr(spectrum_module, "available_memory", lambda: 16 * 2**30)
    with pytest.raises(NQMInputError, match=r"d = 1000000000 rows needs about 80 GB .* "
                                            r"17.2 GB available: bin it, e.g. "
                                            r"power:d=1000000000,bins=200"):
        parse_spec("power:d=1000000000")
    assert power_law(d=1000).n_rows == 1000


def test_available_memory_is_positive():
    assert spectrum_module.available_memory() > 0
