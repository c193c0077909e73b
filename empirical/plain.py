"""The plain reference: one trial at a time with torch.optim, written the obvious way.

Used as the oracle for the population trainer's tests and as the baseline of
`benchmarks/bench_sweep.py`.  Same init (`make_model(seed + trial)`) and batches (generator
seeded with `seed`) as `empirical.population.train_population`.
"""

from __future__ import annotations

import torch

from empirical.workloads import Workload


def make_optimizer(model: torch.nn.Module, optimizer: str, lr: float,
                   momentum: float | None = None) -> torch.optim.Optimizer:
    """torch.optim's SGD (plain, heavy-ball, Nesterov) or Adam, as the population trainer
    defines them (`momentum` is Adam's beta1, default 0.9)."""
    if optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, betas=(momentum or 0.9, 0.999),
                                eps=1e-8)
    if optimizer in ("momentum", "nesterov") and momentum is None:
        momentum = 0.9
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum or 0.0,
                           nesterov=optimizer == "nesterov")


def train_one(workload: Workload, optimizer: str, lr: float, momentum: float | None,
              batch_size: int, seed: int, trial: int, steps: int) -> torch.nn.Module:
    model = workload.make_model(seed + trial)
    opt = make_optimizer(model, optimizer, lr, momentum)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x, y = workload.batch(batch_size, gen)
        opt.zero_grad()
        workload.loss(model(x), y).backward()
        opt.step()
    return model
