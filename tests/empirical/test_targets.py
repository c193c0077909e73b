"""Several targets from one sweep: crossings read from records, equality with single-target
sweeps, resume without training, trials.csv, the sweep figures and bad inputs."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli import cli
from empirical.protocol import SweepConfig, run_batch_size, summarize
from empirical.targets import (
    check_targets,
    crossing,
    read_trials,
    sweep_figure_data,
    trials_from_records,
)

TARGETS = (0.1, 0.15, 0.3)
SWEEP = ["sweep", "--workload", "logreg-digits", "--optimizer", "momentum", "--trials", "4",
         "--budget", "300", "--quiet", "--batch-sizes", "16,64"]


def _record(metric, steps=None, diverged=False, diverged_at=None):
    steps = steps or list(range(1, len(metric) + 1))
    return {"curve": {"steps": steps, "metric": metric}, "diverged": diverged,
            "diverged_at": diverged_at}


def test_crossing_is_the_first_evaluation_at_or_below_the_target():
    rec = _record([0.9, 0.5, 0.31, 0.3, 0.2, 0.25], steps=[1, 2, 4, 8, 16, 32])
    assert crossing(rec, 0.3) == 8
    assert crossing(rec, 0.2) == 16
    assert crossing(rec, 1.0) == 1
    assert crossing(rec, 0.1) is None


def test_crossing_compares_in_float32_as_the_trainer_does():
    # 18/360 in float32 equals float32(0.05), which lies above 0.05 in float64
    value = float(np.float32(18 / 360))
    assert value > 0.05
    assert crossing(_record([0.2, value]), 0.05) == 2


def test_crossing_before_divergence_counts_and_after_does_not():
    rec = _record([0.5, 0.2, 0.1, 0.05], diverged=True, diverged_at=3)
    assert crossing(rec, 0.2) == 2          # crossed, diverged later: counts
    assert crossing(rec, 0.1) is None       # the evaluation at the divergence step does not
    old = _record([0.5, 0.2], diverged=True)     # no diverged_at recorded: counts for none
    assert crossing(old, 0.5) is None


@pytest.mark.parametrize("targets, message", [
    ((0.2, 0.1), "strictly increasing"), ((0.1, 0.1), "must not repeat"),
    ((0.0, 0.1), "> 0"), ((-0.1, 0.2), "> 0"), ((0.1, float("nan")), "> 0"), ((), "empty")])
def test_bad_targets_are_refused_naming_the_field(targets, message):
    with pytest.raises(ValueError, match=message) as err:
        check_targets(targets)
    assert str(err.value).startswith("targets")
    with pytest.raises(ValueError, match="targets"):
        SweepConfig("logreg-digits", "sgd", (16,), targets=targets)


def test_config_takes_the_smallest_target_as_the_trained_one():
    cfg = SweepConfig("logreg-digits", "sgd", (16,), targets=[0.05, 0.1])
    assert cfg.target == 0.05 and cfg.targets == (0.05, 0.1)
    with pytest.raises(ValueError, match="target must be the smallest"):
        SweepConfig("logreg-digits", "sgd", (16,), target=0.1, targets=(0.05, 0.1))


@pytest.mark.parametrize("extra, message", [
    (["--targets", "0.2,0.1"], "targets must be strictly increasing"),
    (["--targets", "0.1,0.1"], "targets must not repeat"),
    (["--targets", "0,0.1"], "targets must be finite numbers > 0"),
    (["--targets", "-0.1,0.2"], "targets must be finite numbers > 0"),
    (["--targets", "0.1,x"], "bad --targets '0.1,x'"),
    (["--target", "0.1", "--targets", "0.1,0.2"], "either --target or --targets")])
def test_bad_targets_on_the_command_line_are_one_line_exit_2(tmp_path, extra, message):
    r = CliRunner().invoke(cli, [*SWEEP, *extra, "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.output + r.stderr
    assert not (tmp_path / "o" / "records.jsonl").exists()


def _points(summary, keys=("batch_size", "steps", "reached", "lr", "momentum")):
    return [{k: p[k] for k in keys} for p in summary["points"]]


def _run(cfg, path):
    return [r for b in cfg.batch_sizes for r in run_batch_size(cfg, b, str(path))]


def test_several_targets_equal_single_target_sweeps_without_widening(tmp_path):
    """With max_widen = 0 each target's best steps per batch size equal those of a sweep run
    for that target alone with the same seed, with the default early stop (rounds stop at the
    hardest target's first crossing: the easier ones are read from trials cut there)."""
    common = dict(workload="logreg-digits", optimizer="sgd", batch_sizes=(16, 64), n_trials=4,
                  budget=300, max_widen=0)
    cfg = SweepConfig(**common, targets=TARGETS)
    recs = _run(cfg, tmp_path / "several.jsonl")
    summary = summarize(cfg, recs, n_resamples=50)
    assert any(r["beaten"] for r in recs)                     # the early stop did cut trials
    assert [g["target"] for g in summary["by_target"]] == list(TARGETS)
    assert _points(summary["by_target"][0]) == _points(summary)   # the trained target
    for i, t in enumerate(TARGETS):
        single = SweepConfig(**common, target=t)
        alone = summarize(single, _run(single, tmp_path / f"{t}.jsonl"), n_resamples=50)
        assert _points(summary["by_target"][i]) == _points(alone), t
        assert summary["by_target"][i]["critical_batch_size"] == alone["critical_batch_size"]
    steps = [[p["steps"] for p in g["points"]] for g in summary["by_target"]]
    assert all(a >= b for a, b in zip(steps[0], steps[1]))    # harder never takes fewer steps
    for r in recs:                                            # records carry every crossing
        assert r["crossings"] == {repr(t): crossing(r, t) for t in TARGETS}
        assert r["crossings"][repr(0.1)] == r["steps"]


@pytest.mark.slow
def test_early_stop_and_widening_give_the_same_targets_as_complete_trials(tmp_path):
    """The records cut at each round's stop step determine every easier target's minimum, also
    across widening rounds (both runs widen alike: widening follows the hardest target)."""
    by_target = []
    for complete in (False, True):
        cfg = SweepConfig("logreg-digits", "sgd", (16, 64), n_trials=8, budget=300,
                          lr_range=(0.003, 0.5), complete_trials=complete, targets=TARGETS)
        recs = _run(cfg, tmp_path / f"{complete}.jsonl")
        assert any(r["beaten"] for r in recs) != complete
        by_target.append([_points(g, ("batch_size", "steps", "reached", "lr", "widened"))
                          for g in summarize(cfg, recs, n_resamples=50)["by_target"]])
    assert by_target[0] == by_target[1]
    assert any(p["widened"] for g in by_target[0] for p in g)


@pytest.mark.slow
def test_rerun_with_other_easier_targets_reuses_every_record(tmp_path, monkeypatch):
    out = tmp_path / "s"
    r = CliRunner().invoke(cli, [*SWEEP, "--targets", "0.1,0.3", "--out", str(out)])
    assert r.exit_code == 0, r.output
    records = (out / "records.jsonl").read_bytes()
    first = json.loads((out / "summary.json").read_text())

    import empirical.population

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(empirical.population, "train_population", no_training)
    r = CliRunner().invoke(cli, [*SWEEP, "--targets", "0.1,0.15,0.2,0.3", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert (out / "records.jsonl").read_bytes() == records
    again = json.loads((out / "summary.json").read_text())
    assert [g["target"] for g in again["by_target"]] == [0.1, 0.15, 0.2, 0.3]
    assert again["by_target"][0]["points"] == first["by_target"][0]["points"]
    assert again["by_target"][3]["points"] == first["by_target"][1]["points"]
    assert "T=0.15" in r.output and "T=0.2" in r.output
    csv_rows = (out / "summary_by_target.csv").read_text().splitlines()
    assert csv_rows[0].startswith("target,batch_size,steps") and len(csv_rows) == 1 + 4 * 2


@pytest.mark.slow
def test_trials_csv_reads_back_as_the_records_and_draws_the_figures(tmp_path):
    out = tmp_path / "s"
    r = CliRunner().invoke(cli, [*SWEEP, "--targets", "0.1,0.3", "--out", str(out)])
    assert r.exit_code == 0, r.output
    for name in ("steps_vs_batch.png", "steps_and_examples.png", "steps_by_target.png",
                 "trials.csv", "summary_by_target.csv"):
        assert (out / name).exists(), name
    from empirical.records import read_records

    targets, rows = read_trials(out / "trials.csv")
    assert targets == [0.1, 0.3]
    from_records = trials_from_records(read_records(out / "records.jsonl"), targets)
    assert rows == from_records
    assert any(r["beaten"] for r in rows) and len(rows) == 8
    # the committed form: no records.jsonl, the figures drawn from trials.csv
    (out / "records.jsonl").unlink()
    assert sweep_figure_data(out)["trials"] == from_records
    r = CliRunner().invoke(cli, ["figures", "--sweep", str(out), "--out", str(tmp_path / "f")])
    assert r.exit_code == 0, r.output
    for name in ("steps_vs_batch.png", "steps_and_examples.png", "steps_by_target.png",
                 "sensitivity.png"):
        assert (tmp_path / "f" / name).stat().st_size > 10_000, name
    (out / "trials.csv").unlink()
    r = CliRunner().invoke(cli, ["figures", "--sweep", str(out), "--out", str(tmp_path / "g")])
    assert r.exit_code == 0
    assert "no sensitivity figure" in r.stderr
    assert not (tmp_path / "g" / "sensitivity.png").exists()


def test_figures_sweep_on_a_directory_without_summary_is_one_line_exit_2(tmp_path):
    r = CliRunner().invoke(cli, ["figures", "--sweep", str(tmp_path)])
    assert r.exit_code == 2
    assert "holds no summary.json" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_records_carry_the_step_a_trial_diverged(tmp_path):
    cfg = SweepConfig("linreg", "sgd", (16,), n_trials=4, budget=200, lr_range=(0.5, 100.0),
                      max_widen=0)
    recs = run_batch_size(cfg, 16, str(tmp_path / "r.jsonl"))
    assert any(r["diverged"] for r in recs)
    for r in recs:
        if r["diverged"]:
            assert 1 <= r["diverged_at"] <= r["steps_run"]
            assert all(crossing(r, t) is None or crossing(r, t) < r["diverged_at"]
                       for t in (0.02, 1.0, 100.0))
        else:
            assert r["diverged_at"] is None
