"""`nqm calibrate --noise loss-following` through the CLI."""

import json

import pytest
from click.testing import CliRunner

from cli import cli

SPEC = "figures/measure/mlp-digits/spectrum_target.npz"


def run(*args):
    return CliRunner().invoke(cli, list(args))


def _two_point_sweep(tmp_path):
    """The mlp-digits SGD sweep's two largest batch sizes (cheap to tune)."""
    (tmp_path / "summary.json").write_text(json.dumps(
        {"workload": "mlp-digits", "optimizer": "sgd", "target": 0.025,
         "points": [{"batch_size": 256, "steps": 72}, {"batch_size": 1024, "steps": 69}]}))
    return str(tmp_path)


def test_loss_following_prediction_reports_its_noise_line(tmp_path):
    runs = _two_point_sweep(tmp_path)
    r = run("calibrate", "--spectrum", SPEC, "--runs", runs, "--fit-on", "none",
            "--noise", "loss-following", "--json", str(tmp_path / "c.json"))
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "c.json").read_text())
    noise = rec["noise"]
    assert noise["model"] == "loss-following" and noise["n_points"] == 4
    assert noise["slope"] < 0                    # mlp-digits' noise grows as the loss falls
    assert "noise follows the loss: trace_sigma" in r.stdout
    const = run("calibrate", "--spectrum", SPEC, "--runs", runs, "--fit-on", "none",
                "--json", str(tmp_path / "k.json"))
    assert const.exit_code == 0 and "noise follows" not in const.stdout
    assert "noise" not in json.loads((tmp_path / "k.json").read_text())


@pytest.mark.parametrize("checkpoints, needle", [
    ([{"step": 0, "train_loss": 2.3, "trace_sigma": 7.4}], "two or more checkpoints"),
    ([{"step": 0, "train_loss": 2.3, "trace_sigma": 7.4},
      {"step": 9, "train_loss": 1.0, "trace_sigma": -1.0}], "two or more checkpoints"),
    ("broken", "cannot read checkpoints"),
])
def test_bad_checkpoints_are_one_line_exit_2(tmp_path, checkpoints, needle):
    path = tmp_path / "measure.json"
    path.write_text(json.dumps({"along_training": checkpoints}) if checkpoints != "broken"
                    else "{")
    r = run("calibrate", "--spectrum", SPEC, "--runs", _two_point_sweep(tmp_path),
            "--noise", "loss-following", "--checkpoints", str(path))
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1 and needle in r.stderr, r.stderr
    assert "Traceback" not in r.output
