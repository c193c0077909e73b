"""figures.validation_goals: the aggregate goals of a validation summary."""

import json
from pathlib import Path

import pytest

from figures.validation_goals import goals, row

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


def test_main_keeps_only_the_workloads_asked_for(tmp_path, capsys):
    from figures.validation_goals import main

    path = tmp_path / "summary.json"
    path.write_text(json.dumps([_row("a", "sgd", 1.2, 1.3, "nqm"),
                                _row("b", "sgd", 9.0, 1.4, "null")]))
    main([str(path), "--workloads", "a"])
    assert "| 1 of 1 | 1.20 (1.30) | 1.20 (a sgd) |" in capsys.readouterr().out
