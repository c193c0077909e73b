"""Train a population of trials (one metaparameter setting each) as one vmapped model.

All P trials of a batch size see the same batches (common random numbers) and start from
their own initialisation (trial i: `make_model(seed + i)`).  Parameters are stacked along a
leading trial axis; the forward pass is one `torch.func.vmap` over the trials and one backward
pass of the summed per-trial losses gives every trial's own gradient (trials share no
parameters).  Shallue et al. 2019 train each trial separately; the mathematics is the same.

Updates follow PyTorch's conventions, per trial i with lr_t = lr_i * m_t (m_t = 1, or linear
decay to `final` over the budget):
    sgd        p <- p - lr_t g
    momentum   b <- beta b + g;             p <- p - lr_t b                 (torch.optim.SGD)
    nesterov   b <- beta b + g;             p <- p - lr_t (g + beta b)      (nesterov=True)
    adam       m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
               p <- p - lr_t (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)  (torch.optim.Adam)
Symbols -> arguments: lr_i = lr[i], beta = b1 = momentum[i], b2 = beta2, eps = eps.

Steps to result of a trial = the first evaluated step whose metric is <= the target; the
evaluation steps grow geometrically by at most `eval_ratio` (default 5%), which bounds the
quantisation error.  The population stops when every trial has reached the target or
diverged (`stop_when_done`), or, with `stop_on_first`, at the first evaluation where some trial
has reached it, or after step `stop_at`: for steps-to-result, the minimum over trials, nothing
later can matter.  A trial whose training loss is not finite, or exceeds `diverge_factor`
times its initial loss, is marked diverged and frozen.  The initial loss is that of the trial's
initial parameters averaged over the first W = max(1, 64 // batch_size) batches, and the
comparison starts at step W: at small batch sizes one batch's loss can be arbitrarily small.
"""

from __future__ import annotations

import copy
import math
from typing import NamedTuple

import numpy as np
import torch
from torch.func import functional_call, stack_module_state, vmap

from empirical.workloads import Workload

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")


class PopulationResult(NamedTuple):
    steps: list[int | None]        # steps to result per trial (None: not reached)
    diverged: list[bool]
    eval_steps: list[int]
    curves: np.ndarray             # (P, len(eval_steps)) metric; NaN where not evaluated
    steps_run: int


def eval_schedule(budget: int, ratio: float = 1.05) -> list[int]:
    """Steps 1, 2, ..., each at most `ratio` times the previous (so within 5% by default)."""
    out, k = [], 1
    while k <= budget:
        out.append(k)
        k = max(k + 1, int(math.floor(k * ratio)))
    if out[-1] != budget:
        out.append(budget)
    return out


def train_population(workload: Workload, optimizer: str, lr, batch_size: int, seed: int = 0,
                     momentum=None, beta2: float = 0.999, eps: float = 1e-8,
                     budget: int | None = None, decay: str = "constant", final: float = 0.0,
                     eval_ratio: float = 1.05, diverge_factor: float = 1e3,
                     stop_when_done: bool = True, stop_on_first: bool = False,
                     stop_at: int | None = None) -> PopulationResult:
    """Train len(lr) trials together; see the module docstring."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got '{optimizer}'")
    if decay not in ("constant", "linear"):
        raise ValueError(f"decay must be 'constant' or 'linear', got '{decay}'")
    budget = int(budget or workload.budget)
    lr = torch.as_tensor(lr, dtype=torch.float32).reshape(-1)
    P = lr.numel()
    beta = torch.as_tensor(0.9 if momentum is None and optimizer == "adam" else
                           (0.0 if momentum is None else momentum),
                           dtype=torch.float32).expand(P).clone()
    models = [workload.make_model(seed + i) for i in range(P)]
    params, _ = stack_module_state(models)
    params = {k: v.detach().clone() for k, v in params.items()}
    base = copy.deepcopy(models[0]).to("meta")

    def loss_fn(p, x, y):
        return workload.loss(functional_call(base, p, (x,)), y)

    batched_loss = vmap(loss_fn, in_dims=(0, None, None))

    def step_fn(params, x, y):
        # trials share no parameters, so the gradient of the summed per-trial losses with
        # respect to trial i's parameters is trial i's own gradient: one backward pass
        leaves = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        with torch.enable_grad():
            losses = batched_loss(leaves, x, y)
            grads = torch.autograd.grad(losses.sum(), list(leaves.values()))
        return dict(zip(leaves, grads)), losses.detach()
    buf = {k: torch.zeros_like(v) for k, v in params.items()}
    sq = {k: torch.zeros_like(v) for k, v in params.items()} if optimizer == "adam" else None

    def per_trial(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return t.view(-1, *([1] * (like.dim() - 1)))

    evals = eval_schedule(budget, eval_ratio)
    eval_set = set(evals)
    curves = np.full((P, len(evals)), np.nan)
    steps: list[int | None] = [None] * P
    diverged = torch.zeros(P, dtype=torch.bool)
    done = torch.zeros(P, dtype=torch.bool)
    gen = torch.Generator().manual_seed(seed)
    warmup = max(1, 64 // batch_size)
    init = {k: v.clone() for k, v in params.items()} if warmup > 1 else None
    loss0 = torch.zeros(P)
    t = 0
    with torch.no_grad():
        for t in range(1, budget + 1):
            x, y = workload.batch(batch_size, gen)
            grads, losses = step_fn(params, x, y)
            if t <= warmup:   # at t = 1 the parameters are still the initial ones
                loss0 += (losses if t == 1 else batched_loss(init, x, y)).abs() / warmup
            bad = ~torch.isfinite(losses)
            if t >= warmup:
                bad |= losses > diverge_factor * loss0.clamp_min(1e-12)
            diverged |= bad & ~done
            active = ~(diverged | done)
            m = 1.0 if decay == "constant" else 1.0 - (1.0 - final) * (t - 1) / max(budget - 1, 1)
            lr_t = lr * m * active
            for k, p in params.items():
                g = torch.nan_to_num(grads[k])
                a = per_trial(lr_t, p)
                b = per_trial(beta, p)
                if optimizer == "sgd":
                    p.sub_(a * g)
                elif optimizer in ("momentum", "nesterov"):
                    buf[k] = b * buf[k] + g
                    p.sub_(a * (g + b * buf[k] if optimizer == "nesterov" else buf[k]))
                else:
                    buf[k] = b * buf[k] + (1 - b) * g
                    sq[k] = beta2 * sq[k] + (1 - beta2) * g * g
                    mhat = buf[k] / (1 - b**t)
                    vhat = sq[k] / (1 - beta2**t)
                    p.sub_(a * mhat / (vhat.sqrt() + eps))
            if t in eval_set:
                j = evals.index(t)
                metric = workload.evaluate(base, params)
                curves[:, j] = metric.numpy()
                hit = (metric <= workload.target) & ~done & ~diverged
                for i in torch.nonzero(hit).flatten().tolist():
                    steps[i] = t
                done |= hit
                if stop_when_done and bool((done | diverged).all()):
                    break
                if stop_on_first and bool(done.any()):
                    break
            if stop_at is not None and t >= stop_at:
                break
    return PopulationResult(steps, diverged.tolist(), evals, curves, t)
