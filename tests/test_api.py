"""The Python API example (examples/api_tour.py, printed in the documentation) runs end to end
and returns the records the commands write."""

import json
import sys
from pathlib import Path

import pytest

from empirical import api
from tests.helpers import BLOBS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_api_tour_runs(tmp_path):
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from api_tour import main
    finally:
        sys.path.remove(str(ROOT / "examples"))
    workload = tmp_path / "blobs.py"
    workload.write_text(BLOBS)
    summary, measured, predicted, calibrated = main(tmp_path / "out", str(workload),
                                                    batch_sizes=(2, 8, 32), trials=4, top_k=3)
    assert summary == json.loads((tmp_path / "out/sweep/summary.json").read_text())
    assert [p["batch_size"] for p in summary["points"]] == [2, 8, 32]
    assert all(p["reached"] for p in summary["points"])
    assert measured["label"] == "target" and measured["b_simple"] > 0
    assert len(predicted["points"]) == 3
    assert calibrated["workload"] == str(workload)
    assert calibrated["error"]["null_worst"] >= 1


def test_api_sweep_takes_several_targets(tmp_path):
    summary = api.sweep("logreg-digits", tmp_path, optimizer="sgd", batch_sizes=(64,),
                        trials=2, budget=100, targets=(0.2, 0.5), device="cpu", threads=1)
    assert [g["target"] for g in summary["by_target"]] == [0.2, 0.5]
    assert (tmp_path / "trials.csv").exists()


def test_api_sweep_refuses_a_bad_epoch_budget(tmp_path):
    with pytest.raises(ValueError, match="epoch"):
        api.sweep("logreg-digits", tmp_path, batch_sizes=(64,), trials=2, epoch_budget=0,
                  device="cpu")
