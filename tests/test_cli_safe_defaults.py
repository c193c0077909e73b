"""Safe defaults of the `nqm` command: `figures` writes outside the committed results and
byte-stable files, `workloads` is a static table, the custom workload names its model."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli import cli

ROOT = Path(__file__).resolve().parents[1]


def test_figures_default_out_is_outside_committed_results():
    out = next(p for p in cli.commands["figures"].params if p.name == "out_dir")
    assert Path(out.default).parts[0] != "figures"
    assert not Path(out.default).resolve().is_relative_to((ROOT / "figures").resolve())


@pytest.mark.slow
def test_figures_rerun_gives_byte_identical_json_and_csv(tmp_path):
    args = ["figures", "--spectrum", "power:d=40", "--batch-sizes", "1:64", "--target", "0.05",
            "--quiet", "--out"]
    for name in ("a", "b"):
        r = CliRunner().invoke(cli, args + [str(tmp_path / name)])
        assert r.exit_code == 0, r.output
    files = sorted(p.name for p in (tmp_path / "a").iterdir() if p.suffix in (".json", ".csv"))
    assert len(files) == 10       # five optimizers, a JSON and a CSV each
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    for f in files:
        if f.endswith(".json"):
            assert "elapsed_s" not in json.loads((tmp_path / "a" / f).read_text()), f


def test_committed_nqm_figures_hold_no_wall_clock_times():
    for path in sorted((ROOT / "figures" / "nqm").glob("*.json")):
        assert "elapsed_s" not in json.loads(path.read_text()), path.name


def test_workloads_command_does_not_import_torch():
    code = ("import sys; from click.testing import CliRunner; import cli; "
            "r = CliRunner().invoke(cli.cli, ['workloads']); "
            "print(r.exit_code, 'torch' in sys.modules, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip() == "0 False False", out.stdout + out.stderr


def test_workloads_command_prints_the_catalog():
    from empirical.catalog import CATALOG

    r = CliRunner().invoke(cli, ["workloads"])
    assert r.exit_code == 0, r.output
    rows = r.output.splitlines()
    assert rows[0].split() == ["workload", "metric", "target", "budget"]
    assert [row.split()[0] for row in rows[1:]] == [*CATALOG, "custom"]
    for row, (name, info) in zip(rows[1:], CATALOG.items()):
        assert row.startswith(name) and info.metric_name in row
        assert row.split()[-2:] == [f"{info.target:g}", str(info.budget)]


@pytest.mark.slow
def test_catalog_equals_the_built_workloads():
    from empirical.catalog import CATALOG, WORKLOADS
    from empirical.workloads import WORKLOADS as BUILT_NAMES
    from empirical.workloads import get

    assert WORKLOADS == BUILT_NAMES and set(CATALOG) == set(WORKLOADS) - {"custom"}
    for name, info in CATALOG.items():
        w = get(name)
        assert (w.name, w.metric_name, w.target, w.budget) == (
            name, info.metric_name, info.target, info.budget)


@pytest.fixture
def custom_data(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 4))
    y = (x[:, 0] > 0).astype(np.int64)
    path = tmp_path / "d.npz"
    np.savez(path, X_train=x[:90], y_train=y[:90], X_val=x[90:], y_val=y[90:])
    return path


@pytest.mark.parametrize("command", [
    ["sweep", "--optimizer", "sgd", "--trials", "2", "--budget", "20", "--batch-sizes", "16"],
    ["measure", "--at-step", "0", "--top-k", "2", "--bootstrap", "10", "--slq-steps", "4",
     "--slq-vectors", "1", "--hessian-examples", "4"],
])
def test_custom_workload_names_its_default_model(command, custom_data, tmp_path):
    base = command + ["--workload", "custom", "--data", str(custom_data), "--target", "0.3",
                      "--quiet"]
    r = CliRunner().invoke(cli, base + ["--out", str(tmp_path / "default")])
    assert r.exit_code == 0, r.output
    assert ("custom workload: model logreg (default; choose with --model linear|logreg|mlp)"
            in r.stderr.splitlines()), r.stderr
    r = CliRunner().invoke(cli, base + ["--model", "mlp", "--out", str(tmp_path / "mlp")])
    assert r.exit_code == 0, r.output
    assert "custom workload: model mlp" in r.stderr.splitlines(), r.stderr
    assert "default" not in r.stderr
