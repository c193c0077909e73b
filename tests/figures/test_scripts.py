"""Every figure script runs on the small committed results and writes what it says."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_sweep_table_prints_every_reference_sweep(tmp_path, capsys):
    from figures import sweep_table

    sweep_table.main(figure_dir=tmp_path)
    out = capsys.readouterr().out
    n = len(list((ROOT / "figures" / "sweeps").glob("*/summary.json")))
    assert out.count("| linreg | sgd |") == 2 and n >= 15
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        {f"{d.name.rsplit('-', 1)[0]}.png" for d in (ROOT / "figures" / "sweeps").iterdir()
         if d.is_dir()})


def test_measure_table_prints_every_checkpoint(capsys):
    from figures import measure_table

    measure_table.main()
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| linreg")]
    m = json.loads((ROOT / "figures" / "measure" / "linreg" / "measure.json").read_text())
    assert len(rows) == len(m["along_training"])


@pytest.mark.slow
def test_validation_runner_writes_records_and_figures(tmp_path):
    out = subprocess.run([sys.executable, "-m", "figures.run_validation", "--workloads",
                          "linreg", "--out", str(tmp_path)], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert "| linreg | sgd |" in out and "Adam proxy p" in out
    for name in ("linreg-sgd", "linreg-momentum", "linreg-adam"):
        rec = json.loads((tmp_path / f"{name}.json").read_text())
        assert set(rec) == {"zero_run", "ends", "one_run"}
        for suffix in (".png", ".pdf", "-examples.png", "-examples.pdf"):
            assert (tmp_path / f"{name}{suffix}").stat().st_size > 1000
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {r["optimizer"] for r in summary} == {"sgd", "momentum", "adam"}
    assert (tmp_path / "bcrit_scatter.pdf").exists()


def test_calibration_figures_from_a_record(tmp_path):
    from figures.calibration import bcrit_scatter, calibration_figure, examples_figure
    from nqm.calibrate import calibrate
    from nqm.spectrum import load
    from nqm.sweep_data import load_sweep

    rec = calibrate(load(ROOT / "figures/measure/linreg/spectrum_target.npz"),
                    load_sweep(ROOT / "figures/sweeps/linreg-sgd"))
    written = calibration_figure(rec, tmp_path / "c", "linreg, sgd")
    written += examples_figure(rec, tmp_path / "e", "linreg, sgd")
    written += bcrit_scatter([{"bcrit_measured": 100.0, "bcrit_nqm": 150.0, "bcrit_null": 90.0,
                               "one_run_bcrit": None}], tmp_path / "s")
    assert [p.suffix for p in written] == [".png", ".pdf"] * 3
    assert all(p.stat().st_size > 1000 for p in written)


def test_noise_floor_leave_one_out_worst():
    from figures.noise_floor import floor_record, leave_one_out_worst

    same = {"sgd": {"1": [5.0, 5.0, 5.0, 5.0]}}
    assert np.allclose(leave_one_out_worst(same), 1.0)
    # repeat 0 at B=1 is 2x the median of the others; repeat 3 at B=4 is half of it
    reps = {"sgd": {"1": [20.0, 10.0, 10.0, 10.0], "4": [4.0, 4.0, 4.0, 2.0]}}
    assert np.allclose(leave_one_out_worst(reps), [2.0, 1.0, 1.0, 2.0])
    reps["sgd"]["16"] = [1.0, 1.0, 1.0, 1.0]
    rec = floor_record({"repeats": 4, "optimizers": {"sgd": {"repeats": {"fp": reps["sgd"]}}}},
                       draws=100)
    assert rec["every_point"]["fp"]["fraction_within_goal"] == 0.5
    assert set(rec["held_out"]) >= {"sigma", "measured", "half", "double"}
    with pytest.raises(ValueError, match="same number"):
        leave_one_out_worst({"sgd": {"1": [1.0, 2.0, 3.0], "4": [1.0, 2.0]}})


def test_noise_floor_subset_mean_worst():
    """k = 1 is the leave-one-out floor; against the mean of k the spread shrinks."""
    from figures.noise_floor import leave_one_out_worst, subset_mean_worst

    rng = np.random.default_rng(0)
    reps = {"sgd": {str(b): list(100.0 * np.exp(0.2 * rng.standard_normal(12)))
                    for b in (1, 4, 16)}}
    assert np.array_equal(subset_mean_worst(reps, 1), leave_one_out_worst(reps))
    four = subset_mean_worst(reps, 4)
    assert four.size == 495                      # C(12, 4)
    assert np.median(four) < np.median(subset_mean_worst(reps, 1))
    # the geometric mean of {2, 8} is 4: exactly the median of the rest
    exact = {"sgd": {"1": [2.0, 8.0, 4.0, 4.0]}}
    assert subset_mean_worst(exact, 2)[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="k \\+ 2"):
        subset_mean_worst(exact, 3)
