"""Writing the records of the `nqm` pipelines: JSON and the CSV tables of predict and figures."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

PREDICT_COLUMNS = ["batch_size", "steps", "reached", "lr", "momentum", "ema", "horizon",
                   "at_edge", "lower_bound"]
COMPARE_COLUMNS = ["batch_size", "steps", "lr", "momentum", "ema", "at_edge"]


def _jsonable(x):
    if hasattr(x, "tolist"):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x)}")


def write_json(path, data) -> None:
    """`data` as indented JSON (arrays as lists; NaN and inf refused)."""
    Path(path).write_text(json.dumps(data, indent=2, allow_nan=False, default=_jsonable) + "\n")


def finite_or_none(values) -> list:
    """The values with every inf and NaN replaced by None (JSON null)."""
    return [x if math.isfinite(x) else None for x in values]


def write_csv(path, header: list[str], rows) -> None:
    """A CSV file: the `header` row, then `rows`."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def write_predict_csv(path, result: dict) -> None:
    """`nqm predict --csv`: one row per batch size, the edge flags joined by ';'."""
    write_csv(path, PREDICT_COLUMNS + ["edges"],
              ([p[k] for k in PREDICT_COLUMNS] + [";".join(p["edges"])]
               for p in result["points"]))


def write_compare_csv(path, result: dict) -> None:
    """One optimizer's table of `nqm figures`."""
    write_csv(path, COMPARE_COLUMNS, ([p[k] for k in COMPARE_COLUMNS] for p in result["points"]))
