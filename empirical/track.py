"""Track the gradient noise scale B_simple = tr(Sigma) / |G|^2 inside your own training loop.

B_simple (McCandlish et al. 2018, arXiv 1812.06162, eq. 2.8) predicts the critical batch size
(B_crit ~ B_simple) and grows as the loss falls, so its value along training is what matters.
Each update turns gradients you already have into one unbiased pair (tr(Sigma), |G|^2):

- two batch sizes (appendix A): with G_s, G_b the mean-loss gradients of batches of
  b_small < b_big examples drawn from the data (the small batch may be part of the big one),
      |G|^2     ~ (b_big |G_b|^2 - b_small |G_s|^2) / (b_big - b_small)
      tr(Sigma) ~ (|G_s|^2 - |G_b|^2) / (1/b_small - 1/b_big)
  since E|G_B|^2 = |G|^2 + tr(Sigma)/B.  Only the two squared norms are needed.
- per-example gradients g_1..g_N (N >= 2) with mean g:
      tr(Sigma) ~ N/(N-1) ((1/N) sum_n |g_n|^2 - |g|^2),   |G|^2 ~ |g|^2 - tr(Sigma)/N.

The raw pairs are very noisy; numerator and denominator are averaged separately with an
Adam-style bias-corrected EMA and the ratio is taken (`empirical.ema_ratio`, which also gives
the delta-method standard error and Fieller's interval, unbounded above while |G|^2 is not
resolved).  The first update's B_simple is the raw ratio.

Distributed data parallel: the per-rank gradient before the all-reduce is the small batch
(b_small = the per-rank batch) and the all-reduced gradient the big one (b_big = world size x
b_small) -- the two batch sizes come free.  |G_s|^2 may be the mean over ranks of the local
squared norms (all-reduce one scalar): still unbiased, less noisy.  A sketch, with a DDP
communication hook that sees each bucket's local gradient before averaging:

    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
    local = []
    def hook(state, bucket):
        local.append(bucket.buffer().double().square().sum())
        return default_hooks.allreduce_hook(state, bucket)
    ddp_model.register_comm_hook(None, hook)
    ...
    loss.backward(); small = torch.stack(local).sum(); local.clear()
    torch.distributed.all_reduce(small); small /= world_size
    big = sum(p.grad.double().square().sum() for p in ddp_model.parameters())
    tracker.update_norms(step, small.item(), big.item(), b_small=b, b_big=world_size * b)

(only rank 0 needs a log; tests/empirical/test_track_ddp.py runs this with two processes).
On one process, `backward` splits the batch: one backward pass on the first b_small examples
and one on the rest give both gradients for the cost of one pass over the batch, and leave
the big-batch gradient in .grad for the optimizer.

Log: with `log=PATH` every update appends one JSON line (append-only, flushed): a first line
{"kind": "config", ...} (decay, z, the estimator, the interval method, your `info`, the
parameter count and versions) and then one {"kind": "update", "step", "b_simple", "interval"
(null for an unbounded end), "se", "g2", "trace_sigma", "updates", "effective_updates",
"raw": {the raw pair and its inputs}, "loss", "metric"} per update.
`nqm figures --noise-log PATH` plots it; `nqm calibrate --noise-log PATH` reports it beside the
measured critical batch size.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path

import torch

from empirical.ema_ratio import EmaRatio, RatioEstimate
from empirical.noise import two_batch_pair

INTERVAL_METHOD = ("Fieller interval (se: delta method) for the ratio of bias-corrected EMAs, "
                   "weighted (co)variances of the raw estimates, normal quantile z")


@dataclass(frozen=True)
class TrackerConfig:
    """ema: decay beta of the moving averages, in [0, 1); z: the interval's normal quantile
    (1.96: 95%), > 0; log_every: write one log line per this many updates (>= 1)."""

    ema: float = 0.95
    z: float = 1.96
    log_every: int = 1

    def __post_init__(self):
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")
        if not (math.isfinite(self.z) and self.z > 0):
            raise ValueError(f"z must be a finite number > 0, got {self.z}")
        if int(self.log_every) != self.log_every or self.log_every < 1:
            raise ValueError(f"log_every must be an integer >= 1, got {self.log_every}")


def _flat_list(grads, name: str) -> list[torch.Tensor]:
    """A tensor, a sequence of tensors or a dict of tensors as a list of tensors."""
    if isinstance(grads, torch.Tensor):
        return [grads]
    items = list(grads.values()) if isinstance(grads, dict) else list(grads)
    if not items or not all(isinstance(g, torch.Tensor) for g in items):
        raise ValueError(f"{name} must be a tensor, or a non-empty list or dict of tensors")
    return items


def squared_norm(grads, name: str = "grads") -> float:
    """|g|^2 in float64 of a tensor, list or dict of tensors (one device sync); ValueError
    naming `name` when it is not finite."""
    parts = _flat_list(grads, name)
    norms = [torch.linalg.vector_norm(g.detach(), dtype=torch.float64) for g in parts]
    total = float(torch.stack(norms).square().sum())
    if not math.isfinite(total):
        raise ValueError(f"{name} contains non-finite values")
    return total


def per_example_pair(per_example_grads) -> tuple[float, float, int]:
    """(tr(Sigma), |G|^2, N) from per-example gradients: an (N, ...) tensor or a list/dict of
    (N, ...) tensors, one per parameter (as `torch.func.vmap(grad(...))` returns)."""
    parts = [g.detach().double() for g in _flat_list(per_example_grads, "per_example_grads")]
    n = parts[0].shape[0] if parts[0].dim() else 0
    if n < 2 or any(g.dim() == 0 or g.shape[0] != n for g in parts):
        raise ValueError("per_example_grads needs the same leading example dimension N >= 2 "
                         f"in every tensor, got shapes {[tuple(g.shape) for g in parts]}")
    flat = torch.cat([g.reshape(n, -1) for g in parts], dim=1)
    mean_sq = float(flat.square().sum(1).mean())
    g_sq = float(flat.mean(0).square().sum())
    if not (math.isfinite(mean_sq) and math.isfinite(g_sq)):
        raise ValueError("per_example_grads contains non-finite values")
    trace_sigma = n / (n - 1) * (mean_sq - g_sq)
    return trace_sigma, g_sq - trace_sigma / n, n


def _json_interval(ci) -> list | None:
    """[low, high] with null for an unbounded end (JSON has no infinity)."""
    return None if ci is None else [v if math.isfinite(v) else None for v in ci]


def _check_sizes(b_small, b_big) -> None:
    for name, b in (("b_small", b_small), ("b_big", b_big)):
        if isinstance(b, bool) or not isinstance(b, numbers.Real) or not math.isfinite(b) \
                or b != int(b) or b < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {b!r}")
    if b_small >= b_big:
        raise ValueError(f"b_small must be < b_big, got b_small={b_small}, b_big={b_big}")


def _check_step(step) -> int:
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ValueError(f"step must be an integer >= 0, got {step!r}")
    return int(step)


def _optional_number(value, name: str) -> float | None:
    if value is None:
        return None
    v = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    return v


@dataclass
class NoiseScaleTracker:
    """B_simple along training (module docstring).

    model: optional, needed only by `backward` (and counted in the log); log: a JSON Lines
    path to append to, or None; config: the estimator settings (`TrackerConfig`); info: any
    JSON-able description of the run written into the log's config line.  After each update:
    `b_simple`, `interval`, `se`, `g2`, `trace_sigma` (the bias-corrected averages) and
    `estimate` (all of them).
    """

    model: torch.nn.Module | None = None
    log: str | Path | None = None
    config: TrackerConfig = field(default_factory=TrackerConfig)
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.config, TrackerConfig):
            raise ValueError(f"config must be a TrackerConfig, got {type(self.config).__name__}")
        try:
            json.dumps(self.info, allow_nan=False)
        except (TypeError, ValueError):
            raise ValueError("info must be a JSON-serialisable dict") from None
        self._ratio = EmaRatio(self.config.ema, self.config.z)
        self.estimate: RatioEstimate | None = None
        self._fh = None
        self._kind: str | None = None
        self._header = False

    # -- results ---------------------------------------------------------------------------
    @property
    def b_simple(self) -> float | None:
        """tr(Sigma) / |G|^2 of the averages (None before an update or while |G|^2 <= 0)."""
        return None if self.estimate is None else self.estimate.ratio

    @property
    def interval(self) -> tuple[float, float] | None:
        """Fieller's interval (`empirical.ema_ratio`; high end math.inf while |G|^2 is not
        resolved; None before the second update)."""
        return None if self.estimate is None else self.estimate.interval

    @property
    def se(self) -> float | None:
        """The delta-method standard error of b_simple."""
        return None if self.estimate is None else self.estimate.se

    @property
    def g2(self) -> float | None:
        """The bias-corrected average of the unbiased |G|^2 estimates."""
        return None if self.estimate is None else self.estimate.denominator

    @property
    def trace_sigma(self) -> float | None:
        """The bias-corrected average of the unbiased tr(Sigma) estimates."""
        return None if self.estimate is None else self.estimate.numerator

    # -- updates ---------------------------------------------------------------------------
    def update(self, step: int, small_grads, big_grads, b_small: int, b_big: int,
               loss=None, metric=None) -> RatioEstimate:
        """One two-batch update from the gradients (tensor, list or dict of tensors of the
        same shapes, e.g. [p.grad for p in model.parameters()]) of the mean loss over a batch
        of b_small and one of b_big examples."""
        small = _flat_list(small_grads, "small_grads")     # once: generators are accepted
        big = _flat_list(big_grads, "big_grads")
        shapes_s, shapes_b = [tuple(g.shape) for g in small], [tuple(g.shape) for g in big]
        if shapes_s != shapes_b:
            raise ValueError(f"big_grads shapes {shapes_b} differ from small_grads shapes "
                             f"{shapes_s}")
        return self.update_norms(step, squared_norm(small, "small_grads"),
                                 squared_norm(big, "big_grads"), b_small, b_big, loss, metric)

    def update_norms(self, step: int, small_sq_norm: float, big_sq_norm: float, b_small: int,
                     b_big: int, loss=None, metric=None) -> RatioEstimate:
        """One two-batch update from the squared norms |G_small|^2 and |G_big|^2 (the DDP
        form: see the module docstring)."""
        _check_sizes(b_small, b_big)
        for name, v in (("small_sq_norm", small_sq_norm), ("big_sq_norm", big_sq_norm)):
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v}")
        trace_sigma, g2 = two_batch_pair(small_sq_norm, big_sq_norm, b_small, b_big)
        raw = {"small_sq_norm": small_sq_norm, "big_sq_norm": big_sq_norm,
               "b_small": int(b_small), "b_big": int(b_big)}
        return self._add(step, "two-batch", trace_sigma, g2, raw, loss, metric)

    def update_per_example(self, step: int, per_example_grads, loss=None, metric=None
                           ) -> RatioEstimate:
        """One update from the per-example gradients of N >= 2 examples drawn from the data
        (`per_example_pair`)."""
        trace_sigma, g2, n = per_example_pair(per_example_grads)
        return self._add(step, "per-example", trace_sigma, g2, {"examples": n}, loss, metric)

    def backward(self, step: int, loss_fn, x: torch.Tensor, y: torch.Tensor, b_small: int,
                 metric=None) -> torch.Tensor:
        """Backpropagate the mean loss of the batch (x, y) into the model's .grad and update
        the tracker on the way, for the cost of one backward pass: the gradient of the first
        b_small examples and of the rest are combined, G_big = (b_small G_small + (B - b_small)
        G_rest) / B, exactly so for a mean loss `loss_fn(model(x), y)`.  Returns that loss
        (detached).  Use it in place of `loss.backward()`; gradients already in .grad are
        replaced.  A model whose output for one example depends on the others in the batch
        (BatchNorm in training mode) is not split exactly: compute the two gradients yourself
        and call `update`."""
        if self.model is None:
            raise ValueError("model must be given to the tracker for backward")
        big = x.shape[0]
        if y.shape[0] != big:
            raise ValueError(f"y has {y.shape[0]} examples but x has {big}")
        _check_sizes(b_small, big)
        params = [p for p in self.model.parameters() if p.requires_grad]
        loss_s = loss_fn(self.model(x[:b_small]), y[:b_small])
        small = torch.autograd.grad(loss_s, params, allow_unused=True)
        small = [torch.zeros_like(p) if g is None else g for p, g in zip(params, small)]
        loss_r = loss_fn(self.model(x[b_small:]), y[b_small:])
        rest = torch.autograd.grad(loss_r, params, allow_unused=True)
        ws, wr = b_small / big, (big - b_small) / big
        for p, gs, gr in zip(params, small, rest):
            p.grad = ws * gs + (wr * gr if gr is not None else 0.0)
        loss = (ws * loss_s + wr * loss_r).detach()
        self.update(step, small, [p.grad for p in params], b_small, big, loss, metric)
        return loss

    # -- log -------------------------------------------------------------------------------
    def _add(self, step, kind, trace_sigma, g2, raw, loss, metric) -> RatioEstimate:
        step = _check_step(step)
        loss, metric = _optional_number(loss, "loss"), _optional_number(metric, "metric")
        if self._kind is not None and kind != self._kind:
            raise ValueError(f"this tracker averages {self._kind} estimates; "
                             f"use a new tracker for {kind} ones")
        self._kind = kind
        self.estimate = est = self._ratio.add(trace_sigma, g2)
        if self.log is not None and (est.n - 1) % self.config.log_every == 0:
            raw = {**raw, "trace_sigma": trace_sigma, "g2": g2}
            self._write(kind, {"kind": "update", "step": step, "b_simple": est.ratio,
                               "interval": _json_interval(est.interval),
                               "se": est.se, "g2": est.denominator,
                               "trace_sigma": est.numerator, "updates": est.n,
                               "effective_updates": est.effective_n, "raw": raw,
                               "loss": loss, "metric": metric})
        return est

    def _write(self, kind: str, record: dict) -> None:
        if self._fh is None:
            self._fh = open(self.log, "a", encoding="utf-8")
        if not self._header:
            from empirical.versions import versions

            self._header = True
            params = (None if self.model is None else
                      sum(p.numel() for p in self.model.parameters()))
            self._line({"kind": "config", "estimator": kind, "ema": self.config.ema,
                        "z": self.config.z, "log_every": self.config.log_every,
                        "interval_method": INTERVAL_METHOD, "parameters": params,
                        "info": self.info, "versions": versions()})
        self._line(record)

    def _line(self, record: dict) -> None:
        self._fh.write(json.dumps(record, allow_nan=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        """Close the log file (a later update reopens it and appends to the same run)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
