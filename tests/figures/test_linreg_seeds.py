"""figures.linreg_seeds: the linreg predictions judged against each seed and their mean."""

import json
from pathlib import Path

import pytest

from figures.linreg_seeds import judge, load_measurements, seeds_record

ROOT = Path(__file__).resolve().parents[2]


def _points(steps, lr=0.1, momentum=None):
    return [{"batch_size": b, "steps": s, "lr": lr, "momentum": momentum}
            for b, s in zip((1, 4, 16, 64), steps)]


def _record(pred_steps):
    rows = [{"batch_size": b, "fp": s, "fp_lr_effective": 0.2}
            for b, s in zip((1, 4, 16, 64), pred_steps)]
    return {"optimizers": {"momentum": {"rows": rows, "b_crit": {"fp": None}}}}


def test_judge_worst_within_and_lr():
    meas = {"momentum": _points([1000, 300, 100, 50], lr=0.1, momentum=0.5)}
    out = judge(_record([1000, 600, 110, 40]), meas, "fp", 1.25)
    assert out["worst"] == pytest.approx(2.0)
    assert out["within_goal"] == 3 and out["points"] == 4       # 1.0, 2.0, 1.1, 1.25
    assert out["lr_ratio_range"] == [pytest.approx(1.0), pytest.approx(1.0)]   # 0.2 / (0.1/0.5)
    assert out["b_crit_ratio"] == {"momentum": None}


def test_committed_seeds_record_is_reproduced():
    """seeds.json is what the committed record and sweeps give; the first-passage model is
    within 1.25x of the mean of four seeds at all 12 points."""
    base = ROOT / "figures" / "validation" / "linreg"
    rec = seeds_record(json.loads((base / "validation.json").read_text()),
                       load_measurements(ROOT / "figures" / "sweeps-seeds",
                                         ROOT / "figures" / "sweeps"))
    assert rec == json.loads((base / "seeds.json").read_text())
    assert rec["kinds"]["fp"]["mean"]["within_goal"] == 12
    assert rec["kinds"]["fp"]["s0"]["within_goal"] == 9
