"""`nqm figures` redrawing results: --calibration and --measure through the CLI, where the
figures go without --out, and the option combinations it refuses (one line, exit 2, nothing
written)."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli

ROOT = Path(__file__).resolve().parents[1]
VALIDATION = "figures/validation"
MEASURE = "figures/measure/linreg"
SWEEP = "figures/shallue/mlp-digits-sgd"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def record(tmp_path):
    """A calibrate record without transfers (linreg, adam: its 'ends' record), as `nqm
    calibrate --json` writes it."""
    path = tmp_path / "rec" / "linreg-adam.json"
    path.parent.mkdir()
    path.write_text(json.dumps(json.loads((ROOT / VALIDATION / "linreg-adam.json")
                                          .read_text())["ends"]))
    return path


def test_one_calibration_record(record, tmp_path):
    r = run("figures", "--calibration", record, "--out", tmp_path / "f")
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (tmp_path / "f").iterdir())
    assert names == ["linreg-adam-examples.pdf", "linreg-adam-examples.png", "linreg-adam.pdf",
                     "linreg-adam.png"]
    assert "no B_crit scatter: it needs two or more records" in r.stderr
    assert r.stdout.splitlines()[-1] == (f"wrote 4 files to {tmp_path / 'f'}/: linreg-adam, "
                                         "linreg-adam-examples")


@pytest.mark.slow
def test_records_after_calibration_and_measure_together(record, tmp_path):
    """`--calibration A B` (the shell's glob form) with --measure: one directory of figures."""
    out = tmp_path / "f"
    r = run("figures", "--calibration", record, f"{VALIDATION}/linreg-momentum.json",
            "--measure", MEASURE, "--out", out)
    assert r.exit_code == 0, r.output
    names = {p.name for p in out.iterdir()}
    for stem in ("linreg-adam", "linreg-adam-examples", "linreg-momentum",
                 "linreg-momentum-examples", "bcrit_scatter", "spectrum", "noise_scale"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= names, stem
    assert len(names) == 14 and "no B_crit scatter" not in r.stderr


def test_measure_alone(tmp_path):
    r = run("figures", "--measure", MEASURE, "--out", tmp_path)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "noise_scale.pdf", "noise_scale.png", "spectrum.pdf", "spectrum.png"]
    assert (tmp_path / "spectrum.pdf").read_bytes()[:4] == b"%PDF"


@pytest.fixture
def noise_log(tmp_path):
    """A three-update noise-scale log written by hand (the cheapest figure to draw)."""
    path = tmp_path / "noise.jsonl"
    lines = [{"kind": "config", "ema": 0.9}] + [
        {"kind": "update", "step": 10 * k, "b_simple": 5.0 + k, "interval": [4.0, 9.0 + k],
         "loss": 1.0 / (k + 1)} for k in range(3)]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_default_out_is_a_fresh_directory(noise_log, tmp_path, monkeypatch):
    """Without --out the figures go to out/figures, and to out/figures-2, -3 once it holds
    files, which stay as they were; an empty out/figures is used."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out" / "figures").mkdir(parents=True)
    r = run("figures", "--noise-log", noise_log)
    assert r.exit_code == 0, r.output
    first = {p.name: p.read_bytes() for p in (tmp_path / "out" / "figures").iterdir()}
    assert list(first) == ["noise_scale_tracked.png"] and "wrote to" not in r.stderr
    for n in (2, 3):
        r = run("figures", "--noise-log", noise_log)
        assert r.exit_code == 0, r.output
        assert f"out/figures is not empty: wrote to out/figures-{n} instead" in r.stderr
        assert {p.name for p in (tmp_path / "out" / f"figures-{n}").iterdir()} == set(first)
    assert {p.name: p.read_bytes() for p in (tmp_path / "out" / "figures").iterdir()} == first


def test_a_file_named_like_the_default_is_not_overwritten(noise_log, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "figures").write_text("mine")
    r = run("figures", "--noise-log", noise_log)
    assert r.exit_code == 2 and "'out/figures' is a file" in r.output, r.output
    assert (tmp_path / "out" / "figures").read_text() == "mine"


def test_error_with_a_busy_default_out_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out" / "figures").mkdir(parents=True)
    (tmp_path / "out" / "figures" / "old.png").write_bytes(b"x")
    one_line_error(run("figures", "--calibration", "nowhere.json"), "not found: nowhere.json")
    assert not (tmp_path / "out" / "figures-2").exists()


def test_explicit_out_is_written_into(noise_log, tmp_path):
    (tmp_path / "noise_scale_tracked.png").write_bytes(b"old")
    r = run("figures", "--noise-log", noise_log, "--out", tmp_path)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "noise_scale_tracked.png").read_bytes()[:4] == b"\x89PNG"
    assert "wrote to" not in r.stderr


def one_line_error(r, needle):
    assert r.exit_code == 2, r.output
    assert needle in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output


@pytest.mark.parametrize("content, needle", [
    (None, "calibration file not found"),
    ("{oops", "is not valid JSON"),
    ('{"workload": "linreg"}', "is not a calibration record (`nqm calibrate --json`): it lacks"),
    ("[]", "is not a calibration record"),
])
def test_bad_calibration_file_is_one_line_and_writes_nothing(tmp_path, record, content, needle):
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    r = run("figures", "--calibration", record, bad, "--out", tmp_path / "f")
    one_line_error(r, needle)
    assert "bad.json" in r.output and not (tmp_path / "f").exists()


def test_committed_non_records_are_refused(tmp_path):
    for name in ("summary.json", "adam_proxy.json"):
        r = run("figures", "--calibration", f"{VALIDATION}/{name}", "--out", tmp_path / "f")
        one_line_error(r, f"{name} is not a calibration record")


def test_colliding_names_are_refused(tmp_path):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "x.json").write_text((ROOT / VALIDATION / "linreg-adam.json").read_text())
    r = run("figures", "--calibration", tmp_path / "a" / "x.json", tmp_path / "b" / "x.json",
            "--out", tmp_path / "f")
    one_line_error(r, "would write x.png over")
    assert not (tmp_path / "f").exists()


@pytest.mark.parametrize("where, needle", [
    ("nowhere", "measurement directory not found"),
    ("figures/validation", "measure.json of `nqm measure`) not found"),
])
def test_bad_measure_directory(tmp_path, where, needle):
    r = run("figures", "--measure", tmp_path / where if where == "nowhere" else where,
            "--out", tmp_path / "f")
    one_line_error(r, needle)
    assert not (tmp_path / "f").exists()


def test_bad_spectrum_in_measure_directory_stops_before_any_figure(tmp_path):
    bad = tmp_path / "m"
    bad.mkdir()
    (bad / "measure.json").write_text((ROOT / MEASURE / "measure.json").read_text())
    (bad / "spectrum.npz").write_bytes(b"nope")
    r = run("figures", "--calibration", f"{VALIDATION}/linreg-adam.json", "--measure", bad,
            "--out", tmp_path / "f")
    one_line_error(r, f"{bad / 'spectrum.npz'} is not a readable .npz spectrum file")
    assert not (tmp_path / "f").exists()


def test_files_without_calibration_are_refused(record, tmp_path):
    one_line_error(run("figures", record, "--out", tmp_path / "f"),
                   f"unexpected argument {record}: calibration records follow --calibration")


@pytest.mark.parametrize("modes, needle", [
    (["--noise-log", "x.jsonl", "--sweep", SWEEP], "give --noise-log or --sweep, not both"),
    (["--sweep", SWEEP, "--calibration", "x.json"], "give --sweep or --calibration, not both"),
    (["--sweep", SWEEP, "--measure", MEASURE], "give --sweep or --measure, not both"),
    (["--noise-log", "x.jsonl", "--measure", MEASURE], "give --noise-log or --measure, not both"),
    (["--calibration", "x.json", "--measure", MEASURE, "--noise-log", "y.jsonl"],
     "give --noise-log or --calibration, not both"),
])
def test_modes_that_do_not_combine(tmp_path, modes, needle):
    one_line_error(run("figures", *modes, "--out", tmp_path / "f"), needle)
    assert not (tmp_path / "f").exists()


@pytest.mark.parametrize("mode", [["--sweep", SWEEP], ["--noise-log", "x.jsonl"],
                                  ["--calibration", "x.json"], ["--measure", MEASURE]])
@pytest.mark.parametrize("tuning", [["--spectrum", "power:d=50"], ["--target", "0.05"],
                                    ["--batch-sizes", "1:64"], ["--threads", "1"]])
def test_tuning_options_are_refused_when_redrawing(tmp_path, mode, tuning):
    r = run("figures", *mode, *tuning, "--out", tmp_path / "f")
    one_line_error(r, f"{tuning[0]} only applies when tuning (nothing is tuned with {mode[0]})")
    assert not (tmp_path / "f").exists()


def test_help_documents_the_modes_and_the_out_rule():
    r = run("figures", "--help")
    assert r.exit_code == 0
    text = " ".join(r.output.split())
    for needle in ("--calibration FILE [FILE ...]", "--measure", "out/figures-2",
                   "only --calibration and --measure go together",
                   "--spectrum, --target, --batch-sizes and --threads are refused"):
        assert needle in text, needle


@pytest.mark.slow
def test_measure_command_still_draws_png_only(tmp_path):
    """`nqm measure` draws with the same function, in PNG only, and lists what it wrote."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 4))
    y = (x[:, 0] > 0).astype(np.int64)
    np.savez(tmp_path / "d.npz", X_train=x[:90], y_train=y[:90], X_val=x[90:], y_val=y[90:])
    out = tmp_path / "m"
    r = run("measure", "--workload", "custom", "--data", tmp_path / "d.npz", "--target", "0.3",
            "--at-step", "0,5", "--top-k", "2", "--bootstrap", "10", "--slq-steps", "4",
            "--slq-vectors", "1", "--hessian-examples", "4", "--quiet", "--threads", "1",
            "--out", out)
    assert r.exit_code == 0, r.output
    assert (f"wrote {out}/spectrum.npz, measure.json, measure.csv, spectrum.png, "
            "noise_scale.png (and per-checkpoint spectrum_*.npz)") in r.stdout.splitlines()
    assert not list(out.glob("*.pdf"))
    assert (out / "spectrum.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "noise_scale.png").read_bytes()[:4] == b"\x89PNG"
    # redrawn from the directory: the same PNG bytes, and PDF beside
    r = run("figures", "--measure", out, "--out", tmp_path / "f")
    assert r.exit_code == 0, r.output
    for name in ("spectrum.png", "noise_scale.png"):
        assert (tmp_path / "f" / name).read_bytes() == (out / name).read_bytes(), name
    assert {p.suffix for p in (tmp_path / "f").iterdir()} == {".png", ".pdf"}


@pytest.mark.slow
def test_redrawn_calibration_equals_the_calibrate_plot(tmp_path):
    """`nqm calibrate --json c.json --plot c.png`, then `nqm figures --calibration c.json`:
    the same figure, byte for byte, with the transfer's figures and the scatter beside."""
    r = run("calibrate", "--spectrum", "figures/measure/linreg/spectrum_target.npz", "--runs",
            "figures/sweeps/linreg-sgd", "--transfer", "figures/sweeps/linreg-momentum",
            "--json", tmp_path / "c.json", "--plot", tmp_path / "c.png")
    assert r.exit_code == 0, r.output
    r = run("figures", "--calibration", tmp_path / "c.json", "--out", tmp_path / "f")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "f" / "c.png").read_bytes() == (tmp_path / "c.png").read_bytes()
    assert {p.name for p in (tmp_path / "f").glob("*.png")} == {
        "c.png", "c-examples.png", "c-transfer-momentum.png", "c-transfer-momentum-examples.png",
        "bcrit_scatter.png"}


def test_figures_sweep_without_out_leaves_the_sweep_directory_alone(tmp_path, monkeypatch):
    import shutil

    sweep, work = tmp_path / "sweep", tmp_path / "work"
    sweep.mkdir()
    shutil.copy(Path(SWEEP).resolve() / "summary.json", sweep / "summary.json")
    (work / "out" / "figures").mkdir(parents=True)
    (work / "out" / "figures" / "keep.png").write_text("x")
    monkeypatch.chdir(work)
    r = run("figures", "--sweep", str(sweep))
    assert r.exit_code == 0, r.output
    assert [p.name for p in sweep.iterdir()] == ["summary.json"]
    assert (work / "out" / "figures-2" / "steps_vs_batch.png").exists()
    assert "wrote to out/figures-2 instead" in r.stderr
