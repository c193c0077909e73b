"""The committed several-target sweeps: their table, their trials.csv against their summary,
and `nqm figures --sweep` drawing every figure from a directory without records."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from empirical.targets import read_trials, target_key

ROOT = Path(__file__).resolve().parents[2]
SHALLUE = ROOT / "figures" / "shallue"


def test_targets_table_prints_every_target_of_every_committed_sweep(capsys):
    from figures import targets_table

    targets_table.main()
    out = capsys.readouterr().out
    for f in SHALLUE.glob("*/summary.json"):
        s = json.loads(f.read_text())
        if "by_target" in s:        # the fixed-budget sweeps beside them have no targets
            assert out.count(f"| {s['workload']} | {s['optimizer']} |") >= len(s["targets"])


def test_committed_trials_give_the_committed_steps_per_target():
    dirs = sorted(d for d in SHALLUE.iterdir() if (d / "trials.csv").exists())
    assert len(dirs) >= 4
    for d in dirs:
        summary = json.loads((d / "summary.json").read_text())
        targets, rows = read_trials(d / "trials.csv")
        assert targets == summary["targets"]
        for group in summary["by_target"]:
            key = target_key(group["target"])
            for p in group["points"]:
                hits = [r["crossings"][key] for r in rows
                        if r["batch_size"] == p["batch_size"] and r["crossings"][key] is not None]
                assert p["steps"] == min(hits, default=None), (d.name, key, p["batch_size"])


@pytest.mark.slow
def test_figures_sweep_draws_from_trials_csv_alone(tmp_path):
    src = SHALLUE / "mlp-digits-sgd"
    for name in ("summary.json", "trials.csv"):
        shutil.copy(src / name, tmp_path / name)
    r = CliRunner().invoke(cli, ["figures", "--sweep", str(tmp_path), "--out",
                                 str(tmp_path / "f")])
    assert r.exit_code == 0, r.output
    for name in ("steps_vs_batch.png", "steps_and_examples.png", "steps_by_target.png",
                 "sensitivity.png"):
        assert (tmp_path / "f" / name).stat().st_size > 10_000, name
