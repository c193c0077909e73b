"""`nqm predict --noise loss-following` and `--protocol-trials`: the command's numbers equal the
library's (`nqm.coupled_tuning.tune`, `nqm.first_passage.first_passage`), fixed seeds give
fixed results, and bad inputs are one line, exit 2."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli import cli
from nqm.coupled import CoupledNoise
from nqm.coupled_tuning import CoupledTuneConfig, tune
from nqm.first_passage import ProtocolConfig, first_passage
from nqm.spectrum import parse_spec

SPEC = "power:d=16,alpha=1"              # linreg-like: h = 1/i, s0 = 1
TARGET, SIZES, MAX_STEPS = 0.02, (1, 4, 32), 20000
SWEEP = ["--protocol-trials", "8", "--repeats", "3", "--budget", "4000", "--seed", "5"]


def run_json(tmp_path, *args, spec=SPEC):
    """`nqm predict` on `spec` with `args`: its --json record and its output."""
    path = tmp_path / "out.json"
    r = CliRunner().invoke(cli, ["predict", "--spectrum", spec, "--target", str(TARGET),
                                 "--batch-sizes", ",".join(map(str, SIZES)), "--quiet",
                                 "--json", str(path), *args])
    assert r.exit_code == 0, r.output
    return json.loads(path.read_text()), r.output


def protocol(optimizer):
    return ProtocolConfig(TARGET, optimizer, batch_sizes=SIZES, n_trials=8, repeats=3,
                          budget=4000, lr_range=(1e-3, 3.0))


def same_sweep(cli_points, lib_points):
    for got, want in zip(cli_points, lib_points, strict=True):
        assert got["batch_size"] == want["batch_size"]
        for key in ("steps", "steps_q16", "steps_q84", "lr", "momentum"):
            assert got[key] == want[key], key
        assert [r["steps"] for r in got["repeats"]] == [r["steps"] for r in want["repeats"]]


@pytest.mark.parametrize("optimizer,sigma", [("sgd", 0.5), ("sgd", 0.0), ("momentum", 0.5)])
def test_loss_following_equals_the_library_tuner(tmp_path, optimizer, sigma):
    rec, out = run_json(tmp_path, "--noise", "loss-following", "--label-noise", str(sigma),
                        "--optimizer", optimizer, "--max-steps", str(MAX_STEPS))
    want = tune(parse_spec(SPEC), CoupledNoise(sigma**2),
                CoupledTuneConfig(TARGET, optimizer, batch_sizes=SIZES, max_steps=MAX_STEPS))
    for got, w in zip(rec["points"], want, strict=True):
        for key in ("batch_size", "steps", "reached", "lr", "momentum", "edges"):
            assert got[key] == w[key], key
    assert rec["noise"]["sigma2"] == sigma**2 and rec["noise"]["spectrum_c_used"] is False
    assert "protocol" not in rec
    assert f"noise loss-following (sigma = {sigma:g})" in out
    assert "spectrum's c is not used" in out


def test_loss_following_ignores_the_spectrums_c(tmp_path):
    a, _ = run_json(tmp_path, "--noise", "loss-following", "--label-noise", "0.5",
                    "--max-steps", str(MAX_STEPS))
    path = tmp_path / "c.json"
    sp = parse_spec(SPEC)
    path.write_text(json.dumps({"h": sp.h.tolist(), "c": (7 * sp.h**3).tolist(),
                                "s0": sp.s0.tolist()}))
    r = CliRunner().invoke(cli, ["predict", "--spectrum", str(path), "--target", str(TARGET),
                                 "--batch-sizes", "1,4,32", "--quiet", "--noise",
                                 "loss-following", "--label-noise", "0.5", "--max-steps",
                                 str(MAX_STEPS), "--json", str(tmp_path / "b.json")])
    assert r.exit_code == 0, r.output
    b = json.loads((tmp_path / "b.json").read_text())
    assert [p["steps"] for p in a["points"]] == [p["steps"] for p in b["points"]]


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_protocol_equals_first_passage_with_the_same_seed(tmp_path, optimizer):
    rec, out = run_json(tmp_path, "--noise", "loss-following", "--label-noise", "0.5",
                        "--optimizer", optimizer, "--max-steps", str(MAX_STEPS), *SWEEP)
    want = first_passage(parse_spec(SPEC), CoupledNoise(0.25), protocol(optimizer),
                         np.random.default_rng(5))
    same_sweep(rec["protocol"]["points"], want)
    assert rec["protocol"]["seed"] == 5 and rec["protocol"]["trials"] == 8
    assert "sweep steps [16%, 84%]" in out
    assert all(p["steps"] is not None for p in rec["points"])     # both columns reported


def test_additive_sweep_with_c_sigma2_h_is_the_uncoupled_model(tmp_path):
    """c = sigma^2 h in the spectrum: the additive sweep is CoupledNoise(sigma^2, False)'s,
    and the expected-loss column is today's `nqm predict`."""
    spec = "power:d=16,alpha=1,noise_scale=0.25,noise_exponent=1"
    rec, _ = run_json(tmp_path, *SWEEP, spec=spec)
    plain, _ = run_json(tmp_path, spec=spec)
    sp = parse_spec(spec)
    assert np.allclose(sp.c, 0.25 * sp.h)
    want = first_passage(sp, CoupledNoise(0.25, coupling=False), protocol("sgd"),
                         np.random.default_rng(5))
    same_sweep(rec["protocol"]["points"], want)
    assert rec["points"] == plain["points"]
    assert rec["noise"]["model"] == "additive"
    assert "noise" not in plain and "protocol" not in plain          # today's record


def test_same_seed_same_result_other_seed_other_result(tmp_path):
    args = ["--noise", "loss-following", "--label-noise", "0.5", "--max-steps", "2000"]
    a, _ = run_json(tmp_path, *args, *SWEEP)
    b, _ = run_json(tmp_path, *args, *SWEEP)
    c, _ = run_json(tmp_path, *args, *SWEEP[:-1], "6")
    for rec in (a, b, c):
        rec.pop("elapsed_s"), rec["protocol"].pop("elapsed_s")
    assert a == b
    assert a["protocol"]["points"] != c["protocol"]["points"]


LF = ["--noise", "loss-following", "--label-noise", "0.5"]


@pytest.mark.parametrize("args,needle", [
    ([*LF, "--optimizer", "nesterov"], "optimizer nesterov is not supported"),
    ([*LF, "--ema"], "ema is not supported"),
    ([*LF, "--schedule", "linear"], "schedule linear"),
    (["--noise", "loss-following"], "needs label_noise"),
    (["--noise", "loss-following", "--label-noise", "-1"], "label_noise must be"),
    (["--noise", "loss-following", "--label-noise", "nan"], "label_noise must be"),
    (["--label-noise", "0.5"], "label_noise is used only with noise 'loss-following'"),
    (["--noise", "gaussian"], "--noise"),
    (["--protocol-trials", "0"], "trials (simulated sweep) must be an integer >= 1"),
    (["--protocol-trials", "4", "--repeats", "0"], "repeats (simulated sweep)"),
    (["--repeats", "3"], "--repeats need --protocol-trials"),
    (["--protocol-trials", "4", "--lr-range", "1"], "lr_range must be two numbers"),
    (["--protocol-trials", "4", "--lr-range", "3,1"], "lr_range must be two numbers"),
    (["--protocol-trials", "4", "--lr-range", "0,1"], "lr_range must be two numbers"),
    (["--protocol-trials", "4", "--lr-range", "a,b"], "bad --lr-range"),
    (["--protocol-trials", "4", "--budget", "0"], "step budget"),
    (["--protocol-trials", "4", "--seed", "-1"], "seed must be"),
    (["--protocol-trials", "4", "--optimizer", "nesterov"], "not supported by the simulated"),
])
def test_bad_input_is_one_line_exit_2(args, needle):
    r = CliRunner().invoke(cli, ["predict", "--spectrum", SPEC, "--target", "0.02", *args])
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and needle in lines[0], r.stderr
    assert "Traceback" not in r.output


@pytest.mark.parametrize("args,needle", [
    (["--spectrum", "power:d=10000,alpha=1", *LF], "use fewer rows"),
    (["--spectrum", "power:d=10000,alpha=1,bins=50", "--protocol-trials", "4"],
     "10000 after count expansion"),
])
def test_costly_work_is_refused_before_it_starts(args, needle):
    r = CliRunner().invoke(cli, ["predict", *args])
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
