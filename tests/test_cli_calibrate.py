"""`nqm calibrate` and `nqm demo` through the CLI."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli

SPEC = "figures/measure/mlp-digits/spectrum_target.npz"
RUNS = "figures/sweeps/mlp-digits-sgd"


def run(*args):
    return CliRunner().invoke(cli, list(args))


def run_json(tmp_path, *args):
    """`nqm calibrate ARGS --json`: the result (exit code 0 asserted) and its record."""
    r = run("calibrate", *args, "--json", str(tmp_path / "c.json"))
    assert r.exit_code == 0, r.output
    return r, json.loads((tmp_path / "c.json").read_text())


def test_calibrate_writes_json_csv_and_figures(tmp_path):
    r = run("calibrate", "--spectrum", SPEC, "--runs", RUNS, "--transfer",
            "figures/sweeps/mlp-digits-adam", "--json", str(tmp_path / "c.json"), "--csv",
            str(tmp_path / "c.csv"), "--plot", str(tmp_path / "c.png"))
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "c.json").read_text())
    assert rec["fit_on"] == [1, 1024] and rec["closer"] in ("nqm", "null", "tie")
    assert {"target_fraction", "target_fraction_rule", "noise_scale", "at_bound"} <= \
        set(rec["fitted"])
    for p in rec["points"]:
        assert {"batch_size", "measured", "predicted", "null_model", "used_in_fit",
                "lr_measured", "lr_predicted"} <= set(p)
    assert set(rec["critical_batch_size"]) == {"measured", "predicted", "null_model"}
    assert rec["transfer"][0]["optimizer"] == "adam"
    assert "closer on the held-out batch sizes" in r.stdout
    assert (tmp_path / "c.pdf").exists() and (tmp_path / "c.png").exists()
    rows = (tmp_path / "c.csv").read_text().splitlines()
    assert len(rows) == 1 + len(rec["points"]) + len(rec["transfer"][0]["points"])


@pytest.mark.parametrize("args, needle", [
    (["--runs", "figures/sweeps/linreg-sgd"],
     "measured on workload 'mlp-digits' but figures/sweeps/linreg-sgd/summary.json is a sweep "
     "of 'linreg'"),
    (["--runs", RUNS, "--transfer", "figures/sweeps/linreg-adam"], "a sweep of 'linreg'"),
    (["--runs", "nope"], "no sweep summary at nope (run `nqm sweep --out DIR` first)"),
    (["--runs", RUNS, "--fit-on", "3"], "has no batch size 3 (it has 1, 4, 16, 64, 256, 1024)"),
    (["--runs", RUNS, "--fit-on", "x,y"], "bad --fit-on 'x,y'"),
    (["--runs", RUNS, "--proxy", "adam=newton"], "bad --proxy 'adam=newton'"),
    (["--runs", RUNS, "--fit-on", "4,4"], "fit_on names batch size 4 twice"),
    (["--runs", RUNS, "--transfer", RUNS], "is of optimizer 'sgd', as is"),
    (["--runs", RUNS, "--transfer", "figures/sweeps/mlp-digits-adam", "--transfer",
      "figures/sweeps-seeds/s1/mlp-digits-adam"], "is of optimizer 'adam', as is"),
    (["--runs", RUNS, "--json", "no/such/dir/c.json"], "--json: directory no/such/dir does "
                                                       "not exist"),
    (["--runs", RUNS, "--plot", "no/such/dir/c.png"], "--plot: directory no/such/dir"),
])
def test_calibrate_bad_input_is_one_line_exit_2(args, needle):
    r = run("calibrate", "--spectrum", SPEC, *args)
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1 and needle in r.stderr, r.stderr


@pytest.mark.parametrize("args, needle", [
    (["--slow-row", "--slow-row-factor", "0"], "--slow-row-factor must be > 0 and goes with "
                                              "--slow-row, got 0.0"),
    (["--slow-row-factor", "10"], "got 10.0 without --slow-row"),
    (["--slow-row-factor", "1"], "got 1.0 without --slow-row"),
    (["--checkpoints", "figures/measure/mlp-digits/measure.json"],
     "--checkpoints goes with --noise loss-following"),
    (["--noise", "loss-following", "--predict", "first-passage"],
     "--noise loss-following goes with --predict expected only"),
    (["--predict", "first-passage", "--transfer", "figures/sweeps/mlp-digits-momentum",
      "--proxy", "momentum=nesterov"],
     "first-passage models sgd, momentum and precond stand-ins only, not 'nesterov'"),
])
def test_calibrate_bad_slow_row_options_are_one_line_exit_2(args, needle):
    r = run("calibrate", "--spectrum", SPEC, "--runs", RUNS, *args)
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1 and needle in r.stderr, r.stderr


def test_calibrate_refuses_a_transfer_sweep_of_another_target(tmp_path):
    data = json.loads(Path("figures/sweeps/mlp-digits-adam/summary.json").read_text())
    (tmp_path / "adam").mkdir()
    (tmp_path / "adam/summary.json").write_text(json.dumps({**data, "target": 0.1}))
    r = run("calibrate", "--spectrum", SPEC, "--runs", RUNS, "--transfer", str(tmp_path / "adam"))
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1 and "has target 0.1, not the fitted sweep's 0.025" \
        in r.stderr, r.stderr


def test_calibrate_slow_row_needs_a_measured_spectrum(tmp_path):
    from nqm.spectrum import Spectrum

    Spectrum(h=[1.0], c=[1.0], s0=[1.0], count=[1.0],
             meta={"workload": "mlp-digits"}).save(tmp_path / "s.npz")
    r = run("calibrate", "--spectrum", str(tmp_path / "s.npz"), "--runs", RUNS, "--slow-row")
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1 and "metadata lack h_floor, dropped_directions" in r.stderr


@pytest.mark.slow
def test_calibrate_slow_row_fits_the_spectrum_with_the_dropped_directions(tmp_path):
    import numpy as np

    from nqm.spectrum import load

    base = load(SPEC)
    r = run("calibrate", "--spectrum", SPEC, "--runs", RUNS, "--slow-row", "--slow-row-factor",
            "10", "--json", str(tmp_path / "c.json"))
    assert r.exit_code == 0, r.output
    sp = json.loads((tmp_path / "c.json").read_text())["spectrum"]
    assert sp["rows"] == base.n_rows + 1
    assert sp["slow_row_count"] == pytest.approx(base.meta["dropped_directions"])
    assert sp["slow_row_h"] == pytest.approx(10 * base.meta["h_floor"])
    assert sp["dimension"] == pytest.approx(base.dimension + base.meta["dropped_directions"])
    held = float(np.sum(base.count * base.s0)) + sp["slow_row_count"] * sp["slow_row_s0"]
    assert held == pytest.approx(sp["slow_row_displacement_sq"])


def test_calibrate_refuses_a_sweep_with_one_reached_point(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps(
        {"workload": "mlp-digits", "optimizer": "sgd", "target": 0.025,
         "points": [{"batch_size": 4, "steps": 700}, {"batch_size": 16, "steps": None}]}))
    r = run("calibrate", "--spectrum", SPEC, "--runs", str(tmp_path))
    assert r.exit_code == 2 and "1 batch size(s) that reached the target" in r.stderr


def test_predict_without_target_uses_the_measurement_rule(tmp_path):
    import numpy as np

    from nqm.spectrum import Spectrum

    h = 1.0 / np.arange(1, 41)
    Spectrum(h=h, c=h.copy(), s0=np.ones(40), count=np.ones(40),
             meta={"workload": "w", "target_fraction": 0.05}).save(tmp_path / "s.npz")
    r = run("predict", "--spectrum", str(tmp_path / "s.npz"), "--batch-sizes", "1,64",
            "--quiet", "--json", str(tmp_path / "p.json"))
    assert r.exit_code == 0, r.output
    l0 = 0.5 * h.sum()
    assert json.loads((tmp_path / "p.json").read_text())["target"] == pytest.approx(0.05 * l0)
    assert "from the measurement's train-loss rule: f = 0.05" in r.stderr


def test_predict_loss_matched_noise_is_the_predict_of_the_scaled_spectrum(tmp_path):
    """--noise-scale loss-matched predicts exactly what the spectrum with c times
    rho = L0 / (l_0 - l_floor) predicts; without train_loss_init it is refused in one line."""
    import numpy as np

    from nqm.spectrum import Spectrum

    h = 1.0 / np.arange(1, 41)
    meta = {"workload": "w", "target_fraction": 0.05, "train_loss_init": 2.3,
            "loss_floor": 0.3}
    Spectrum(h=h, c=h.copy(), s0=np.ones(40), count=np.ones(40), meta=meta).save(
        tmp_path / "s.npz")
    rho = 0.5 * h.sum() / 2.0
    Spectrum(h=h, c=rho * h, s0=np.ones(40), count=np.ones(40), meta=meta).save(
        tmp_path / "scaled.npz")
    got, want = (run("predict", "--spectrum", str(tmp_path / name), "--batch-sizes", "1,64",
                     "--quiet", "--json", str(tmp_path / f"{name}.json"), *extra)
                 for name, extra in (("s.npz", ["--noise-scale", "loss-matched"]),
                                     ("scaled.npz", [])))
    assert got.exit_code == 0 and want.exit_code == 0, got.output
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("s.npz", "scaled.npz"))
    assert [p["steps"] for p in a["points"]] == [p["steps"] for p in b["points"]]
    assert a["spectrum"]["noise_scale_kappa0"] == pytest.approx(rho, rel=1e-12)
    assert f"rho = L0 / (l_0 - l_floor) = {rho:.4g}" in got.stderr
    Spectrum(h=h, c=h.copy(), s0=np.ones(40), count=np.ones(40),
             meta={"workload": "w"}).save(tmp_path / "bare.npz")
    r = run("predict", "--spectrum", str(tmp_path / "bare.npz"), "--noise-scale",
            "loss-matched")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "train_loss_init" in r.stderr
    r = run("predict", "--spectrum", str(tmp_path / "s.npz"), "--noise-scale", "loss-matched",
            "--noise", "loss-following", "--label-noise", "0.5")
    assert r.exit_code == 2 and "--noise loss-following ignores" in r.stderr


@pytest.mark.slow
def test_demo_runs_end_to_end_on_a_tiny_budget(tmp_path):
    r = run("demo", "--out", str(tmp_path), "--batch-sizes", "4,64,1024", "--trials", "4",
            "--target", "0.05", "--quiet")
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "calibration.json").read_text())
    assert rec["workload"] == "linreg" and rec["fit_on"] == [4, 1024]
    assert rec["transfer"][0]["optimizer"] == "momentum"
    assert "B_crit (mccandlish) measured" in r.stdout
    for name in ("calibration.png", "calibration.pdf", "examples.png",
                 "sweep-sgd/summary.json", "sweep-momentum/summary.json",
                 "measure/spectrum.npz"):
        assert (tmp_path / name).exists(), name


def test_calibrate_mean_field_adam_proxy(tmp_path):
    r, rec = run_json(tmp_path, "--spectrum", "figures/measure/linreg/spectrum_target.npz",
                      "--runs", "figures/sweeps/linreg-sgd", "--transfer",
                      "figures/sweeps/linreg-adam", "--proxy", "adam=adam")
    (t,) = rec["transfer"]
    assert t["nqm_optimizer"] == {"kind": "adam", "precond": 0.0}
    assert all(p["predicted"] is not None and p["error_nqm"] < 2.0 for p in t["points"])
    assert all(0.0 <= p["momentum_predicted"] < 1.0 for p in t["points"])
    assert "transfer to adam (NQM: mean-field Adam, nqm.adam; no refit)" in r.stdout


def test_calibrate_first_passage_option(tmp_path):
    r, rec = run_json(tmp_path, "--spectrum", "figures/measure/linreg/spectrum_target.npz",
                      "--runs", "figures/sweeps/linreg-sgd", "--predict", "first-passage",
                      "--quantile", "0.25")
    assert rec["prediction"] == {"predict": "first-passage", "quantile": 0.25, "trials": 64}
    assert "best of 64 trials' first evaluated crossing (quantile 0.25" in r.stdout
    assert all(p["predicted"] is not None for p in rec["points"])


@pytest.mark.parametrize("args, needle", [
    (["--predict", "median"], "Invalid value for '--predict'"),
    (["--predict", "first-passage", "--quantile", "2"], "quantile must be in (0, 1), got 2"),
    (["--quantile", "0.2"], "--quantile needs --predict first-passage"),
])
def test_calibrate_first_passage_bad_input(args, needle):
    r = run("calibrate", "--spectrum", "figures/measure/linreg/spectrum_target.npz", "--runs",
            "figures/sweeps/linreg-sgd", *args)
    assert r.exit_code == 2, r.output
    assert needle in r.output and "Traceback" not in r.output


def test_calibrate_loss_matched_noise_scale_on_one_run(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps(
        {"workload": "mlp-digits", "optimizer": "sgd", "target": 0.025,
         "points": [{"batch_size": 256, "steps": 72}, {"batch_size": 1024, "steps": 69}]}))
    r = run("calibrate", "--spectrum", SPEC, "--runs", str(tmp_path), "--fit-on", "smallest",
            "--noise-scale", "loss-matched", "--json", str(tmp_path / "c.json"))
    assert r.exit_code == 0, r.output
    from nqm.spectrum import load

    spec = load(SPEC)
    rho = spec.initial_loss() / (spec.meta["train_loss_init"] - spec.meta["loss_floor"])
    fitted = json.loads((tmp_path / "c.json").read_text())["fitted"]
    assert fitted["noise_scale"] == pytest.approx(rho, rel=1e-12) and 0.05 < rho < 0.07
    assert "loss-matched" in r.stdout


def test_calibrate_loss_matched_without_the_initial_loss(tmp_path):
    from nqm.spectrum import Spectrum, load

    s = load(SPEC)
    meta = {k: v for k, v in s.meta.items() if k != "train_loss_init"}
    Spectrum(h=s.h, c=s.c, s0=s.s0, count=s.count, meta=meta).save(tmp_path / "s.npz")
    r = run("calibrate", "--runs", RUNS, "--noise-scale", "loss-matched", "--spectrum",
            str(tmp_path / "s.npz"), "--fit-on", "smallest")
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1, r.stderr
    assert "no train_loss_init in its metadata and no readable" in r.stderr
    # fitted on both ends kappa is fitted: the initial loss is not needed
    r = run("calibrate", "--spectrum", str(tmp_path / "s.npz"), "--runs", RUNS,
            "--noise-scale", "loss-matched", "--json", str(tmp_path / "c.json"))
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "c.json").read_text())["fitted"]["noise_scale_rule"] == \
        {"rule": "loss-matched", "kappa0": None}
    assert "kappa is fitted" in r.stdout


def test_calibrate_loss_matched_path_scales_every_segment(tmp_path):
    r, rec = run_json(tmp_path, "--path", "figures/measure-path/linreg", "--runs",
                      "figures/sweeps/linreg-adam", "--fit-on", "none", "--noise-scale",
                      "loss-matched")
    assert "loss-matched path: segment j's noise times rho_j" in r.stdout
    rule = rec["fitted"]["noise_scale_rule"]
    segs = rec["path"]["segments"]
    assert len(rule["segment_scales"]) == len(segs) == 3 and rule["kappa0"] == 1.0
    for rho, s in zip(rule["segment_scales"], segs):
        assert rho == pytest.approx(s["initial_loss"] / (s["train_loss"] - 0.125), rel=1e-12)


@pytest.mark.parametrize("args", [["predict", "--json", "no/such/dir/p.json"],
                                  ["simulate", "--lr", "0.1", "--batch-size", "4", "--steps",
                                   "10", "--plot", "no/such/dir/s.png"],
                                  ["fit", "--csv", "figures/sweeps/linreg-sgd/summary.csv",
                                   "--json", "no/such/dir/f.json"]])
def test_an_output_in_a_missing_directory_is_refused_before_any_work(args):
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1 and "directory no/such/dir does not exist" in r.stderr
