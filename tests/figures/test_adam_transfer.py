"""`figures.adam_transfer` on the committed validation records: the figure, and errors equal to
the ones the validation summaries hold."""

import json
from pathlib import Path

import pytest

from figures.adam_transfer import main

ROOT = Path(__file__).resolve().parents[2] / "figures" / "validation"


def test_figure_and_errors_match_the_summaries(tmp_path, capsys):
    main(["--out", str(tmp_path / "t")])
    for suffix in (".png", ".pdf", ".json"):
        assert (tmp_path / f"t{suffix}").stat().st_size > 0
    errors = json.loads((tmp_path / "t.json").read_text())
    for name, key in (("summary.json", "precond_0.25"),
                      ("adam-mean-field/summary.json", "mean_field")):
        rows = json.loads((ROOT / name).read_text())
        for r in rows:
            if r["optimizer"] == "sgd":
                assert errors[r["workload"]][key] == r["transfer"]["adam"]
    assert "mean-field Adam" in capsys.readouterr().out


def test_a_run_without_records_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--mean-field", str(tmp_path)])
    assert e.value.code == 2
    assert "no W-sgd.json records" in capsys.readouterr().err
