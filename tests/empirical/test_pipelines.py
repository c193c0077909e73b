"""The `sweep` and `measure` pipelines called directly (no CLI)."""

import json

import pytest

from empirical.executor import LocalExecutor
from empirical.measure import MeasureConfig
from empirical.measure_run import MeasureRunConfig, run_measure
from empirical.sweep import sweep, sweep_config

SWEEP = {"workload": "linreg", "optimizer": "sgd", "batch_sizes": (16, 64), "n_trials": 2,
         "budget": 30, "seed": 0}


def test_sweep_writes_its_summary_and_resumes(tmp_path):
    ticks, heard = [], []
    cfg = sweep_config(**SWEEP)
    first = sweep(cfg, tmp_path, LocalExecutor(1), ticks.append, heard.append, threads=1)
    assert ticks == [0, 1, 1] and heard == []
    assert json.loads((tmp_path / "summary.json").read_text()) == \
        json.loads(json.dumps(first))
    rows = (tmp_path / "summary.csv").read_text().splitlines()
    assert rows[0].startswith("batch_size,steps,reached") and len(rows) == 3
    n_records = len((tmp_path / "records.jsonl").read_text().splitlines())
    again = sweep(cfg, tmp_path, LocalExecutor(1), threads=1)            # resumed: no training
    assert len((tmp_path / "records.jsonl").read_text().splitlines()) == n_records
    first.pop("versions"), again.pop("versions")
    assert again == first


def test_sweep_refuses_other_options_in_the_same_directory(tmp_path):
    sweep(sweep_config(**{**SWEEP, "batch_sizes": (16,)}), tmp_path, LocalExecutor(1), threads=1)
    with pytest.raises(ValueError, match="n_trials"):
        sweep(sweep_config(**{**SWEEP, "batch_sizes": (16,), "n_trials": 3}), tmp_path,
              LocalExecutor(1), threads=1)


@pytest.mark.parametrize("kw, needle", [({"workload": "nope"}, "nope"),
                                        ({"target": -1.0}, "target")])
def test_sweep_config_names_the_bad_option(kw, needle):
    with pytest.raises(ValueError, match=needle):
        sweep_config(**{**SWEEP, **kw})


SMALL_MEASURE = MeasureConfig(top_k=2, bootstrap=10, slq_steps=4, hessian_examples=16)


@pytest.mark.slow
def test_run_measure_writes_its_record_and_resumes(tmp_path, monkeypatch):
    cfg = MeasureRunConfig("linreg", SMALL_MEASURE, at_steps=(0, 20), threads=1)
    ticks, notes = [], []
    rec = run_measure(cfg, tmp_path, ticks.append, notes.append)
    assert ticks == [0, 1, 1] and notes
    assert [a["step"] for a in rec["along_training"]] == [0, 20]
    assert json.loads((tmp_path / "measure.json").read_text()) == json.loads(json.dumps(rec))
    assert (tmp_path / "spectrum.npz").exists() and (tmp_path / "measure.csv").exists()

    def boom(*a, **k):
        raise AssertionError("a finished checkpoint was measured again")

    monkeypatch.setattr("empirical.measure.measure", boom)
    again = run_measure(cfg, tmp_path)
    assert again["along_training"] == json.loads(json.dumps(rec["along_training"]))


def test_measure_run_config_plan_and_errors():
    assert MeasureRunConfig("linreg").plan == ([0], True)
    assert MeasureRunConfig("linreg", at_steps=(5, 0)).plan == ([5, 0], False)
    assert MeasureRunConfig("linreg", at_steps=(0, 5), at_target=True).n_points == 3
    assert MeasureRunConfig("linreg", checkpoint="x.pt").n_points == 1
    for kw, needle in (({"checkpoint": "x.pt", "at_steps": (0,)}, "not both"),
                       ({"lr": -1.0}, "--lr"), ({"target": float("nan")}, "target"),
                       ({"at_steps": (-1,)}, "--at-step")):
        with pytest.raises(ValueError, match=needle):
            MeasureRunConfig("linreg", **kw)
