"""figures.run_validation: the train-loss rule's inputs and the --slow-row, --path and
--noise-scale options."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from figures import run_validation
from nqm.spectrum import load

ROOT = Path(__file__).resolve().parents[2]


def _measure(tmp_path, labels):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "measure.json").write_text(json.dumps(
        {"along_training": [{"label": k, "train_loss": v} for k, v in labels.items()]}))
    return tmp_path


def test_f_rule_reads_init_and_target(tmp_path):
    assert run_validation.f_rule("w", _measure(tmp_path, {"init": 2.0, "target": 0.5})) == 0.25


@pytest.mark.parametrize("labels, missing", [({"target": 0.5}, "init"),
                                             ({"init": 2.0, "step 5": 1.0}, "target")])
def test_f_rule_without_a_point_skips_the_zero_run_in_one_line(tmp_path, capsys, labels,
                                                                missing):
    assert run_validation.f_rule("w", _measure(tmp_path, labels)) is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"measure.json has no {missing} point" in err


def test_loss_matched_run_without_sweep_figures(tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["run_validation", "--workloads", "linreg", "--out", str(out),
                                      "--no-proxy-scan", "--no-sweep-figures",
                                      "--noise-scale", "loss-matched"])
    run_validation.main()
    assert sorted(p.name for p in out.iterdir()) == [
        "bcrit_scatter.pdf", "bcrit_scatter.png", "linreg-adam.json", "linreg-momentum.json",
        "linreg-sgd.json", "summary.json", "table.md"]
    rec = json.loads((out / "linreg-sgd.json").read_text())
    spec = load(ROOT / "figures/measure/linreg/spectrum_target.npz")
    rho = spec.initial_loss() / (spec.meta["train_loss_init"] - spec.meta["loss_floor"])
    for mode in ("one_run", "zero_run"):
        assert rec[mode]["fitted"]["noise_scale"] == pytest.approx(rho, rel=1e-12)
    # the fit on the ends is the reference run's, to the bit
    assert rec["ends"]["fitted"].pop("noise_scale_rule") == {"rule": "loss-matched",
                                                             "kappa0": None}
    ref = json.loads((ROOT / "figures/validation/linreg-sgd.json").read_text())["ends"]
    for key in ("fitted", "points", "critical_batch_size", "error", "transfer"):
        assert rec["ends"][key] == ref[key], key


def test_load_spectrum_with_a_slow_row_adds_the_dropped_directions():
    path = ROOT / "figures/measure/charlm/spectrum_target.npz"
    base, slow = load(path), run_validation.load_spectrum(path, 1.0)
    assert run_validation.load_spectrum(path, None).n_rows == base.n_rows
    assert slow.n_rows == base.n_rows + 1
    assert slow.count[-1] == pytest.approx(base.meta["dropped_directions"])
    disp = json.loads((path.parent / "measure.json").read_text())["displacement_sq"]
    assert float(np.sum(slow.count * slow.s0)) == pytest.approx(disp)
    assert run_validation.load_spectrum(path, 10.0).h[-1] == pytest.approx(
        10 * base.meta["h_floor"])


def test_a_bad_slow_row_factor_is_refused(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["run_validation", "--slow-row", "--slow-row-factor", "0"])
    with pytest.raises(SystemExit) as exc:
        run_validation.main()
    assert exc.value.code == 2 and "--slow-row-factor must be > 0, got 0.0" in \
        capsys.readouterr().err


@pytest.mark.parametrize("argv, needle", [
    (["--quantile", "0.3"], "--quantile goes with --predict first-passage"),
    (["--predict", "first-passage", "--quantile", "1.5"], "--quantile must be in (0, 1)"),
    (["--slow-row-factor", "2"], "--slow-row-factor goes with --slow-row"),
    (["--slow-row", "--slow-row-factor", "0"], "--slow-row-factor must be > 0"),
    (["--noise", "loss-following", "--predict", "first-passage"], "goes with --predict expected"),
    (["--path", "figures/measure-path", "--slow-row"], "--path goes with the expected loss"),
    (["--path", "/nonexistent/measure-path"], "no such directory"),
])
def test_run_validation_refuses_ignored_options_before_writing(tmp_path, argv, needle, capsys,
                                                               monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["run_validation", "--out", str(out), *argv])
    with pytest.raises(SystemExit) as e:
        run_validation.main()
    assert e.value.code == 2 and needle in capsys.readouterr().err
    assert not out.exists()


def test_run_validation_variants_never_default_to_the_reference_folder():
    from argparse import Namespace

    def out(predict="expected", slow_row=False, noise="constant"):
        return run_validation.default_out(Namespace(predict=predict, slow_row=slow_row,
                                                    noise=noise))

    assert out() == ""
    assert out(predict="first-passage") == "first-passage"
    assert out(slow_row=True) == "slow-row"
    assert out(noise="loss-following") == "loss-following"
    assert out(slow_row=True, noise="constant-coupled") == "slow-row-constant-coupled"
    assert run_validation.default_out(Namespace(predict="expected", slow_row=False,
                                                noise="constant", noise_scale="loss-matched")) \
        == "loss-matched"
    assert run_validation.default_out(Namespace(predict="expected", slow_row=False,
                                                noise="constant", path="x",
                                                noise_scale="loss-matched")) \
        == "path-loss-matched"


def test_path_variant_writes_to_its_own_folder():
    from argparse import Namespace

    assert run_validation.default_out(Namespace(predict="expected", slow_row=False,
                                                noise="constant", path="x")) == "path"


@pytest.mark.slow
def test_validate_with_a_path_uses_the_chain_in_every_mode():
    res = run_validation.validate("linreg", 1, ROOT / "figures" / "measure",
                                  ROOT / "figures" / "sweeps",
                                  path_dir=ROOT / "figures" / "measure-path")
    assert set(res) == {"sgd", "momentum", "adam"}
    for modes in res.values():
        for name, rec in modes.items():
            assert len(rec["path"]["segments"]) == 3, name
        rule = modes["zero_run"]["path"]["last_rule"]
        assert modes["zero_run"]["fitted"]["target_fraction"] == pytest.approx(rule)
        assert modes["one_run"]["fitted"]["noise_scale"] == 1.0
    assert [t["optimizer"] for t in res["sgd"]["ends"]["transfer"]] == ["momentum", "adam"]


def test_mean_field_adam_variant_writes_to_its_own_folder():
    from argparse import Namespace

    assert run_validation.default_out(Namespace(predict="expected", slow_row=False,
                                                noise="constant", adam="mean-field")) \
        == "adam-mean-field"
    assert run_validation.default_out(Namespace(predict="expected", slow_row=False,
                                                noise="constant", adam="mean-field",
                                                path="figures/measure-path",
                                                noise_scale="loss-matched")) \
        == "path-loss-matched-adam-mean-field"


@pytest.mark.parametrize("argv, needle", [
    (["--adam", "mean-field", "--noise", "loss-following"],
     "--adam mean-field goes with the expected loss and constant noise only"),
    (["--adam", "mean-field", "--predict", "first-passage"],
     "--adam mean-field goes with the expected loss and constant noise only"),
    (["--sweeps", "figures/sweeps-seeds/mean"], "--sweeps other than the reference sweeps"),
    (["--path", "figures/measure-path-ggn"], "--path other than figures/measure-path needs --out"),
])
def test_other_inputs_never_default_to_committed_records(argv, needle, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "argv", ["run_validation", *argv])
    with pytest.raises(SystemExit) as e:
        run_validation.main()
    assert e.value.code == 2 and needle in capsys.readouterr().err


def test_a_path_directory_without_the_path_fields_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["run_validation", "--path", str(ROOT / "figures/measure"),
                                      "--workloads", "linreg", "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit) as e:
        run_validation.main()
    err = capsys.readouterr().err
    assert e.value.code == 2 and "linreg:" in err and "Traceback" not in err
