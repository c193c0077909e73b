"""Seed-to-seed spread of real sweeps: exact on sweeps that agree, the leave-one-out floor and
the null hyperbola on hand-made ones, the geometric-mean sweep readable by calibrate."""

import json

import numpy as np
import pytest

from figures.sweep_noise import b_crit_floor, every_point_floor, main
from nqm.sweep_data import load_sweep

SIZES = [1, 4, 16, 64, 256, 1024]


def write(path, steps, seed, lr=0.1, momentum=None):
    path.mkdir(parents=True)
    points = [{"batch_size": b, "steps": s, "reached": True, "lr": lr, "momentum": momentum,
               "trials": 64, "widened": False} for b, s in zip(SIZES, steps)]
    path.joinpath("summary.json").write_text(json.dumps({
        "workload": "linreg", "optimizer": "sgd", "target": 0.005, "points": points,
        "seed": seed, "n_trials": 64, "versions": {}}))


def hyperbola(s_min=50.0, e_min=10000.0):
    return [int(round(s_min + e_min / b)) for b in SIZES]


def test_identical_seeds_leave_no_floor_and_an_exact_null(tmp_path):
    for k, d in enumerate([tmp_path / "ref", tmp_path / "seeds/s1", tmp_path / "seeds/s2"]):
        write(d / "linreg-sgd", hyperbola(), seed=k)
    main(["--reference", str(tmp_path / "ref"), "--seeds", str(tmp_path / "seeds")])
    report = json.loads((tmp_path / "seeds/noise.json").read_text())["linreg-sgd"]
    assert report["every_point_floor"] == [1.0, 1.0, 1.0]
    assert max(report["null_own"]) == pytest.approx(1.0, abs=0.01)   # rounding to steps
    assert report["spread_max_over_min"] == [1.0] * 6
    assert report["b_crit_floor"] == [1.0, 1.0, 1.0]
    assert report["b_crit"][0] == pytest.approx(10000.0 / 50.0, rel=0.05)
    mean = load_sweep(tmp_path / "seeds/mean/linreg-sgd")
    assert [p.steps for p in mean.points] == hyperbola()
    assert mean.points[0].trials == 192


def test_floor_is_the_worst_ratio_to_the_median_of_the_others():
    x = np.array([[100, 50, 20, 10, 5, 4],
                  [100, 60, 20, 10, 5, 4],
                  [100, 40, 20, 12, 5, 4]], dtype=float)
    # seed 0: the median of seeds 1, 2 is 50 at B = 4 (1.0) and 11 at B = 64 (1.1); seed 1:
    # 45 against 60 at B = 4; seed 2: 55 against 40 at B = 4 (the ends never count)
    np.testing.assert_allclose(every_point_floor(x), [1.1, 60 / 45, 55 / 40])


def test_b_crit_floor_compares_each_seed_with_the_median_of_the_others():
    # exact hyperbolas: B_crit = E_min / S_min = 100, 200, 800; the others' medians 500, 450,
    # 150 (to the rounding of the steps)
    x = np.array([hyperbola(50.0, e) for e in (5000.0, 10000.0, 40000.0)], dtype=float)
    b_crit, ratios = b_crit_floor(SIZES, x)
    np.testing.assert_allclose(b_crit, [100.0, 200.0, 800.0], rtol=0.03)
    np.testing.assert_allclose(ratios, [5.0, 2.25, 800.0 / 150.0], rtol=0.05)


def test_b_crit_floor_skips_an_undetermined_critical_batch_size():
    x = np.array([hyperbola(50.0, 10000.0), [4096, 1024, 256, 64, 16, 4],
                  hyperbola(50.0, 20000.0)], dtype=float)     # seed 1: perfect scaling only
    b_crit, ratios = b_crit_floor(SIZES, x)
    assert b_crit[1] is None and ratios[1] is None
    assert ratios[0] == pytest.approx(2.0, rel=0.05) and ratios[2] == pytest.approx(2.0, rel=0.05)


def test_mean_sweep_takes_geometric_means(tmp_path):
    write(tmp_path / "ref/linreg-sgd", [400, 100, 40, 10, 8, 8], 0, lr=0.1, momentum=0.9)
    write(tmp_path / "seeds/s1/linreg-sgd", [100, 100, 10, 10, 8, 8], 1, lr=0.4, momentum=0.99)
    main(["--reference", str(tmp_path / "ref"), "--seeds", str(tmp_path / "seeds")])
    mean = load_sweep(tmp_path / "seeds/mean/linreg-sgd")
    assert [p.steps for p in mean.points] == [200, 100, 20, 10, 8, 8]
    assert mean.points[0].lr == pytest.approx(0.2)
    assert 1 - mean.points[0].momentum == pytest.approx(np.sqrt(0.1 * 0.01))


def test_no_seed_directory_is_one_line(tmp_path):
    write(tmp_path / "ref/linreg-sgd", hyperbola(), 0)
    with pytest.raises(SystemExit, match="no seed directory"):
        main(["--reference", str(tmp_path / "ref"), "--seeds", str(tmp_path / "seeds")])
    assert not (tmp_path / "seeds").exists()
