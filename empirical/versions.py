"""Versions of what produced a record of `empirical` (sweeps, measurements)."""

from __future__ import annotations

import platform
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PROJECT = "nqm-batchsize"


def project_version() -> str:
    """This project's version from its installed metadata, else (a source checkout run
    without installing) from the checkout's pyproject.toml, else 'unknown'."""
    try:
        return version(PROJECT)
    except PackageNotFoundError:
        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text())["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


def versions() -> dict:
    """{"nqm": project version, "torch", "python", "numpy"}: the keys every record carries."""
    import numpy as np
    import torch

    return {"nqm": project_version(), "torch": torch.__version__,
            "python": platform.python_version(), "numpy": np.__version__}
