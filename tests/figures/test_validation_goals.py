"""figures.validation_goals: the aggregate goals of a validation summary."""

import json
import math
from pathlib import Path

import pytest

from figures.validation_goals import filled, goals, row

ROOT = Path(__file__).resolve().parents[2]


def _row(w, o, nqm, null, closer, bound=False, one=1.5, zero=3.0, transfer=None):
    return {"workload": w, "optimizer": o, "nqm_worst": nqm, "null_worst": null,
            "closer": closer, "at_bound": bound, "bcrit_ratio_one_run": one,
            "zero_run_worst": zero, "transfer": transfer or {}}


def test_goals_of_a_small_summary():
    g = goals([_row("a", "sgd", 1.2, 1.3, "nqm", transfer={"momentum": 2.0, "adam": 4.0}),
               _row("a", "momentum", 9.0, 1.4, "null", bound=True, one=2.5, zero=None),
               _row("b", "sgd", 1.5, 1.5, "tie", one=None, zero=5.0,
                    transfer={"adam": 3.0})])
    assert g["closer"] == 1 and g["sweeps"] == 3
    assert g["median_worst"] == 1.5 and g["median_null"] == 1.4
    assert g["largest"] == (9.0, "a momentum") and g["at_bound"] == ["a momentum"]
    assert g["one_run_within_2x"] == 1 and g["transfer_median"] == 3.0
    assert g["zero_run_median"] == 4.0
    assert row("r", g).startswith("| r | 1 of 3 | 1.50 (1.40) | 9.00 (a momentum) |")


def test_goals_of_the_reference_validation_match_its_report():
    g = goals(json.loads((ROOT / "figures/validation/summary.json").read_text()))
    assert (g["closer"], g["one_run_within_2x"]) == (12, 7)
    assert g["largest"][0] == pytest.approx(16.39, abs=0.005)
    assert g["largest"][1] == "charlm momentum"
    assert g["median_worst"] == pytest.approx(1.49, abs=0.005)


def test_loss_matched_validation_matches_its_report():
    g = goals(json.loads((ROOT / "figures/validation/loss-matched/summary.json").read_text()))
    assert (g["closer"], g["one_run_within_2x"]) == (12, 9)
    assert g["zero_run_median"] == pytest.approx(5.30, abs=0.005)
    assert g["median_worst"] == pytest.approx(1.49, abs=0.005)      # the ends fits are unchanged


def test_each_sweep_against_its_best_measurement_matches_its_report():
    """docs/validation.md item 13: the mean of four seeds where swept, charlm's reference."""
    def load(d):
        return json.loads((ROOT / f"figures/validation/{d}/summary.json").read_text())
    g = goals(filled(load("seed-mean-slow-row"), load("slow-row")))
    assert (g["sweeps"], g["closer"]) == (15, 12)
    assert g["median_worst"] == pytest.approx(1.24, abs=0.005)
    assert g["median_null"] == pytest.approx(1.25, abs=0.005)


def test_first_passage_against_the_mean_of_seeds_matches_its_report():
    """docs/validation.md item 13: no held-out bias left, median 1.26x against the null's 1.31x."""
    from figures.validation_goals import held_out_bias

    folder = ROOT / "figures/validation/seed-mean-first-passage"
    rows = json.loads((folder / "summary.json").read_text())
    g = goals(rows)
    assert (g["sweeps"], g["closer"]) == (12, 6)
    assert (g["median_worst"], g["median_null"]) == pytest.approx((1.26, 1.31), abs=0.005)
    b = held_out_bias([folder], rows)
    assert b["points"] == 48 and b["nqm"] == pytest.approx(1.0, abs=0.005)


def test_main_keeps_only_the_workloads_asked_for(tmp_path, capsys):
    from figures.validation_goals import main

    path = tmp_path / "summary.json"
    path.write_text(json.dumps([_row("a", "sgd", 1.2, 1.3, "nqm"),
                                _row("b", "sgd", 9.0, 1.4, "null")]))
    main([str(path), "--workloads", "a"])
    assert "| 1 of 1 | 1.20 (1.30) | 1.20 (a sgd) |" in capsys.readouterr().out


def test_filled_adds_only_the_pairs_missing():
    rows = [_row("a", "sgd", 1.2, 1.3, "nqm")]
    other = [_row("a", "sgd", 9.0, 9.0, "null"), _row("b", "adam", 1.1, 1.2, "nqm")]
    out = filled(rows, other)
    assert [(r["workload"], r["optimizer"], r["nqm_worst"]) for r in out] == \
        [("a", "sgd", 1.2), ("b", "adam", 1.1)]


def test_main_fills_from_another_summary(tmp_path, capsys):
    from figures.validation_goals import main

    (tmp_path / "m").mkdir()
    (tmp_path / "r").mkdir()
    (tmp_path / "m/summary.json").write_text(json.dumps([_row("a", "sgd", 1.2, 1.3, "nqm")]))
    (tmp_path / "r/summary.json").write_text(json.dumps([_row("a", "sgd", 9.0, 9.0, "null"),
                                                         _row("b", "sgd", 1.6, 1.4, "null")]))
    main([str(tmp_path / "m/summary.json"), "--fill-from", str(tmp_path / "r/summary.json")])
    out = capsys.readouterr().out
    assert "| 1 of 2 | 1.40 (1.35) | 1.60 (b sgd) |" in out and " + " in out


def test_held_out_bias_is_the_geometric_mean_over_held_out_points(tmp_path):
    from figures.validation_goals import bias_line, held_out_bias

    def point(b, meas, pred, null, fit=False):
        return {"batch_size": b, "measured": meas, "predicted": pred, "null_model": null,
                "used_in_fit": fit}
    ends = {"points": [point(1, 100, 100, 100, fit=True), point(4, 50, 100, 50),
                       point(16, 40, 10, 80), point(64, None, 5, 5)]}
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (second / "a-sgd.json").write_text(json.dumps({"ends": ends}))
    (first / "a-sgd.json").write_text(json.dumps({"ends": {"points": [point(4, 10, 20, 20)]}}))
    b = held_out_bias([second, first], [_row("a", "sgd", 1, 1, "nqm")])
    assert b["points"] == 2
    assert b["nqm"] == pytest.approx(math.sqrt(2.0 * 0.25))
    assert b["null"] == pytest.approx(math.sqrt(1.0 * 2.0))
    assert held_out_bias([first, second], [_row("a", "sgd", 1, 1, "nqm")])["nqm"] == 2.0
    none = held_out_bias([first], [_row("b", "sgd", 1, 1, "nqm")])
    assert (none["points"], none["no_record"], none["nqm"]) == (0, 1, None)
    assert bias_line(none).endswith("NQM -, null - (1 sweeps without a record)")
    ends["points"].append(point(256, 10, 20, None))
    (second / "a-sgd.json").write_text(json.dumps({"ends": ends}))
    b = held_out_bias([second], [_row("a", "sgd", 1, 1, "nqm")])
    assert (b["points"], b["skipped"]) == (2, 2)


def test_transfer_table_has_a_row_per_transfer_and_a_column_per_summary():
    from figures.validation_goals import transfer_table

    a = [_row("w", "sgd", 1, 1, "nqm", transfer={"momentum": 2.0, "adam": 1.5}),
         _row("w", "momentum", 1, 1, "nqm")]
    b = [_row("w", "sgd", 1, 1, "nqm", transfer={"adam": None})]
    lines = transfer_table(["A", "B"], [a, b]).splitlines()
    assert lines[0] == "| workload | SGD's fit transferred to | A | B |"
    assert lines[2:] == ["| w | adam | 1.50 | - |", "| w | momentum | 2.00 | - |",
                         "| median | | 1.75 | - |"]


def test_the_reference_transfer_table_matches_the_report():
    from figures.validation_goals import transfer_table

    rows = json.loads((ROOT / "figures/validation/summary.json").read_text())
    assert "| charlm | momentum | 4.65 |" in transfer_table(["r"], [rows])
