"""Reading measured steps per batch size (`nqm fit --csv`)."""

from __future__ import annotations

import csv
from pathlib import Path

from nqm.errors import NQMInputError

NOT_REACHED = ("", "none", "null", "inf", "nan")


def read_measurements(path) -> tuple[list[float], list[float | None]]:
    """CSV with columns batch_size,steps; empty/none/null/inf/nan steps mean 'not reached'
    (None).  Bad files and values raise NQMInputError naming the file and line."""
    p = Path(path)
    if not p.exists():
        raise NQMInputError(f"file not found: {path}")
    try:
        with p.open(newline="") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip() for f in (reader.fieldnames or [])]
            missing = {"batch_size", "steps"} - set(fields)
            if missing:
                raise NQMInputError(f"{path}: missing column(s) {', '.join(sorted(missing))} "
                                    f"(found {', '.join(fields) or 'none'})")
            b, s = [], []
            for line, row in enumerate(reader, start=2):
                bb, ss = _row(path, line, row)
                b.append(bb)
                s.append(ss)
    except UnicodeDecodeError:
        raise NQMInputError(f"{path} is not a text CSV file") from None
    if not b:
        raise NQMInputError(f"{path} has no data rows")
    return b, s


def _row(path, line: int, row: dict) -> tuple[float, float | None]:
    """One data row as (batch size, steps or None)."""
    row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
    try:
        raw = row["steps"].lower()
        return float(row["batch_size"]), None if raw in NOT_REACHED else float(raw)
    except ValueError:
        raise NQMInputError(f"{path}, line {line}: non-numeric value in {row}") from None
