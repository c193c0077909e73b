"""`nqm.quantise`: the quantised copy keeps the loss's moments and h_max, and the tuner that
searches on it reports exact steps on the exact spectrum, as good as a search on the exact
spectrum itself."""

import numpy as np
import pytest

from nqm import quantise
from nqm.closed_form import Modes
from nqm.optimizer import OptimizerConfig
from nqm.spectrum import Spectrum, power_law
from nqm.tuning import tune

TARGET = 0.005
BUDGET = 10**7


def _moments(s):
    return [np.sum(s.count), np.sum(s.count * s.h), np.sum(s.count * s.h * s.s0),
            np.sum(s.count * s.h * s.c), np.max(s.h)]


def test_quantised_copy_keeps_the_moments_and_h_max():
    rng = np.random.default_rng(0)
    d = 2000
    h = np.exp(rng.uniform(-5, 0, d))
    spec = Spectrum(h=h, c=rng.uniform(0, 2, d) * h, s0=rng.uniform(0, 3, d),
                    count=rng.integers(1, 5, d).astype(float))
    q = quantise.quantised(spec, 0.01)
    assert q.n_rows < d / 2
    np.testing.assert_allclose(_moments(q), _moments(spec), rtol=1e-12)
    assert q.h.max() == spec.h.max()
    # against a plain loop: bin J holds h_max / 1.01^J <= h < h_max / 1.01^(J - 1)
    bins = {}
    for hi, ci, si, ni in zip(spec.h, spec.c, spec.s0, spec.count):
        J = 0
        while hi < spec.h.max() / 1.01**J * (1 - 1e-12):
            J += 1
        acc = bins.setdefault(J, np.zeros(4))
        acc += [ni, ni * hi, ni * hi * ci, ni * hi * si]
    ref = np.array([bins[J] for J in sorted(bins)])
    np.testing.assert_allclose(q.count, ref[:, 0], rtol=1e-12)
    np.testing.assert_allclose(q.h, ref[:, 1] / ref[:, 0], rtol=1e-12)
    np.testing.assert_allclose(q.c, ref[:, 2] / ref[:, 1], rtol=1e-12)
    np.testing.assert_allclose(q.s0, ref[:, 3] / ref[:, 1], rtol=1e-12)
    assert q.initial_loss() == pytest.approx(spec.initial_loss(), rel=1e-12)


def test_default_model_copy_has_563_rows_and_small_spectra_stay_exact():
    assert quantise.quantised(power_law(d=10_000), 0.01).n_rows == 563
    small = power_law(d=100)                      # h = 1/i: no two rows within 1% below 100
    assert quantise.quantised(small, 0.01) is small
    big = power_law(d=10_000)
    assert quantise.quantised(big, 0.0) is big
    with pytest.raises(ValueError, match="width"):
        quantise.quantised(big, -0.1)


def _exact_crossing(spec, point):
    cfg = OptimizerConfig("momentum" if point.momentum else "sgd", lr=point.lr,
                          momentum=point.momentum, ema=point.ema)
    modes = Modes.build(spec, cfg)
    k = int(modes.first_crossings([point.batch_size], TARGET, BUDGET)[0])
    return k if k >= 0 else None


def test_tuner_reports_exact_steps_on_the_exact_spectrum():
    spec = power_law(d=3000)
    assert quantise.quantised(spec, quantise.SEARCH_WIDTH).n_rows < spec.n_rows / 2
    bs = [1, 256, 65536]
    sgd = tune(spec, "sgd", bs, TARGET, max_steps=BUDGET)
    mom = tune(spec, "momentum", bs, TARGET, max_steps=BUDGET)
    for s, m in zip(sgd, mom):
        assert s.steps == _exact_crossing(spec, s)
        assert m.steps == _exact_crossing(spec, m)
        assert m.steps <= s.steps                 # never worse than the contained optimizer


def test_quantised_batch_size_alone_equals_inside_the_list():
    spec = power_law(d=3000)
    bs = [2**i for i in range(0, 21, 4)]
    inside = {p.batch_size: p for p in tune(spec, "momentum", bs, TARGET, max_steps=BUDGET)}
    for b in (1, 256, 65536):
        assert tune(spec, "momentum", [b], TARGET, max_steps=BUDGET)[0] == inside[b]


@pytest.mark.slow
@pytest.mark.parametrize("kind,ema", [("sgd", False), ("momentum", False), ("nesterov", False),
                                      ("sgd", True)])
def test_search_on_the_copy_is_within_1pct_of_the_search_on_the_exact_spectrum(
        monkeypatch, kind, ema):
    spec = power_law(d=3000)
    bs = [1, 256, 65536]
    got = tune(spec, kind, bs, TARGET, ema=ema, max_steps=BUDGET)
    monkeypatch.setattr(quantise, "SEARCH_WIDTH", 0.0)
    ref = tune(spec, kind, bs, TARGET, ema=ema, max_steps=BUDGET)
    for g, r in zip(got, ref):
        assert g.steps <= 1.01 * r.steps, (kind, ema, g.batch_size, g.steps, r.steps)
