"""A tracked noise-scale log through the CLI: `nqm figures --noise-log` and
`nqm calibrate --noise-log`, and malformed logs (one line, exit 2)."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli import cli
from empirical.track import NoiseScaleTracker, TrackerConfig

SPEC = "figures/measure/mlp-digits/spectrum_target.npz"
RUNS = "figures/sweeps/mlp-digits-sgd"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    """A log of 60 updates whose metric falls from 0.5 by 0.01 per update (step 10 k):
    it reaches mlp-digits' sweep target 0.025 at update 48 (step 480)."""
    path = tmp_path_factory.mktemp("track") / "noise.jsonl"
    rng = np.random.default_rng(0)
    with NoiseScaleTracker(log=path, config=TrackerConfig(ema=0.9)) as tr:
        for k in range(60):
            gs = torch.from_numpy(0.1 + rng.standard_normal(20) / np.sqrt(8))
            gb = torch.from_numpy(0.1 + rng.standard_normal(20) / np.sqrt(64))
            tr.update(10 * k, gs, gb, 8, 64, loss=2.0 / (k + 1), metric=0.5 - 0.01 * k)
    return path


def test_figures_plots_the_log(log, tmp_path):
    r = run("figures", "--noise-log", log, "--out", tmp_path)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "noise_scale_tracked.png").stat().st_size > 1000
    assert "60 updates" in r.output and "590" in r.output          # the last step is listed
    assert not (tmp_path / "sgd.json").exists()                    # nothing was tuned


@pytest.mark.slow
def test_calibrate_reports_the_tracked_value(log, tmp_path):
    """The tracked line is printed in the critical batch size block and written to the JSON;
    without it the printed text is what it was (the same record less the key)."""
    from figures.calibrate_report import calibrate_lines

    out = tmp_path / "c.json"
    r = run("calibrate", "--spectrum", SPEC, "--runs", RUNS, "--noise-log", log, "--json", out)
    assert r.exit_code == 0, r.output
    rec = json.loads(out.read_text())
    t = rec["tracked_b_simple"]
    assert t["at"] == "target" and t["step"] == 480 and t["metric"] <= rec["target"]
    measured = rec["critical_batch_size"]["measured"]["mccandlish"]
    assert t["measured_mccandlish"] == measured
    assert t["error"] == pytest.approx(max(t["b_simple"] / measured, measured / t["b_simple"]))
    assert "tracked B_simple" in r.output and "first metric <= target" in r.output
    without = calibrate_lines({k: v for k, v in rec.items() if k != "tracked_b_simple"})
    assert [s for s in r.output.splitlines() if "tracked B_simple" not in s] == without


@pytest.mark.parametrize("content, needle", [
    ("not json\n", "line 1 is not JSON"),
    ('{"kind": "update", "step": 0, "b_simple": 1}\n', "before any config"),
    ('{"kind": "config"}\n', "holds no noise-scale updates"),
    ('{"kind": "config"}\n{"kind": "update", "step": -1}\n', "'step' must be"),
    ('{"kind": "config"}\n{"kind": "update", "step": 1, "b_simple": "x"}\n', "'b_simple'"),
    ('{"kind": "config"}\n{"kind": "update", "step": 1, "interval": [1]}\n', "'interval'"),
    ('[1, 2]\n', "not a noise-scale log record"),
])
@pytest.mark.parametrize("command", ["figures", "calibrate"])
def test_malformed_log_is_one_line_exit_2(tmp_path, content, needle, command):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    args = (["figures", "--out", tmp_path] if command == "figures" else
            ["calibrate", "--spectrum", SPEC, "--runs", RUNS])
    r = run(*args, "--noise-log", bad)
    assert r.exit_code == 2 and needle in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output


def test_missing_log_is_one_line_exit_2(tmp_path):
    r = run("figures", "--noise-log", tmp_path / "none.jsonl", "--out", tmp_path)
    assert r.exit_code == 2 and "none.jsonl" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_noise_log_and_sweep_together_are_refused(log, tmp_path):
    r = run("figures", "--noise-log", log, "--sweep", "figures/shallue/mlp-digits-sgd",
            "--out", tmp_path)
    assert r.exit_code == 2 and "not both" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "noise_scale_tracked.png").exists()
