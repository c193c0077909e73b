"""The `nqm` pipelines called directly (no CLI): simulate, fit, compare_optimizers, the
measurement reader, and the text they are printed with."""

import math

import numpy as np
import pytest

from nqm.errors import NQMInputError
from nqm.optimizer import OptimizerConfig
from nqm.spectrum import parse_spec

SMALL = "power:d=30,alpha=1"


def _simulate_config(**kw):
    from nqm.simulate import SimulateConfig

    base = {"optimizer": OptimizerConfig("sgd", lr=0.5), "batch_size": 4.0, "n_steps": 60}
    return SimulateConfig(**{**base, **kw})


def test_simulate_matches_the_expected_loss_and_its_first_step_below_target():
    from nqm.dynamics import expected_loss
    from nqm.simulate import simulate

    sp = parse_spec(SMALL)
    cfg = _simulate_config(points=0, target=0.3)
    rec = simulate(sp, cfg)
    assert rec["steps"] == list(range(61))
    direct = expected_loss(sp, cfg.optimizer, 4.0, rec["steps"], cfg.schedule, None)
    np.testing.assert_allclose(rec["loss"], direct, rtol=0, atol=0)
    first = next(k for k, v in zip(rec["steps"], rec["loss"]) if v <= 0.3)
    assert rec["steps_to_target"] == first
    assert 0 < rec["steady_state"] < rec["loss"][-1]


def test_simulate_monte_carlo_follows_its_seed():
    from nqm.simulate import simulate

    sp = parse_spec(SMALL)
    a = simulate(sp, _simulate_config(mc_runs=8, seed=1))
    b = simulate(sp, _simulate_config(mc_runs=8, seed=1))
    c = simulate(sp, _simulate_config(mc_runs=8, seed=2))
    assert a["mc_mean"] == b["mc_mean"] and a["mc_mean"] != c["mc_mean"]
    assert a["mc_runs"] == 8 and a["seed"] == 1 and a["mc_steps"] == a["steps"]


def test_simulate_warns_beyond_the_stability_limit_and_reports_no_steady_state():
    from nqm.simulate import simulate

    heard = []
    rec = simulate(parse_spec(SMALL), _simulate_config(optimizer=OptimizerConfig("sgd", lr=5.0),
                                                       n_steps=10), warn=heard.append)
    assert len(heard) == 1 and "stability limit" in heard[0]
    assert "steady_state" not in rec
    assert not math.isfinite(rec["loss"][-1]) or rec["loss"][-1] > 10 * rec["loss"][0]


@pytest.mark.parametrize("kw, field", [({"batch_size": -3.0}, "batch size"),
                                       ({"n_steps": -1}, "n_steps"),
                                       ({"mc_runs": 1.5}, "mc_runs")])
def test_simulate_config_names_the_bad_field(kw, field):
    with pytest.raises(NQMInputError, match=field):
        _simulate_config(**kw)


def test_report_and_display_steps():
    from nqm.simulate import display_steps, report_steps

    assert report_steps(5, 0) == [0, 1, 2, 3, 4, 5]
    ks = report_steps(10**6, 50)
    assert ks[0] == 0 and ks[-1] == 10**6 and ks == sorted(set(ks)) and len(ks) <= 52
    shown = display_steps(ks, 10**6)
    assert set(shown) <= set(ks) and 0 in shown and 10**6 in shown and len(shown) <= 13


def test_fit_recovers_an_exact_hyperbola():
    from nqm.fit import FitConfig, fit

    b = [1, 2, 4, 8, 16, 32, 64, 128]
    s = [100 + 6400 / x for x in b]
    rec = fit(b, s, FitConfig(bootstrap=50, seed=0))
    assert rec["s_min"] == pytest.approx(100, rel=1e-6)
    assert rec["e_min"] == pytest.approx(6400, rel=1e-6)
    assert rec["critical_batch_size"]["mccandlish"] == pytest.approx(64, rel=1e-6)
    assert [p["batch_size"] for p in rec["points"]] == b
    assert rec["bootstrap"] == {"resamples": 50, "seed": 0,
                                "method": "residual (relative residuals)"}


def test_fit_refuses_fewer_than_two_reached_sizes():
    from nqm.fit import FitConfig, fit

    with pytest.raises(NQMInputError, match="two or more batch sizes"):
        fit([1, 2, 4], [100.0, None, None], FitConfig(bootstrap=10))
    with pytest.raises(NQMInputError, match="bootstrap"):
        FitConfig(bootstrap=-1)


def test_read_measurements(tmp_path):
    from nqm.measurements import read_measurements

    path = tmp_path / "m.csv"
    path.write_text("batch_size, steps\n1,100\n2, inf\n4,\n8,30\n")
    assert read_measurements(path) == ([1.0, 2.0, 4.0, 8.0], [100.0, None, None, 30.0])
    path.write_text("batch_size,step\n1,100\n")
    with pytest.raises(NQMInputError, match="missing column"):
        read_measurements(path)
    path.write_text("batch_size,steps\n1,100\nx,3\n")
    with pytest.raises(NQMInputError, match="line 3"):
        read_measurements(path)
    with pytest.raises(NQMInputError, match="not found"):
        read_measurements(tmp_path / "absent.csv")


def test_compare_optimizers_is_predict_for_each_optimizer():
    from nqm.compare import OPTIMIZER_SET, CompareConfig, compare_optimizers
    from nqm.predict import PredictConfig, predict

    sp = parse_spec("power:d=20,alpha=1")
    cfg = CompareConfig(target=0.05, batch_sizes=(1, 16), threads=1)
    ticks = []
    res = compare_optimizers(sp, cfg, progress=ticks.append)
    assert list(res) == list(OPTIMIZER_SET) and sum(ticks) == 2 * len(OPTIMIZER_SET)
    direct = predict(sp, PredictConfig(target=0.05, batch_sizes=(1, 16), threads=1,
                                       optimizer="sgd", precond=0.5))
    assert res["sgd+precond(p=0.5)"]["points"] == direct["points"]
    assert res["sgd+ema"]["ema_tuned"] and res["momentum"]["optimizer"] == "momentum"


@pytest.mark.parametrize("kw, field", [({"target": -1.0}, "target"),
                                       ({"batch_sizes": (0, 2)}, "batch"),
                                       ({"threads": 0}, "threads")])
def test_compare_config_names_the_bad_field(kw, field):
    from nqm.compare import CompareConfig

    with pytest.raises(NQMInputError, match=field):
        CompareConfig(**kw)


def test_slug():
    from nqm.compare import slug

    assert slug("sgd+precond(p=0.5)") == "sgd_precond_p0.5" and slug("sgd+ema") == "sgd_ema"


def test_text_formatting():
    from figures.text import critical_lines, fmt, with_interval

    assert fmt(None) == "-" and fmt(float("inf")) == "inf" and fmt(1234567.0) == "1.235e+06"
    assert with_interval(12.34, [10.0, None]) == "12.34 [10, inf]"
    assert with_interval(None, None) == "-"
    rec = {"critical_batch_size_flags": {"not_determined": {"overhead_20pct": "flat"},
                                         "extrapolated": ["mccandlish"],
                                         "batch_size_range": [1, 64], "warnings": ["w"]}}
    lines = critical_lines({"mccandlish": 100.0, "overhead_20pct": None}, 10.0, 1000.0, rec)
    assert lines[1] == ("  mccandlish      B_crit = E_min/S_min = 100   "
                        "(S_min = 10, E_min = 1000)")
    assert "outside the batch sizes 1..64" in lines[2]
    assert lines[3] == "  overhead_20pct  not determined: flat" and lines[-1] == "warning: w"
