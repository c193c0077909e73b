"""The plain reference: one trial at a time with torch.optim, written the obvious way.

Used as the oracle for the population trainer's tests, as the baseline of
`benchmarks/bench_sweep.py` and for the reference run of `empirical.checkpoints`.  Same
configuration (`empirical.train_config.TrainConfig`), init (`make_model(seed + trial)`) and
batches (generator seeded with `seed`) as `empirical.population.train_population`.
"""

from __future__ import annotations

import torch

from empirical.train_config import TrainConfig
from empirical.workloads import Workload


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, trial: int = 0
                   ) -> torch.optim.Optimizer:
    """torch.optim's SGD (plain, heavy-ball, Nesterov) or Adam for trial `trial` of `cfg`,
    with the same defaults as the population trainer (`TrainConfig.betas`); no decay."""
    lr, beta = cfg.lr[trial], cfg.betas[trial]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, betas=(beta, cfg.beta2), eps=cfg.eps)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=beta,
                           nesterov=cfg.optimizer == "nesterov")


def train_one(workload: Workload, cfg: TrainConfig, batch_size: int, seed: int, trial: int,
              steps: int) -> torch.nn.Module:
    """Trial `trial` of `cfg` trained for `steps` steps at constant learning rate."""
    model = workload.make_model(seed + trial)
    opt = make_optimizer(model, cfg, trial)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x, y = workload.batch(batch_size, gen)
        opt.zero_grad()
        workload.loss(model(x), y).backward()
        opt.step()
    return model
