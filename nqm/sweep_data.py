"""Measured steps-to-result per batch size, read from a sweep's `summary.json` (`nqm sweep`).

The file is plain data (JSON); this module reads it without importing the training code.
A point is usable for calibration when its target was reached.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from nqm.errors import NQMInputError
from nqm.optimizer import KINDS

#: sweep optimizer -> NQM optimizer (kind, preconditioner exponent p).  Adam has no exact NQM
#: counterpart: an H^-p preconditioned SGD stands in for it (Zhang et al. 2019, section 3.3).
#: p = 0.25 was chosen once, on linreg and logreg-digits (the SGD fit transferred to their Adam
#: sweeps: median worst error 2.0x at p = 0.25 against 2.5x at 0 and 4.4x at 0.5), and then
#: held for the other workloads (figures/validation/adam_proxy.json).
DEFAULT_PROXY = {"sgd": ("sgd", 0.0), "momentum": ("momentum", 0.0),
                 "nesterov": ("nesterov", 0.0), "adam": ("sgd", 0.25)}


@dataclass(frozen=True)
class SweepPoint:
    """One batch size of a sweep: the best trial's steps (None: not reached) and settings."""

    batch_size: int
    steps: int | None
    lr: float | None
    momentum: float | None
    trials: int
    widened: bool


@dataclass(frozen=True)
class SweepData:
    """A sweep's measured points (sorted by batch size) and what it measured."""

    workload: str
    optimizer: str
    target: float
    points: tuple[SweepPoint, ...]
    source: str

    @property
    def reached(self) -> tuple[SweepPoint, ...]:
        """The points whose target was reached."""
        return tuple(p for p in self.points if p.steps is not None)

    def point(self, batch_size: int) -> SweepPoint:
        """The point at `batch_size` (an error naming the sweep's batch sizes if none)."""
        for p in self.points:
            if p.batch_size == batch_size:
                return p
        raise NQMInputError(f"{self.source} has no batch size {batch_size} "
                            f"(it has {', '.join(str(p.batch_size) for p in self.points)})")


def load_sweep(path: str | Path) -> SweepData:
    """A sweep directory (holding summary.json) or the summary.json file itself."""
    p = Path(path)
    f = p / "summary.json" if p.is_dir() else p
    if not f.exists():
        raise NQMInputError(f"no sweep summary at {f} (run `nqm sweep --out DIR` first)")
    try:
        data = json.loads(f.read_text())
        if isinstance(data, dict) and "best_metric" in data and "points" not in data:
            raise NQMInputError(f"{f} is a fixed-budget sweep (best metric per batch size); "
                                f"calibration needs a steps-to-result sweep")
        points = tuple(sorted(
            (SweepPoint(int(q["batch_size"]), None if q.get("steps") is None else int(q["steps"]),
                        q.get("lr"), q.get("momentum"), int(q.get("trials", 0)),
                        bool(q.get("widened", False)))
             for q in data["points"]), key=lambda q: q.batch_size))
        sweep = SweepData(str(data["workload"]), str(data["optimizer"]), float(data["target"]),
                          points, str(f))
    except NQMInputError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise NQMInputError(f"{f} is not a JSON sweep summary") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise NQMInputError(f"{f} is not a sweep summary (bad or missing {exc})") from None
    if len(sweep.reached) < 2:
        raise NQMInputError(f"{f} has {len(sweep.reached)} batch size(s) that reached the "
                            f"target; calibration needs at least 2")
    if not math.isfinite(sweep.target) or sweep.target <= 0:
        raise NQMInputError(f"{f}: target must be a finite number > 0, got {sweep.target}")
    return sweep


def parse_proxy(text: str | None) -> dict[str, tuple[str, float]]:
    """'adam=precond:0.5[,nesterov=momentum]' -> the DEFAULT_PROXY mapping with those changes;
    'adam=adam' is the mean-field Adam of `nqm.adam`."""
    proxy = dict(DEFAULT_PROXY)
    for item in (text or "").split(","):
        if not item.strip():
            continue
        try:
            name, value = (x.strip() for x in item.split("="))
            if value.startswith("precond:"):
                proxy[name] = ("sgd", float(value.split(":", 1)[1]))
            elif value in (*KINDS, "adam"):
                proxy[name] = (value, 0.0)
            else:
                raise ValueError(value)
        except ValueError:
            raise NQMInputError(f"bad --proxy '{item}': give OPTIMIZER=sgd|momentum|nesterov|"
                                f"adam or OPTIMIZER=precond:P") from None
    return proxy
