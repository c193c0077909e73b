"""Versions of what produced a record of `empirical` (sweeps, measurements)."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

PROJECT = "nqm-batchsize"


def project_version() -> str:
    """This project's version from its installed metadata, else (a source checkout run
    without installing) `nqm.__version__`."""
    try:
        return version(PROJECT)
    except PackageNotFoundError:
        import nqm

        return nqm.__version__


def versions() -> dict:
    """{"nqm": project version, "torch", "python", "numpy"}: the keys every record carries."""
    import numpy as np
    import torch

    return {"nqm": project_version(), "torch": torch.__version__,
            "python": platform.python_version(), "numpy": np.__version__}
