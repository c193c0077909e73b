"""Writing the result files of sweeps and measurements: JSON (nqm's writer; atomically where a
rerun reads it back) and CSV, into an output directory created on demand."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from nqm.files import write_json


def make_out_dir(path) -> Path:
    """Create an output directory and its parents; a one-line ValueError says why not."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create output directory {path}: "
                         f"{exc.strerror or exc}") from None
    return out


def write_json_atomic(path, data) -> None:
    """write_json through a temporary file and a rename: a crash leaves the old or the new."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    write_json(tmp, data)
    os.replace(tmp, path)


def write_csv(path, header: list[str], rows) -> None:
    """A CSV file: the `header` row, then `rows`."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
