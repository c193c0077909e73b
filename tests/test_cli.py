"""The `nqm` command through click's CliRunner: outputs, files, and one-line errors (exit 2)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from cli import cli

SMALL = "power:d=100,alpha=1"


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_predict_writes_json_csv_plot(tmp_path):
    j, c, p = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "r.png"
    r = run("predict", "--spectrum", SMALL, "--batch-sizes", "1:64", "--target", "0.05",
            "--json", str(j), "--csv", str(c), "--plot", str(p), "--quiet")
    assert r.exit_code == 0, r.output
    assert "mccandlish" in r.stdout and "overhead_20pct" in r.stdout
    data = json.loads(j.read_text())
    assert set(data) >= {"target", "optimizer", "precond", "points", "critical_batch_size",
                         "s_min", "e_min"}
    assert [pt["batch_size"] for pt in data["points"]] == [1, 2, 4, 8, 16, 32, 64]
    for pt in data["points"]:
        assert set(pt) >= {"batch_size", "steps", "reached", "lr", "momentum", "ema", "at_edge"}
        assert isinstance(pt["steps"], int) and pt["reached"] is True
    assert set(data["critical_batch_size"]) == {"mccandlish", "overhead_20pct", "b_noise",
                                                "b_simple"}
    assert data["optimizer"] == "sgd" and data["precond"] == 0.0
    assert c.read_text().splitlines()[0].startswith("batch_size,steps,reached,lr")
    assert p.stat().st_size > 10_000 and p.read_bytes()[:4] == b"\x89PNG"


def test_predict_momentum_ema_and_file_spectrum(tmp_path):
    spec = tmp_path / "s.npz"
    np.savez(spec, h=[1.0, 0.1, 0.01], c=[1.0, 0.1, 0.01], s0=[1.0, 1.0, 1.0],
             count=[1.0, 10.0, 100.0])
    j = tmp_path / "r.json"
    r = run("predict", "--spectrum", str(spec), "--optimizer", "momentum", "--ema",
            "--batch-sizes", "1,8,64", "--target", "0.05", "--json", str(j), "--quiet")
    assert r.exit_code == 0, r.output
    pts = json.loads(j.read_text())["points"]
    assert all(pt["ema"] is not None for pt in pts)


def test_predict_unreached_is_reported_not_an_error(tmp_path):
    j = tmp_path / "r.json"
    r = run("predict", "--spectrum", SMALL, "--batch-sizes", "1,2", "--target", "1e-6",
            "--max-steps", "1000", "--json", str(j), "--quiet")
    assert r.exit_code == 0
    assert "target not reached in budget" in r.stdout
    pts = json.loads(j.read_text())["points"]
    assert all(pt["steps"] is None and pt["reached"] is False for pt in pts)


def test_predict_with_schedule(tmp_path):
    r = run("predict", "--spectrum", "power:d=20", "--schedule", "linear", "--batch-sizes",
            "4,64", "--target", "0.05", "--max-steps", "100000", "--quiet")
    assert r.exit_code == 0, r.output
    assert "horizon" in r.stdout


def test_simulate_json_with_monte_carlo(tmp_path):
    j, p = tmp_path / "s.json", tmp_path / "s.png"
    r = run("simulate", "--spectrum", "power:d=20", "--optimizer", "momentum", "--lr", "0.3",
            "--momentum", "0.9", "--batch-size", "4", "--steps", "200", "--monte-carlo", "500",
            "--seed", "3", "--target", "0.5", "--json", str(j), "--plot", str(p))
    assert r.exit_code == 0, r.output
    data = json.loads(j.read_text())
    assert data["steps"] == list(range(201)) and len(data["loss"]) == 201
    assert len(data["mc_mean"]) == 201 and len(data["mc_se"]) == 201
    # the exact curve is inside the Monte Carlo band at the last step (4 standard errors)
    assert abs(data["mc_mean"][-1] - data["loss"][-1]) < 4 * data["mc_se"][-1]
    assert p.read_bytes()[:4] == b"\x89PNG"


def test_fit_from_csv(tmp_path):
    csv = tmp_path / "m.csv"
    b = 2 ** np.arange(10)
    rows = ["batch_size,steps"] + [f"{x},{1000 * (1 + 64 / x):.0f}" for x in b] + ["2048,"]
    csv.write_text("\n".join(rows) + "\n")
    j = tmp_path / "f.json"
    r = run("fit", "--csv", str(csv), "--json", str(j), "--bootstrap", "200")
    assert r.exit_code == 0, r.output
    data = json.loads(j.read_text())
    assert data["critical_batch_size"]["mccandlish"] == pytest.approx(64, rel=0.01)
    assert set(data["critical_batch_size"]) >= {"mccandlish", "overhead_20pct"}
    assert len(data["confidence_95"]["mccandlish"]) == 2


@pytest.mark.parametrize("args,needle", [
    (["predict", "--spectrum", "power:d=10,alpha=x"], "non-numeric"),
    (["predict", "--spectrum", "missing.npz"], "not found"),
    (["predict", "--batch-sizes", "8:2"], "LO <= HI"),
    (["predict", "--batch-sizes", "a,b"], "bad --batch-sizes"),
    (["predict", "--target", "-1"], "target loss must be"),
    (["predict", "--precond", "2"], "precond"),
    (["predict", "--schedule", "exponential"], "schedule must be one of"),
    (["predict", "--bogus"], "No such option"),
    (["simulate", "--lr", "0.1", "--batch-size", "0", "--steps", "5"], "batch size"),
    (["simulate", "--lr", "nan", "--batch-size", "1", "--steps", "5"], "learning rate"),
    (["simulate", "--lr", "0.1", "--momentum", "1.5", "--optimizer", "momentum",
      "--batch-size", "1", "--steps", "5"], "momentum must be in"),
    (["fit", "--csv", "nope.csv"], "not found"),
])
def test_bad_input_is_one_line_exit_2(args, needle):
    r = run(*args)
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and needle in lines[0], r.stderr
    assert "Traceback" not in r.output


@pytest.mark.parametrize("content,needle", [
    ("size,steps\n1,2\n", "missing column(s) batch_size"),
    ("batch_size,steps\n1,abc\n", "non-numeric"),
    ("batch_size,steps\n", "no data rows"),
    ("batch_size,steps\n1,100\n2,-5\n", "must be > 0"),
    ("batch_size,steps\n1,100\n", "two or more"),
])
def test_fit_malformed_csv(tmp_path, content, needle):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    r = run("fit", "--csv", str(path))
    assert r.exit_code == 2 and needle in r.stderr, r.stderr


def test_spectrum_file_with_nan_names_field(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"h": [1.0, float("nan")], "c": [1, 1], "s0": [1, 1]}).replace(
        "NaN", "NaN"))
    r = run("predict", "--spectrum", str(path), "--batch-sizes", "1")
    assert r.exit_code == 2 and "'h' is not finite at index 1" in r.stderr


def test_nqm_package_imports_no_heavy_or_foreign_modules():
    code = ("import sys, nqm.predict, nqm.dynamics, nqm.tuning; "
            "bad = [m for m in ('torch', 'matplotlib', 'click', 'empirical') if m in sys.modules];"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_help_imports_no_heavy_modules():
    code = ("import sys; from click.testing import CliRunner; import cli; "
            "CliRunner().invoke(cli.cli, ['--help']); "
            "print([m for m in ('numba', 'torch', 'matplotlib', 'scipy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("args", [
    ["predict", "--target", "-1"],
    ["predict", "--spectrum", "power:d=0"],
    ["predict", "--batch-sizes", "8:2"],
    ["predict", "--threads", "0"],
    ["simulate", "--lr", "0.1", "--batch-size", "-3", "--steps", "10"],
    ["predict", "--noise", "loss-following"],
    ["predict", "--protocol-trials", "0"],
    ["predict", "--noise", "loss-following", "--label-noise", "1", "--optimizer", "nesterov"],
])
def test_bad_input_fails_before_the_kernels_are_imported(args):
    code = ("import sys; from click.testing import CliRunner; import cli; "
            f"r = CliRunner().invoke(cli.cli, {args!r}); "
            "print(r.exit_code, 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["2", "False"], out


def test_first_run_says_it_compiles_the_kernels(monkeypatch):
    import nqm._kernels

    monkeypatch.setattr(nqm._kernels, "cache_is_warm", lambda state_size=1: False)
    r = run("predict", "--spectrum", SMALL, "--batch-sizes", "1,64", "--quiet")
    assert r.exit_code == 0, r.output
    assert "compiling the NQM kernels (once" in r.stderr
    monkeypatch.setattr(nqm._kernels, "cache_is_warm", lambda state_size=1: True)
    assert "compiling" not in run("predict", "--spectrum", SMALL, "--batch-sizes", "1,64",
                                  "--quiet").stderr


def test_the_compile_notice_asks_about_the_optimizers_own_kernels(monkeypatch):
    """SGD's kernels cached but not momentum's 2 x 2 build: momentum says it compiles."""
    import nqm._kernels

    asked = []
    monkeypatch.setattr(nqm._kernels, "cache_is_warm",
                        lambda state_size=1: asked.append(state_size) or state_size == 1)
    args = ("predict", "--spectrum", SMALL, "--batch-sizes", "1,64", "--quiet")
    assert "compiling" not in run(*args).stderr
    assert "compiling the NQM kernels" in run(*args, "--optimizer", "momentum").stderr
    assert "compiling the NQM kernels" in run(*args, "--optimizer", "momentum", "--ema").stderr
    assert asked == [1, 2, 3]


def test_cache_is_warm_checks_the_state_sizes_build_kernel():
    import nqm._kernels as k

    assert isinstance(k.cache_is_warm(1), bool) and isinstance(k.cache_is_warm(3), bool)
    k.build_modes_momentum_ema._cache._cache_file._load_index = lambda: {}
    try:
        assert k.cache_is_warm(3) is False
    finally:
        del k.build_modes_momentum_ema._cache._cache_file._load_index
    from nqm.spectrum import power_law
    from nqm.tuning import tune

    tune(power_law(d=20), "momentum", [4], 0.05)        # compiles and caches momentum's kernels
    assert k.cache_is_warm(1) is True and k.cache_is_warm(2) is True
    k.local_searches_pair._cache._cache_file._load_index = lambda: {}
    try:    # SGD does not use the local-search kernel
        assert k.cache_is_warm(2) is False and k.cache_is_warm(1) is True
    finally:
        del k.local_searches_pair._cache._cache_file._load_index


def test_figures_writes_comparison_and_summaries(tmp_path):
    r = run("figures", "--out", str(tmp_path), "--spectrum", "power:d=50", "--batch-sizes",
            "1:256", "--target", "0.05", "--quiet")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "steps_vs_batch_by_optimizer.png").read_bytes()[:4] == b"\x89PNG"
    sgd = json.loads((tmp_path / "sgd.json").read_text())
    mom = json.loads((tmp_path / "momentum.json").read_text())
    assert all(m["steps"] <= s["steps"] for m, s in zip(mom["points"], sgd["points"]))
    assert (tmp_path / "sgd_ema.csv").read_text().startswith("batch_size,steps")


@pytest.mark.parametrize("n_steps", [2000, 2001, 5000])
def test_simulate_prints_only_computed_steps(tmp_path, n_steps):
    j = tmp_path / "s.json"
    r = run("simulate", "--lr", "0.5", "--batch-size", "64", "--steps", str(n_steps),
            "--json", str(j))
    assert r.exit_code == 0, r.output
    data = json.loads(j.read_text())
    rows = [line.split() for line in r.stdout.splitlines()[1:] if line.split()[0].isdigit()]
    shown = [int(row[0]) for row in rows]
    assert shown[0] == 0 and shown[-1] == n_steps and len(shown) >= 10
    assert set(shown) <= set(data["steps"])
    for row in rows:
        assert float(row[1]) == pytest.approx(data["loss"][data["steps"].index(int(row[0]))],
                                              rel=1e-5)


def test_predict_target_at_or_above_initial_loss_is_refused():
    r = run("predict", "--target", "1e9")
    assert r.exit_code == 2
    assert r.stderr.strip().splitlines() == [
        "Error: target 1e+09 is at or above the initial loss 4.894 of this spectrum: "
        "nothing to do"]


def test_predict_library_refuses_target_at_initial_loss():
    from nqm.errors import NQMInputError
    from nqm.predict import PredictConfig, predict
    from nqm.spectrum import power_law

    spec = power_law(d=100)
    with pytest.raises(NQMInputError, match="at or above the initial loss"):
        predict(spec, PredictConfig(target=spec.initial_loss(), batch_sizes=(1, 2)))


def test_predict_refuses_spectra_too_large_for_memory(monkeypatch):
    import nqm.spectrum

    monkeypatch.setattr(nqm.spectrum, "available_memory", lambda: 16 * 2**30)
    r = run("predict", "--spectrum", "power:d=1000000000")
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs about 80 GB" in lines[0] and "bins=200" in lines[0]
    # the tuner's own arrays: 100 rows of SGD need ~25 kB, allow 20 kB
    monkeypatch.setattr(nqm.spectrum, "available_memory", lambda: 20_000)
    r = run("predict", "--spectrum", SMALL, "--batch-sizes", "1,2", "--quiet")
    assert r.exit_code == 2
    assert r.stderr.startswith("Error: tuning sgd on 100 spectrum rows needs about")
    assert "bins=N" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_predict_flags_an_extrapolated_critical_batch_size(tmp_path):
    j, p = tmp_path / "r.json", tmp_path / "r.png"
    r = run("predict", "--batch-sizes", "3:100", "--quiet", "--json", str(j), "--plot", str(p))
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    i = next(k for k, line in enumerate(lines) if line.strip().startswith("mccandlish"))
    assert lines[i + 1].strip() == "warning: extrapolated: outside the batch sizes 4..64"
    data = json.loads(j.read_text())
    assert data["critical_batch_size"]["mccandlish"] > 64
    flags = data["critical_batch_size_flags"]
    assert flags["extrapolated"] == ["mccandlish"] and flags["batch_size_range"] == [4, 64]
    assert "overhead_20pct" in flags["not_determined"]
    assert p.read_bytes()[:4] == b"\x89PNG"


def test_predict_inside_the_batch_sizes_has_no_flag(tmp_path):
    j = tmp_path / "r.json"
    r = run("predict", "--spectrum", SMALL, "--batch-sizes", "1:4096", "--target", "0.05",
            "--json", str(j), "--quiet")
    assert r.exit_code == 0, r.output
    assert "extrapolated" not in r.stdout
    flags = json.loads(j.read_text())["critical_batch_size_flags"]
    assert flags["extrapolated"] == [] and flags["not_determined"] == {}


def _fit(tmp_path, rows, *extra):
    path = tmp_path / "m.csv"
    path.write_text("batch_size,steps\n" + "".join(f"{b},{s}\n" for b, s in rows))
    j = tmp_path / "f.json"
    r = run("fit", "--csv", str(path), "--json", str(j), "--plot", str(tmp_path / "f.png"),
            *extra)
    assert r.exit_code == 0, r.output
    return r.stdout, json.loads(j.read_text())


def test_fit_two_points_has_no_interval(tmp_path):
    out, data = _fit(tmp_path, [(64, 1000), (256, 400)])
    assert data["confidence_95"]["mccandlish"] == [None, None]
    assert "need >= 3 batch sizes" in data["critical_batch_size_flags"]["not_determined"][
        "interval"]
    assert "[256, 256]" not in out
    assert "95% bootstrap intervals: not determined: the residuals of the two-parameter fit" in out


def test_fit_flat_steps_are_not_determined(tmp_path):
    out, data = _fit(tmp_path, [(8, 100), (16, 100), (32, 100), (64, 100)])
    assert data["critical_batch_size"]["mccandlish"] is None
    assert ("B_crit not determined: steps do not fall with batch size (already maximal data "
            "parallelism over the measured range)") in out
    assert "e-14" not in out


def test_fit_rising_steps_are_not_determined(tmp_path):
    out, data = _fit(tmp_path, [(8, 100), (16, 130), (32, 170), (64, 220)])
    assert data["critical_batch_size"]["mccandlish"] is None
    assert "B_crit not determined: steps rise with batch size" in out
    assert data["critical_batch_size_flags"]["not_determined"]["mccandlish"] == (
        "steps rise with batch size")
    assert "warning: steps rise by more than 25%" in out


def test_fit_averages_duplicate_batch_sizes_and_says_so(tmp_path):
    out, data = _fit(tmp_path, [(8, 1000), (16, 600), (16, 500), (32, 300), (64, 250),
                                (128, 240)])
    assert "warning: batch size 16 has 2 reached step counts: they are averaged (geometric " \
           "mean)" in out
    from nqm.critical import fit_mccandlish
    merged = fit_mccandlish([8, 16, 32, 64, 128], [1000, np.sqrt(600 * 500), 300, 250, 240])
    assert data["s_min"] == pytest.approx(merged.s_min)
    assert len(data["points"]) == 6           # the rows as given
