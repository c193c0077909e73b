"""The learning rates of real sweeps against the measured spectrum's stability limit: the ratio
on a hand-made workload, and on the committed results linreg (a quadratic) stays within the
limit while a cross-entropy model trains above it."""

import json

import numpy as np
import pytest

from figures.stability_ratio import lr_runs, main, ratios
from nqm.spectrum import Spectrum


def test_ratio_is_lr_times_h_max_over_two(tmp_path):
    (tmp_path / "m/w").mkdir(parents=True)
    Spectrum(h=np.array([4.0, 1.0]), c=np.ones(2), s0=np.ones(2),
             count=np.ones(2)).save(tmp_path / "m/w/spectrum_target.npz")
    (tmp_path / "s/w-sgd").mkdir(parents=True)
    points = [{"batch_size": b, "steps": s, "reached": s is not None, "lr": lr, "momentum": None,
               "trials": 8, "widened": False}
              for b, s, lr in ((1, 100, 0.1), (8, 20, 0.6), (64, None, 2.0))]
    (tmp_path / "s/w-sgd/summary.json").write_text(json.dumps({
        "workload": "w", "optimizer": "sgd", "target": 0.1, "points": points, "seed": 0,
        "n_trials": 8, "versions": {}}))
    r = ratios(tmp_path / "m/w/spectrum_target.npz", tmp_path / "s/w-sgd")
    assert r["h_max"] == 4.0 and r["stability_limit"] == 0.5
    assert r["batch_sizes"] == [1, 8]                        # the unreached point is left out
    assert r["ratio"] == pytest.approx([0.2, 1.2])
    main(["--measure", str(tmp_path / "m"), "--sweeps", str(tmp_path / "s"),
          "--out", str(tmp_path / "out.json")])
    assert json.loads((tmp_path / "out.json").read_text())["w"]["ratio"] == pytest.approx(
        [0.2, 1.2])


def test_committed_sweeps_quadratic_within_the_limit_networks_above(tmp_path):
    main(["--out", str(tmp_path / "out.json")])
    report = json.loads((tmp_path / "out.json").read_text())
    assert max(report["linreg"]["ratio"]) <= 1.0
    assert max(report["mlp-digits"]["ratio"]) > 2.0


def test_nothing_to_compare_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match="no workload has both"):
        main(["--measure", str(tmp_path), "--sweeps", str(tmp_path),
              "--out", str(tmp_path / "out.json")])


def test_lr_runs_report_each_runs_curvature_against_its_own_limit(tmp_path):
    run = tmp_path / "runs/w-sgd-b8"
    run.mkdir(parents=True)
    (run / "measure_config.json").write_text(json.dumps(
        {"optimizer": "sgd", "lr": 0.5, "train_batch_size": 8}))
    (run / "measure.json").write_text(json.dumps(
        {"top_eigenvalues": [3.0, 1.0], "step": 40, "train_loss": 0.2}))
    runs = lr_runs(tmp_path / "runs")
    assert runs == {"w-sgd-b8": {"optimizer": "sgd", "lr": 0.5, "batch_size": 8, "step": 40,
                                 "train_loss": 0.2, "h_max": 3.0, "ratio": 0.75}}
    with pytest.raises(SystemExit, match="no measurement"):
        main(["--lr-runs", str(tmp_path / "none"), "--out", str(tmp_path / "out.json")])
