"""Fixed epoch and step budgets (`nqm sweep --epoch-budget / --quality`): steps per batch size,
the best metric per trial and per batch size, resume, and bad inputs."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from cli import cli
from empirical.budgets import (
    bootstrap_min_interval,
    epoch_steps,
    large_batch_verdict,
    trial_best,
)
from empirical.protocol import SweepConfig, sweep_options

N_DIGITS = 1437
SMALL = ["sweep", "--workload", "logreg-digits", "--optimizer", "sgd", "--trials", "4",
         "--threads", "1", "--quiet"]


def _records(path):
    return [json.loads(line) for line in (path / "records.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("epochs", [0.5, 1, 10, 30, 2.7])
@pytest.mark.parametrize("b", [1, 3, 4, 16, 100, 1024, 5000])
def test_epoch_steps_cover_the_epochs_by_less_than_one_batch(epochs, b):
    s = epoch_steps(epochs, N_DIGITS, b)
    assert epochs * N_DIGITS <= b * s < epochs * N_DIGITS + b
    assert s >= 1


def test_epoch_steps_examples():
    assert epoch_steps(10, 1437, 1024) == 15      # 14370 / 1024 = 14.03 -> 15
    assert epoch_steps(10, 1437, 4) == 3593       # 3592.5 -> 3593
    assert epoch_steps(1, 1437, 1437) == 1


def test_trial_best_against_a_loop():
    rng = np.random.default_rng(0)
    steps = list(range(1, 41))
    for _ in range(50):
        m = rng.random(40)
        m[rng.random(40) < 0.3] = np.nan
        best, at = trial_best(steps, m)
        ref = None
        for s, v in zip(steps, m):
            if not math.isnan(v) and (ref is None or v < ref[0]):
                ref = (v, s)
        assert (best, at) == (ref if ref else (None, None))
    assert trial_best([1, 2], [np.nan, np.nan]) == (None, None)


def test_bootstrap_interval_of_the_minimum():
    rng = np.random.default_rng(1)
    v = rng.random(16)
    lo, hi = bootstrap_min_interval(v, 2000, np.random.default_rng(0))
    assert lo == pytest.approx(v.min())                # most resamples hold the minimum
    assert v.min() <= lo <= hi <= np.sort(v)[5]        # a minimum of 16 draws is rarely > 6th
    assert bootstrap_min_interval([0.3] * 5, 100, np.random.default_rng(0)) == [0.3, 0.3]


def test_large_batch_verdict():
    def pt(b, m, lo, hi):
        return {"batch_size": b, "best_metric": m, "interval": [lo, hi]}

    worse = large_batch_verdict([pt(4, 0.01, 0.01, 0.02), pt(1024, 0.1, 0.09, 0.2)])
    assert worse.startswith("largest batch size worse")
    overlap = large_batch_verdict([pt(4, 0.01, 0.01, 0.03), pt(1024, 0.02, 0.02, 0.05)])
    assert overlap.startswith("largest batch size not clearly worse")
    assert "not worse" in large_batch_verdict([pt(4, 0.02, 0.02, 0.03), pt(64, 0.01, 0.01, 0.1)])
    assert large_batch_verdict([pt(4, 0.02, 0.02, 0.03)]).startswith("not determined")


def test_workloads_know_their_training_set_size(tmp_path):
    from empirical.workloads import get

    assert get("logreg-digits").n_train == N_DIGITS
    assert get("linreg").n_train is None
    assert get("charlm").n_train > 10_000
    rng = np.random.default_rng(0)
    data = tmp_path / "d.npz"
    np.savez(data, X_train=rng.random((37, 3)), y_train=rng.integers(0, 2, 37),
             X_val=rng.random((9, 3)), y_val=rng.integers(0, 2, 9))
    assert get("custom", data=str(data), model="logreg", target=0.5).n_train == 37


def test_steps_to_result_resume_key_is_unchanged():
    """A sweep without a fixed budget keeps its resume key (directories written before the
    budgets existed still resume); the budget modes add theirs."""
    plain = sweep_options(SweepConfig("logreg-digits", "sgd", (16,), n_trials=4))
    assert not {"epoch_budget", "quality", "n_train"} & set(plain)
    epochs = sweep_options(SweepConfig("logreg-digits", "sgd", (16,), n_trials=4,
                                       epoch_budget=3))
    assert epochs["epoch_budget"] == 3.0 and epochs["n_train"] == N_DIGITS
    assert epochs["budget"] is None and epochs["target"] is None
    quality = sweep_options(SweepConfig("logreg-digits", "sgd", (16,), n_trials=4,
                                        quality=True, budget=50))
    assert quality["quality"] is True and quality["budget"] == 50


def test_epoch_budget_sweep_records_and_resume(tmp_path):
    out = tmp_path / "e"
    args = [*SMALL, "--epoch-budget", "0.5", "--batch-sizes", "16,256", "--out", str(out)]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    recs = _records(out)
    assert {r["batch_size"] for r in recs} == {16, 256}
    for rec in recs:
        b, s = rec["batch_size"], rec["steps"]
        assert 0.5 * N_DIGITS <= b * s < 0.5 * N_DIGITS + b      # E N up to one batch
        assert rec["examples"] == b * s and rec["epochs"] == pytest.approx(b * s / N_DIGITS)
        if not rec["diverged"]:
            assert rec["steps_run"] == s                          # no early stop
            assert rec["curve"]["steps"][-1] == s
            assert rec["best_metric"] == min(rec["curve"]["metric"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "epochs" and summary["n_train"] == N_DIGITS
    assert [p["steps"] for p in summary["best_metric"]] == [45, 3]
    for name in ("summary.csv", "best_metric_vs_batch.png", "sweep_config.json"):
        assert (out / name).exists()
    before = (out / "records.jsonl").read_bytes()
    r = CliRunner().invoke(cli, args)                             # resume: nothing to train
    assert r.exit_code == 0, r.output
    assert (out / "records.jsonl").read_bytes() == before
    again = json.loads((out / "summary.json").read_text())
    for s in (summary, again):
        s.pop("versions")
    assert again == summary


def test_quality_summary_picks_the_lowest_metric(tmp_path):
    out = tmp_path / "q"
    r = CliRunner().invoke(cli, [*SMALL, "--quality", "--budget", "40", "--batch-sizes",
                                 "8,64", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "best validation error" in r.output
    recs = _records(out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "quality" and summary["step_budget"] == 40
    for p in summary["best_metric"]:
        rs = [x for x in recs if x["batch_size"] == p["batch_size"] and not x["diverged"]]
        assert all(x["steps"] == 40 and x["steps_run"] == 40 for x in rs)
        best = min(rs, key=lambda x: (x["best_metric"], x["round"], x["trial"]))
        assert p["best_metric"] == min(x["best_metric"] for x in rs)
        assert (p["lr"], p["best_step"]) == (best["lr"], best["best_step"])
        assert p["interval"][0] <= p["best_metric"] <= p["interval"][1]
        assert p["trials"] == len([x for x in recs if x["batch_size"] == p["batch_size"]])
    header = (out / "summary.csv").read_text().splitlines()[0].split(",")
    assert header[:6] == ["batch_size", "steps", "epochs", "best_metric", "interval_lo",
                          "interval_hi"]


def test_a_budget_sweep_is_refused_in_a_steps_to_result_directory(tmp_path):
    out = tmp_path / "d"
    r = CliRunner().invoke(cli, [*SMALL, "--budget", "30", "--batch-sizes", "64",
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, [*SMALL, "--quality", "--budget", "30", "--batch-sizes", "64",
                                 "--out", str(out)])
    assert r.exit_code == 2
    assert "holds a sweep with other options" in r.stderr and "quality" in r.stderr
    q = tmp_path / "q"                   # and the reverse, judged from the records alone
    r = CliRunner().invoke(cli, [*SMALL, "--quality", "--budget", "30", "--batch-sizes", "64",
                                 "--out", str(q)])
    assert r.exit_code == 0, r.output
    (q / "sweep_config.json").unlink()
    r = CliRunner().invoke(cli, [*SMALL, "--budget", "30", "--batch-sizes", "64",
                                 "--out", str(q)])
    assert r.exit_code == 2
    assert "holds a sweep with other options (quality: true there" in r.stderr
    assert "target: null there" in r.stderr
    r = CliRunner().invoke(cli, [*SMALL, "--quality", "--budget", "30", "--batch-sizes", "64",
                                 "--out", str(q)])
    assert r.exit_code == 0, r.output    # the same budget sweep resumes from its records


@pytest.mark.parametrize("extra, needle", [
    (["--epoch-budget", "0"], "epoch_budget must be a finite number > 0, got 0"),
    (["--epoch-budget", "-2"], "epoch_budget must be a finite number > 0"),
    (["--epoch-budget", "nan"], "epoch_budget must be a finite number > 0"),
    (["--epoch-budget", "inf"], "epoch_budget must be a finite number > 0"),
    (["--epoch-budget", "ten"], "--epoch-budget"),
    (["--epoch-budget", "10", "--budget", "100"], "epoch_budget and budget cannot both"),
    (["--epoch-budget", "10", "--target", "0.1"], "epoch_budget and target cannot both"),
    (["--epoch-budget", "10", "--quality"], "epoch_budget and quality cannot both"),
    (["--epoch-budget", "10", "--complete-trials"], "epoch_budget and complete_trials"),
    (["--quality", "--target", "0.1"], "quality and target cannot both"),
    (["--quality", "--complete-trials"], "quality and complete_trials cannot both"),
    (["--quality", "--targets", "0.1,0.2"], "--targets cannot be combined"),
    (["--epoch-budget", "3", "--targets", "0.1,0.2"], "--targets cannot be combined"),
    (["--quality", "--model", "mlp"], "custom workload only"),
])
def test_bad_budget_options_are_one_line_errors(tmp_path, extra, needle):
    r = CliRunner().invoke(cli, [*SMALL, *extra, "--batch-sizes", "16",
                                 "--out", str(tmp_path / "x")])
    assert r.exit_code == 2, r.output
    assert needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.output
    assert not (tmp_path / "x" / "records.jsonl").exists()


def test_epoch_budget_on_online_data_is_refused(tmp_path):
    r = CliRunner().invoke(cli, ["sweep", "--workload", "linreg", "--epoch-budget", "10",
                                 "--quiet", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2
    assert r.stderr.strip() == ("Error: an epoch budget is not meaningful for linreg (online "
                                "data: every batch is fresh)")


def test_widened_range_is_the_steps_to_result_rule():
    from empirical.protocol import widened_range

    assert widened_range([1e-2, 1.0], 0.1) is None                     # in the middle
    lo = widened_range([1e-2, 1.0], 0.011)                             # outer 10%, low side
    assert lo[0] == pytest.approx(1e-3) and lo[1] == 1.0
    hi = widened_range([1e-2, 1.0], 0.9)
    assert hi[0] == 1e-2 and hi[1] == pytest.approx(10.0)


def test_budget_sweep_is_deterministic_and_adds_batch_sizes_without_rerunning(tmp_path):
    base = [*SMALL, "--quality", "--budget", "20"]
    r = CliRunner().invoke(cli, [*base, "--batch-sizes", "32", "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    first = (tmp_path / "a" / "records.jsonl").read_bytes()
    r = CliRunner().invoke(cli, [*base, "--batch-sizes", "32,128", "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "a" / "records.jsonl").read_bytes().startswith(first)
    r = CliRunner().invoke(cli, [*base, "--batch-sizes", "32,128", "--out", str(tmp_path / "b")])
    assert r.exit_code == 0, r.output

    def norm(d):
        recs = _records(tmp_path / d)
        for x in recs:
            x.pop("wall_s_population")
        return sorted(recs, key=lambda x: (x["batch_size"], x["round"], x["trial"]))

    a, b = norm("a"), norm("b")
    assert a == b
    keys = [(x["batch_size"], x["round"], x["trial"]) for x in a]
    assert len(keys) == len(set(keys))


def test_calibration_refuses_a_fixed_budget_sweep():
    from pathlib import Path

    from nqm.errors import NQMInputError
    from nqm.sweep_data import load_sweep

    d = Path(__file__).resolve().parents[2] / "figures" / "shallue" / "mlp-digits-sgd-quality"
    with pytest.raises(NQMInputError, match="is a fixed-budget sweep .* calibration needs a "
                                            "steps-to-result sweep"):
        load_sweep(d)


def test_figures_of_a_budget_sweep_directory_are_one_line(tmp_path):
    d = tmp_path / "b"
    d.mkdir()
    (d / "summary.json").write_text(json.dumps({"best_metric": [], "workload": "x"}))
    r = CliRunner().invoke(cli, ["figures", "--sweep", str(d)])
    assert r.exit_code == 2 and "fixed-budget sweep" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1


def test_a_budget_directory_is_told_apart_by_its_records(tmp_path):
    """Without sweep_config.json the records alone say which budget a directory holds."""
    from empirical.protocol import recorded_options

    records = [{"workload": "mlp-digits", "epoch_budget": 10.0, "n_train": 1437, "target": None},
               {"workload": "mlp-digits", "epoch_budget": 30.0, "n_train": 1437, "target": None}]
    assert [o["epoch_budget"] for o in recorded_options(records)] == [10.0, 30.0]
