"""The noise-scale log reader and the tracked B_simple judged against B_crit (plain JSON)."""

import json

import pytest

from nqm.errors import NQMInputError
from nqm.noise_log import judge_tracked, load_noise_log, tracked_at


def write(path, updates, header=True):
    lines = ([json.dumps({"kind": "config", "ema": 0.9})] if header else []) + \
        [json.dumps({"kind": "update", **u}) for u in updates]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_judge_tracked_at_target_and_at_the_end(tmp_path):
    log = load_noise_log(write(tmp_path / "a.jsonl", [
        {"step": 0, "b_simple": 10.0, "interval": None, "metric": 0.5},
        {"step": 5, "b_simple": 40.0, "interval": [30.0, 50.0], "metric": 0.04},
        {"step": 9, "b_simple": 80.0, "interval": [60.0, 100.0], "metric": 0.01}]))
    crit = {"measured": {"mccandlish": 50.0}, "predicted": {"mccandlish": 100.0},
            "null_model": None}
    t = judge_tracked(log, 0.05, crit)
    assert (t["step"], t["at"], t["b_simple"], t["interval"]) == (5, "target", 40.0, [30, 50])
    assert t["error"] == pytest.approx(1.25)
    assert t["error_others"] == {"predicted": pytest.approx(2.0), "null_model": None}
    assert tracked_at(log, 0.001)[1] == "end of log" and judge_tracked(log, 0.001, crit)[
        "error"] == pytest.approx(1.6)


def test_a_log_without_metric_is_read_at_its_end(tmp_path):
    log = load_noise_log(write(tmp_path / "b.jsonl", [{"step": 3, "b_simple": None},
                                                      {"step": 4, "b_simple": 7.5}]))
    pt, where = tracked_at(log, 0.1)
    assert (pt.step, pt.b_simple, where) == (4, 7.5, "end of log")
    t = judge_tracked(log, 0.1, {"measured": None})
    assert t["error"] is None and t["measured_mccandlish"] is None


def test_a_torn_first_line_is_an_error_not_a_note(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text('{"kind": "conf')
    with pytest.raises(NQMInputError, match="line 1 is not JSON"):
        load_noise_log(p)
    p.write_bytes(b"\xff\xfe")
    with pytest.raises(NQMInputError, match="not UTF-8"):
        load_noise_log(p)
