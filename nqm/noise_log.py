"""A noise-scale log written by `empirical.track.NoiseScaleTracker`, read as plain JSON.

The log is JSON Lines: a {"kind": "config", ...} line, then one {"kind": "update", "step",
"b_simple", "interval", ...} line per update (the tracked B_simple = tr(Sigma)/|G|^2 of
McCandlish et al. 2018, arXiv 1812.06162, with its interval).  Runs appended to the same file
each start with their own config line; the last run is read.  A last line cut short (a crash
mid-write) is dropped and reported in `NoiseLog.notes`.

McCandlish et al. find B_crit ~ B_simple where the loss meets the target; `tracked_at` picks
the update to compare with a sweep's critical batch size: the first whose logged metric is
<= the sweep's target, or else the last update.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from nqm.errors import NQMInputError


@dataclass(frozen=True)
class TrackedPoint:
    """One logged update: the step, B_simple (None while |G|^2 <= 0) and its interval (None
    before the second update; its upper end math.inf where |G|^2 was not resolved, logged as
    null), and the loss and metric if they were logged."""

    step: int
    b_simple: float | None
    interval: tuple[float, float] | None
    loss: float | None
    metric: float | None


@dataclass(frozen=True)
class NoiseLog:
    """The last run of a noise-scale log: its config line, its updates in file order, and
    notes about what was skipped."""

    source: str
    config: dict
    points: tuple[TrackedPoint, ...]
    notes: tuple[str, ...] = ()


def _number(rec: dict, key: str, where: str, optional: bool = True) -> float | None:
    v = rec.get(key)
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise NQMInputError(f"{where}: '{key}' must be a finite number, got {v!r}")
    return float(v)


def _point(rec: dict, where: str) -> TrackedPoint:
    step = rec.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise NQMInputError(f"{where}: 'step' must be an integer >= 0, got {step!r}")
    ci = rec.get("interval")
    if ci is not None:
        if not (isinstance(ci, list) and len(ci) == 2):
            raise NQMInputError(f"{where}: 'interval' must be [low, high] or null, got {ci!r}")
        lo = _number({"interval": ci[0]}, "interval", where)
        hi = _number({"interval": ci[1]}, "interval", where)
        ci = (0.0 if lo is None else lo, math.inf if hi is None else hi)
    return TrackedPoint(step, _number(rec, "b_simple", where), ci, _number(rec, "loss", where),
                        _number(rec, "metric", where))


def load_noise_log(path: str | Path) -> NoiseLog:
    """The last run of the log at `path` (module docstring); NQMInputError naming the file
    and line for anything that is not such a log."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise NQMInputError(f"{p} is not a noise-scale log (not UTF-8 text)") from None
    lines, notes = text.split("\n"), []
    config, points = None, []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) and config is not None:      # no newline after it: torn write
                notes.append(f"{p} line {i}: incomplete last line dropped")
                continue
            raise NQMInputError(f"{p} line {i} is not JSON: not a noise-scale log") from None
        if not isinstance(rec, dict) or rec.get("kind") not in ("config", "update"):
            raise NQMInputError(f"{p} line {i}: not a noise-scale log record "
                                f"(needs \"kind\": \"config\" or \"update\")")
        if rec["kind"] == "config":
            config, points = rec, []
        elif config is None:
            raise NQMInputError(f"{p} line {i}: an update before any config line")
        else:
            points.append(_point(rec, f"{p} line {i}"))
    if config is None or not points:
        raise NQMInputError(f"{p} holds no noise-scale updates (write it with "
                            f"empirical.track.NoiseScaleTracker(log=...))")
    return NoiseLog(str(p), config, tuple(points), tuple(notes))


def tracked_at(log: NoiseLog, target: float | None = None) -> tuple[TrackedPoint, str]:
    """The update to compare with B_crit and why: the first whose metric is <= `target`
    ('target'), else the last ('end of log')."""
    if target is not None:
        for pt in log.points:
            if pt.metric is not None and pt.metric <= target:
                return pt, "target"
    return log.points[-1], "end of log"


def judge_tracked(log: NoiseLog, target: float, critical: dict) -> dict:
    """The tracked B_simple as a predictor of the measured `mccandlish` B_crit: its value,
    interval, step and where it was taken, and the error factor max(t/m, m/t), beside the
    error factors of the other predictions in `critical` ({"measured", "predicted",
    "null_model"}: dicts with "mccandlish" or None)."""
    pt, where = tracked_at(log, target)
    measured = (critical.get("measured") or {}).get("mccandlish")

    def error(value):
        if value is None or measured is None or value <= 0 or measured <= 0:
            return None
        return max(value / measured, measured / value)

    others = {k: error((critical.get(k) or {}).get("mccandlish"))
              for k in ("predicted", "null_model")}
    ci = None if pt.interval is None else [v if math.isfinite(v) else None for v in pt.interval]
    return {"b_simple": pt.b_simple, "interval": ci, "step": pt.step, "at": where,
            "metric": pt.metric,
            "loss": pt.loss, "source": log.source, "measured_mccandlish": measured,
            "error": error(pt.b_simple), "error_others": others, "notes": list(log.notes)}
