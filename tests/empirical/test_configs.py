"""Frozen configurations of empirical: every bad field is refused naming it; defaults agree."""

import pytest

from empirical.executor import DASK_MISSING, DaskExecutor
from empirical.protocol import SweepConfig
from empirical.train_config import DEFAULT_MOMENTUM, TrainConfig


@pytest.mark.parametrize("kwargs,field", [
    ({"optimizer": "rmsprop"}, "optimizer"),
    ({"lr": ()}, "lr"),
    ({"lr": (0.1, -1.0)}, "lr"),
    ({"lr": float("nan")}, "lr"),
    ({"momentum": (0.9,) * 3}, "momentum"),
    ({"momentum": 1.0}, "momentum"),
    ({"beta2": 1.5}, "beta2"),
    ({"eps": 0.0}, "eps"),
    ({"budget": 0}, "budget"),
    ({"budget": 2.5}, "budget"),
    ({"decay": "cosine"}, "decay"),
    ({"final": -0.1}, "final"),
])
def test_train_config_names_the_bad_field(kwargs, field):
    args = {"optimizer": "momentum", "lr": (0.1, 0.2), **kwargs}
    with pytest.raises(ValueError, match=rf"^{field} "):
        TrainConfig(**args)


def test_train_config_one_momentum_default_for_every_optimizer_that_has_one():
    for opt in ("momentum", "nesterov", "adam"):
        assert TrainConfig(opt, (0.1, 0.2)).betas == (DEFAULT_MOMENTUM,) * 2
    assert TrainConfig("sgd", (0.1, 0.2), 0.9).betas == (0.0, 0.0)
    cfg = TrainConfig("momentum", [0.1, 0.2], 0.5)
    assert cfg.lr == (0.1, 0.2) and cfg.momentum == (0.5, 0.5)
    assert cfg.one(1) == TrainConfig("momentum", 0.2, 0.5)


def test_linear_decay_runs_from_one_to_final():
    cfg = TrainConfig("sgd", 0.1, decay="linear", final=0.1)
    assert cfg.lr_factor(1, 11) == 1.0 and cfg.lr_factor(11, 11) == pytest.approx(0.1)
    assert cfg.lr_factor(6, 11) == pytest.approx(0.55)
    assert TrainConfig("sgd", 0.1).lr_factor(7, 11) == 1.0


@pytest.mark.parametrize("kwargs,field", [
    ({"workload": "imagenet"}, "workload"),
    ({"optimizer": "lamb"}, "optimizer"),
    ({"batch_sizes": ()}, "batch_sizes"),
    ({"batch_sizes": (4, 0)}, "batch_sizes"),
    ({"n_trials": 1}, "n_trials"),
    ({"budget": 0}, "budget"),
    ({"target": 0.0}, "target"),
    ({"target": float("inf")}, "target"),
    ({"lr_range": (0.1, 0.01)}, "lr_range"),
    ({"lr_range": (0.0, 1.0)}, "lr_range"),
    ({"lr_range": (0.1,)}, "lr_range"),
    ({"one_minus_beta_range": (0.01, 2.0)}, "one_minus_beta_range"),
    ({"max_widen": -1}, "max_widen"),
    ({"decay": "cosine"}, "decay"),
    ({"model": "resnet"}, "model"),
])
def test_sweep_config_names_the_bad_field(kwargs, field):
    args = {"workload": "linreg", "optimizer": "sgd", "batch_sizes": (4, 16), **kwargs}
    with pytest.raises(ValueError, match=rf"^{field} "):
        SweepConfig(**args)


def test_sweep_config_accepts_the_defaults():
    cfg = SweepConfig("linreg", "momentum", (1, 4), lr_range=(0.01, 1.0),
                      one_minus_beta_range=(0.01, 1.0))
    assert cfg.n_trials == 16 and cfg.decay == "constant"


def test_dask_executor_without_dask_is_one_line(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "distributed" else real(name, *a))
    with pytest.raises(ValueError, match=r"pip install nqm-batchsize\[dask\]") as exc:
        DaskExecutor("tcp://localhost:8786")
    assert str(exc.value) == DASK_MISSING and "\n" not in DASK_MISSING


def test_sweep_with_dask_executor_without_dask_exits_2_in_one_line(monkeypatch, tmp_path):
    import importlib.util

    from click.testing import CliRunner

    from cli import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "distributed" else real(name, *a))
    r = CliRunner().invoke(cli, ["sweep", "--workload", "linreg", "--optimizer", "sgd",
                                 "--executor", "dask", "--scheduler", "tcp://localhost:8786",
                                 "--out", str(tmp_path / "s"), "--quiet"])
    assert r.exit_code == 2, r.output
    assert DASK_MISSING in r.output and "Traceback" not in r.output


def test_project_version_without_installed_metadata(monkeypatch):
    """A source checkout run without installing still records the project's version."""
    import importlib.metadata

    import nqm
    from empirical import versions

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(versions, "version", missing)
    assert versions.project_version() == nqm.__version__


def test_package_version_matches_pyproject():
    import tomllib
    from pathlib import Path

    import nqm

    meta = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert nqm.__version__ == meta["project"]["version"]
