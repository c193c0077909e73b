"""Train a population of trials (one metaparameter setting each) as one vmapped model.

All P trials of a batch size see the same batches (common random numbers) and start from
their own initialisation (trial i: `make_model(seed + i)`).  Parameters are stacked along a
leading trial axis; the forward pass is one `torch.func.vmap` over the trials and one backward
pass of the summed per-trial losses gives every trial's own gradient (trials share no
parameters).  Shallue et al. 2019 train each trial separately; the mathematics is the same.

The update rules, learning-rate decay and momentum default are those of
`empirical.train_config` (PyTorch's conventions, per trial i with lr_i = cfg.lr[i] and
beta_i = cfg.betas[i]); `empirical.plain` is the same with torch.optim, one trial at a time.

Steps to result of a trial = the first evaluated step whose metric is <= the target; the
evaluation steps grow geometrically by at most `StopRule.eval_ratio` (default 5%), which bounds
the quantisation error.  The population stops when every trial has reached the target or
diverged (`stop_when_done`), or, with `stop_on_first`, at the first evaluation where some trial
has reached it, or after step `stop_at`: for steps-to-result, the minimum over trials, nothing
later can matter.  A trial whose training loss is not finite, or exceeds `diverge_factor`
times its initial loss, is marked diverged (at that step: `diverged_at`) and frozen.  The
initial loss is that of the trial's initial parameters averaged over the first
W = max(1, 64 // batch_size) batches, and the comparison starts at step W: at small batch
sizes one batch's loss can be arbitrarily small.

A model that vmap cannot run over the trials (BatchNorm running statistics, in-place buffer
updates, control flow on parameter values; found by trying the first batch) trains trial by
trial instead (`_Loop`): each trial's own module in train mode with its slice of the same
stacked parameters and the same `_Optimizer`, evaluated in eval mode; this is said once.
Everything runs on the device of the workload's model; the batches' generator is a CPU one,
so every device sees the same batches.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch.func import functional_call, stack_module_state, vmap

from empirical.train_config import OPTIMIZERS, TrainConfig
from empirical.workloads import Workload

__all__ = ["OPTIMIZERS", "PopulationResult", "StopRule", "eval_schedule", "train_population"]

Params = dict[str, torch.Tensor]


class PopulationResult(NamedTuple):
    """What a population run gives back, per trial and for the run."""

    steps: list[int | None]        # steps to result per trial (None: not reached)
    diverged: list[bool]
    eval_steps: list[int]
    curves: np.ndarray             # (P, len(eval_steps)) metric; NaN where not evaluated
    steps_run: int
    diverged_at: list[int | None] | None = None   # the step a trial was found diverged


@dataclass(frozen=True)
class StopRule:
    """When to evaluate and when to stop (see the module docstring)."""

    eval_ratio: float = 1.05
    diverge_factor: float = 1e3
    stop_when_done: bool = True
    stop_on_first: bool = False
    stop_at: int | None = None

    def __post_init__(self):
        if not (math.isfinite(self.eval_ratio) and self.eval_ratio > 1):
            raise ValueError(f"eval_ratio must be finite and > 1, got {self.eval_ratio}")
        if not self.diverge_factor > 0:
            raise ValueError(f"diverge_factor must be > 0, got {self.diverge_factor}")
        if self.stop_at is not None and self.stop_at < 1:
            raise ValueError(f"stop_at must be >= 1 or None, got {self.stop_at}")


def eval_schedule(budget: int, ratio: float = 1.05) -> list[int]:
    """Steps 1, 2, ..., each at most `ratio` times the previous (so within 5% by default)."""
    out, k = [], 1
    while k <= budget:
        out.append(k)
        k = max(k + 1, int(math.floor(k * ratio)))
    if out[-1] != budget:
        out.append(budget)
    return out


def _stack(models: list[torch.nn.Module]) -> tuple[Params, torch.nn.Module]:
    """The trials' initial parameters stacked on a leading axis, and a copy of the model that
    supplies the architecture: parameter-free (meta device) when the model has no buffers,
    else keeping the first trial's buffers (the caller checks that all trials' agree)."""
    params, _ = stack_module_state(models)
    base = copy.deepcopy(models[0])
    if not list(base.buffers()):
        base = base.to("meta")
    return {k: v.detach().clone() for k, v in params.items()}, base


def _same_buffers(models: list[torch.nn.Module]) -> bool:
    """Whether every trial's model has the same buffers (shared by the vmapped trials)."""
    first = dict(models[0].named_buffers())
    return all(set(first) == set(b := dict(m.named_buffers()))
               and all(torch.equal(first[k], b[k]) for k in first) for m in models[1:])


def _losses_fn(workload: Workload, base: torch.nn.Module) -> Callable:
    """(params, x, y) -> the (P,) per-trial losses of one batch, vmapped over the trials."""
    def loss_fn(p, x, y):
        return workload.loss(functional_call(base, p, (x,)), y)

    return vmap(loss_fn, in_dims=(0, None, None))


def _gradients(batched_loss: Callable, params: Params, x, y) -> tuple[Params, torch.Tensor]:
    """Every trial's gradient and loss on one batch.  Trials share no parameters, so the
    gradient of the summed per-trial losses with respect to trial i's parameters is trial i's
    own gradient: one backward pass."""
    leaves = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    with torch.enable_grad():
        losses = batched_loss(leaves, x, y)
        grads = torch.autograd.grad(losses.sum(), list(leaves.values()))
    return dict(zip(leaves, grads)), losses.detach()


class _Vmapped:
    """All trials as one vmapped model: one forward and one backward pass per step."""

    def __init__(self, workload: Workload, models: list[torch.nn.Module]):
        self.workload = workload
        self.params, self.base = _stack(models)
        self.losses = _losses_fn(workload, self.base)

    def gradients(self, params: Params, x, y) -> tuple[Params, torch.Tensor]:
        """Every trial's gradient and loss on one batch."""
        return _gradients(self.losses, params, x, y)

    def evaluate(self, params: Params) -> torch.Tensor:
        """The metric of every trial, shape (P,)."""
        metric = self.workload.evaluate(self.base.eval(), params)
        self.base.train()
        return metric


class _Loop:
    """The trials one at a time, for models that cannot be vmapped (BatchNorm running
    statistics, in-place buffer updates, control flow on parameter values): trial i runs its
    own module (its own buffers) in train mode on the step's batch with its slice of the
    stacked parameters, and is evaluated in eval mode.  The updates are the same
    `_Optimizer` on the same stacked parameters as the vmapped path."""

    def __init__(self, workload: Workload, models: list[torch.nn.Module]):
        self.workload, self.models = workload, models
        self.params, _ = _stack(models)

    def gradients(self, params: Params, x, y) -> tuple[Params, torch.Tensor]:
        """Every trial's gradient and loss on one batch, trial by trial."""
        grads: dict[str, list] = {k: [] for k in params}
        losses = []
        for i, m in enumerate(self.models):
            leaves = {k: v[i].detach().requires_grad_(True) for k, v in params.items()}
            with torch.enable_grad():
                loss = self.workload.loss(functional_call(m.train(), leaves, (x,)), y)
                g = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
            for (k, v), gk in zip(leaves.items(), g):
                grads[k].append(torch.zeros_like(v) if gk is None else gk)
            losses.append(loss.detach())
        return {k: torch.stack(v) for k, v in grads.items()}, torch.stack(losses)

    def losses(self, params: Params, x, y) -> torch.Tensor:
        """Every trial's loss on one batch, leaving the modules' buffers untouched."""
        out = []
        for i, m in enumerate(self.models):
            state = {**{k: b.clone() for k, b in m.named_buffers()},
                     **{k: v[i] for k, v in params.items()}}
            out.append(self.workload.loss(functional_call(m.train(), state, (x,)), y))
        return torch.stack(out)

    def evaluate(self, params: Params) -> torch.Tensor:
        """The metric of every trial, each in eval mode with its own buffers."""
        out = []
        for i, m in enumerate(self.models):
            out.append(self.workload.evaluate(m.eval(), {k: v[i:i + 1]
                                                         for k, v in params.items()})[0])
            m.train()
        return torch.stack(out)


def _say_once(message: str, _said: set = set()) -> None:   # noqa: B006 (the memory)
    """The default `warn` of `train_population`: one stderr line per message and process."""
    import sys

    if message not in _said:
        _said.add(message)
        print(message, file=sys.stderr)


def _trainer(workload: Workload, trials: int, seed: int, per_trial: bool,
             warn: Callable[[str], None], x, y):
    """The vmapped trainer when the model allows it (tried on the first batch `x`, `y`),
    else the per-trial loop, said once through `warn`."""
    models = [workload.make_model(seed + i) for i in range(trials)]
    if per_trial:
        return _Loop(workload, models)
    reason = None if _same_buffers(models) else "the trials' buffers differ"
    if reason is None:
        try:
            trainer = _Vmapped(workload, models)
            trainer.gradients(trainer.params, x, y)
            return trainer
        except Exception as exc:   # whatever vmap cannot do: run the trials one at a time
            text = (str(exc).strip().splitlines() or [""])[0]
            text = text if len(text) <= 100 else text[:97] + "..."
            reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    warn(f"note: the {workload.name} model cannot be vmapped over trials ({reason}); "
         "training the trials one at a time (same updates, slower)")
    return _Loop(workload, [workload.make_model(seed + i) for i in range(trials)])


def _per_trial(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (P,) tensor shaped to broadcast against a stacked parameter `like`."""
    return t.view(-1, *([1] * (like.dim() - 1)))


class _Optimizer:
    """The update rules of `empirical.train_config` applied in place to stacked parameters."""

    def __init__(self, cfg: TrainConfig, params: Params):
        self.cfg = cfg
        device = next(iter(params.values())).device
        self.beta = torch.as_tensor(cfg.betas, dtype=torch.float32, device=device)
        self.buf = {k: torch.zeros_like(v) for k, v in params.items()}
        self.sq = ({k: torch.zeros_like(v) for k, v in params.items()}
                   if cfg.optimizer == "adam" else None)

    def step(self, params: Params, grads: Params, lr_t: torch.Tensor, t: int) -> None:
        """One update at step t (1-based) with per-trial learning rates `lr_t` (0 = frozen)."""
        kind, beta2, eps = self.cfg.optimizer, self.cfg.beta2, self.cfg.eps
        for k, p in params.items():
            g = torch.nan_to_num(grads[k])
            a = _per_trial(lr_t, p)
            b = _per_trial(self.beta, p)
            if kind == "sgd":
                p.sub_(a * g)
            elif kind in ("momentum", "nesterov"):
                self.buf[k] = b * self.buf[k] + g
                p.sub_(a * (g + b * self.buf[k] if kind == "nesterov" else self.buf[k]))
            else:
                self.buf[k] = b * self.buf[k] + (1 - b) * g
                self.sq[k] = beta2 * self.sq[k] + (1 - beta2) * g * g
                mhat = self.buf[k] / (1 - b**t)
                vhat = self.sq[k] / (1 - beta2**t)
                p.sub_(a * mhat / (vhat.sqrt() + eps))


class _Divergence:
    """Tracks each trial's initial loss (mean over the first W batches) and flags divergence."""

    def __init__(self, params: Params, batch_size: int, factor: float):
        self.warmup = max(1, 64 // batch_size)
        self.init = {k: v.clone() for k, v in params.items()} if self.warmup > 1 else None
        first = next(iter(params.values()))
        self.loss0 = torch.zeros(first.shape[0], device=first.device)
        self.factor = factor

    def bad(self, t: int, losses: torch.Tensor, batched_loss: Callable, x, y) -> torch.Tensor:
        """The trials whose loss at step t is not finite or above factor x initial loss."""
        if t <= self.warmup:   # at t = 1 the parameters are still the initial ones
            first = losses if t == 1 else batched_loss(self.init, x, y)
            self.loss0 += first.abs() / self.warmup
        bad = ~torch.isfinite(losses)
        if t >= self.warmup:
            bad |= losses > self.factor * self.loss0.clamp_min(1e-12)
        return bad


def train_population(workload: Workload, cfg: TrainConfig, batch_size: int, seed: int = 0,
                     stop: StopRule = StopRule(), per_trial: bool = False,
                     warn: Callable[[str], None] | None = None) -> PopulationResult:
    """Train cfg.trials trials together (trial i: lr cfg.lr[i], beta cfg.betas[i]) on batches
    of `batch_size`; see the module docstring.  A model that cannot be vmapped over the trials
    (or `per_trial`) trains trial by trial with the same updates (`_Loop`), said once through
    `warn` (default: a line on stderr).  Everything runs on the device of the workload's
    model; batches come from a CPU generator seeded with `seed`."""
    budget = int(cfg.budget or workload.budget)
    P = cfg.trials
    gen = torch.Generator().manual_seed(seed)
    x, y = workload.batch(batch_size, gen)
    trainer = _trainer(workload, P, seed, per_trial, warn or _say_once, x, y)
    params = trainer.params
    lr = torch.as_tensor(cfg.lr, dtype=torch.float32, device=next(iter(params.values())).device)
    opt = _Optimizer(cfg, params)
    divergence = _Divergence(params, batch_size, stop.diverge_factor)
    evals = eval_schedule(budget, stop.eval_ratio)
    column = {s: j for j, s in enumerate(evals)}
    curves = np.full((P, len(evals)), np.nan)
    steps: list[int | None] = [None] * P
    diverged_at: list[int | None] = [None] * P
    diverged = torch.zeros(P, dtype=torch.bool, device=lr.device)
    done = torch.zeros(P, dtype=torch.bool, device=lr.device)
    t = 0
    with torch.no_grad():
        for t in range(1, budget + 1):
            if t > 1:
                x, y = workload.batch(batch_size, gen)
            grads, losses = trainer.gradients(params, x, y)
            new = divergence.bad(t, losses, trainer.losses, x, y) & ~done & ~diverged
            if bool(new.any()):
                for i in torch.nonzero(new).flatten().tolist():
                    diverged_at[i] = t
                diverged |= new
            active = ~(diverged | done)
            opt.step(params, grads, lr * cfg.lr_factor(t, budget) * active, t)
            if t in column:
                metric = trainer.evaluate(params)
                curves[:, column[t]] = metric.detach().cpu().numpy()
                hit = (metric <= workload.target) & ~done & ~diverged
                for i in torch.nonzero(hit).flatten().tolist():
                    steps[i] = t
                done |= hit
                if _should_stop(stop, done, diverged):
                    break
            if stop.stop_at is not None and t >= stop.stop_at:
                break
    return PopulationResult(steps, diverged.tolist(), evals, curves, t, diverged_at)


def _should_stop(stop: StopRule, done: torch.Tensor, diverged: torch.Tensor) -> bool:
    """After an evaluation: every trial finished (`stop_when_done`) or one reached the target
    (`stop_on_first`)."""
    if stop.stop_when_done and bool((done | diverged).all()):
        return True
    return stop.stop_on_first and bool(done.any())
