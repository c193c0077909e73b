"""`nqm calibrate --path`: the path model through the CLI, and its bad input."""

import json
import shutil

import pytest
from click.testing import CliRunner

from cli import cli

PATH = "figures/measure-path/linreg"
RUNS = "figures/sweeps/linreg-sgd"


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_calibrate_path_writes_the_calibrate_record(tmp_path):
    r = run("calibrate", "--path", PATH, "--runs", RUNS, "--transfer",
            "figures/sweeps/linreg-momentum", "--json", str(tmp_path / "c.json"))
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "c.json").read_text())
    assert [s["label"] for s in rec["path"]["segments"]] == ["init", "step 20", "step 60"]
    assert rec["path"]["segments"][-1]["fraction"] is None
    # the fitted f of the last segment and the loss it leaves
    f = rec["fitted"]
    assert f["nqm_initial_loss"] == pytest.approx(rec["path"]["segments"][-1]["initial_loss"])
    assert f["target_fraction_rule"] == pytest.approx(rec["path"]["last_rule"])
    for b, steps in rec["path"]["segment_steps"].items():
        point = next(p for p in rec["points"] if p["batch_size"] == int(b))
        assert sum(steps) == point["predicted"]
    fit = [p for p in rec["points"] if p["used_in_fit"]]
    assert all(abs(p["predicted"] / p["measured"] - 1) < 0.01 for p in fit)
    assert rec["error"]["null_worst"] is not None and rec["transfer"][0]["optimizer"] == "momentum"
    assert "path model: 3 quadratics chained" in r.stdout


def _copy(tmp_path, edit):
    d = tmp_path / "m"
    shutil.copytree(PATH, d, ignore=shutil.ignore_patterns("checkpoints", "points"))
    rec = json.loads((d / "measure.json").read_text())
    edit(rec)
    (d / "measure.json").write_text(json.dumps(rec))
    return str(d)


def _one_point(rec):
    rec["along_training"] = rec["along_training"][-1:]


def _old_file(rec):
    for p in rec["along_training"]:
        del p["top_s0_here"], p["displacement_here_sq"]


def _no_params(rec):
    del rec["along_training"][0]["n_params"]


def _null_along(rec):
    rec["along_training"] = None


def _target_early(rec):
    along = rec["along_training"]
    along[1]["label"], along[-1]["label"] = "target", "step 174"


@pytest.mark.parametrize("edit, args, needle", [
    (_one_point, [], "needs two or more checkpoints of the reference run, found 1"),
    (_no_params, [], "along_training lists checkpoints (label, step, train_loss, n_params)"),
    (_null_along, [], "along_training lists checkpoints"),
    (_target_early, [], "the run reached the target at step 20, before checkpoint step 279"),
    (_old_file, [], "checkpoint 'init' has no displacement from itself to the reference"),
    (None, ["--runs", "figures/sweeps/mlp-digits-sgd"],
     "measured on workload 'linreg' but figures/sweeps/mlp-digits-sgd/summary.json"),
    (None, ["--spectrum", "figures/measure/linreg/spectrum_target.npz"],
     "give either --spectrum FILE or --path DIR"),
    (None, ["--slow-row"], "--path goes with the expected loss and constant noise only"),
    (None, ["--predict", "first-passage"], "--path goes with the expected loss"),
    (None, ["--proxy", "momentum=nesterov", "--runs", "figures/sweeps/linreg-momentum"],
     "the path model models sgd, momentum, precond and adam stand-ins only, not 'nesterov'"),
])
def test_calibrate_path_bad_input_is_one_line_exit_2(tmp_path, edit, args, needle):
    path = _copy(tmp_path, edit) if edit else PATH
    argv = ["calibrate", "--path", path, *args]
    if "--runs" not in args:
        argv += ["--runs", RUNS]
    r = run(*argv)
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1 and needle in r.stderr, r.stderr


def test_calibrate_path_missing_directory(tmp_path):
    r = run("calibrate", "--path", str(tmp_path / "nope"), "--runs", RUNS)
    assert r.exit_code == 2 and r.stderr.count("\n") == 1
    assert "no readable measure.json" in r.stderr
