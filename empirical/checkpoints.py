"""Checkpoints along one reference training run, saved and loaded as tensors only.

The run trains `workload.make_model(seed)` with the workload's reference optimizer (a plain
torch.optim loop, `empirical.plain.make_optimizer`), batches from a generator seeded with
`seed`, and keeps the parameters at the requested steps and, with `at_target`, at the first
evaluated step whose validation metric is <= the target (evaluations on the geometric
schedule of the sweeps, so within 5% of the step count).  Files hold a plain
{name: tensor} dict written by torch.save and read with torch.load(weights_only=True).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import torch

from empirical.plain import make_optimizer
from empirical.population import eval_schedule
from empirical.train_config import TrainConfig
from empirical.workloads import Workload


class Checkpoint(NamedTuple):
    """The parameters of the reference run at one step, and the validation metric there."""

    label: str                       # "init", "step K" or "target"
    step: int
    params: dict[str, torch.Tensor]
    metric: float


def _metric(workload: Workload, model: torch.nn.Module) -> float:
    return metric(workload, dict(model.named_parameters()), model)


def metric(workload: Workload, params: dict[str, torch.Tensor],
           model: torch.nn.Module | None = None) -> float:
    """The workload's validation metric at `params` (`model` supplies the architecture and
    any buffers; evaluated in eval mode)."""
    model = model or workload.make_model(0)
    was_training = model.training
    with torch.no_grad():
        stacked = {k: v.detach()[None] for k, v in params.items()}
        value = float(workload.evaluate(model.eval(), stacked)[0])
    model.train(was_training)
    return value


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def train_checkpoints(workload: Workload, steps: list[int], at_target: bool, seed: int = 0,
                      optimizer: str | None = None, lr: float | None = None,
                      batch_size: int | None = None, budget: int | None = None
                      ) -> list[Checkpoint]:
    """Checkpoints at `steps` (0 is the initialisation) and, with `at_target`, at the target.

    Raises ValueError when the target is requested but not reached within `budget`."""
    ref = workload.reference
    optimizer = optimizer or ref["optimizer"]
    lr = float(lr if lr is not None else ref["lr"])
    batch_size = int(batch_size or ref["batch_size"])
    budget = int(budget or workload.budget)
    wanted = sorted(set(int(s) for s in steps))
    if wanted and wanted[0] < 0:
        raise ValueError(f"checkpoint steps must be >= 0, got {wanted[0]}")
    last = max(wanted + [0]) if not at_target else max(wanted + [budget])
    model = workload.make_model(seed)
    opt = make_optimizer(model, TrainConfig(optimizer, lr, budget=budget))
    gen = torch.Generator().manual_seed(seed)
    evals = set(eval_schedule(budget)) if at_target else set()
    out = []
    if 0 in wanted:
        out.append(Checkpoint("init", 0, _snapshot(model), _metric(workload, model)))
    reached = not at_target
    for t in range(1, last + 1):
        x, y = workload.batch(batch_size, gen)
        opt.zero_grad()
        loss = workload.loss(model(x), y)
        if not torch.isfinite(loss):
            raise ValueError(f"reference training diverged at step {t} ({optimizer}, lr {lr}); "
                             "pass a smaller --lr")
        loss.backward()
        opt.step()
        if t in wanted:
            out.append(Checkpoint(f"step {t}", t, _snapshot(model), _metric(workload, model)))
        if not reached and t in evals:
            metric = _metric(workload, model)
            if metric <= workload.target:
                out.append(Checkpoint("target", t, _snapshot(model), metric))
                reached = True
                if t >= max(wanted + [0]):
                    break
    if not reached:
        raise ValueError(f"reference training ({optimizer}, lr {lr}, batch {batch_size}) did not "
                         f"reach {workload.metric_name} <= {workload.target} in {budget} steps; "
                         "pass --budget, --lr or --target")
    return sorted(out, key=lambda c: c.step)


def save(params: dict[str, torch.Tensor], path: str | Path) -> None:
    """Written to a temporary file and renamed, so a crash leaves the old file or the new."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({k: v.detach().cpu() for k, v in params.items()}, tmp)
    os.replace(tmp, path)


def _pickles_objects(path: Path) -> bool:
    """Whether `path` holds a well-formed pickle (a torch zip archive's data.pkl, or the file
    itself) that references Python callables or classes: what a tensors-only load refuses."""
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                name = next((n for n in zf.namelist() if n.endswith("data.pkl")), None)
                if name is None:
                    return False
                raw = zf.read(name)
        else:
            raw = path.read_bytes()
        ops = {op.name for op, _, _ in pickletools.genops(raw)}
    except Exception:   # not a pickle stream: the file is unreadable rather than unsafe
        return False
    return bool(ops & {"GLOBAL", "STACK_GLOBAL", "INST"})


def load(path: str | Path, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters from a tensors-only checkpoint (a {name: tensor} dict or a state_dict),
    checked against `model`'s parameter names and shapes, on the device of `model`.  Nothing
    but tensors and plain containers is unpickled (torch.load(weights_only=True)); errors are
    one line naming the file and the first missing, unexpected or misshapen parameter."""
    import pickle
    import warnings

    path = Path(path)
    if not path.exists():
        raise ValueError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():   # torch warns about a foreign pickle protocol; the
            warnings.simplefilter("ignore")   # one-line error below says what is wrong
            data = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:   # pickle / zip errors, or non-tensor objects refused
        if isinstance(exc, pickle.UnpicklingError) and _pickles_objects(path):
            raise ValueError(f"{path} is not a tensors-only checkpoint (it contains pickled "
                             "Python objects, which are not loaded for safety); save it with "
                             "torch.save(model.state_dict(), path)") from None
        raise ValueError(f"{path} is not a readable torch checkpoint") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a dict of parameter tensors, got "
                         f"{type(data).__name__}")
    expected = dict(model.named_parameters())
    known = set(expected) | set(model.state_dict())     # buffers may come with a state_dict
    missing = [k for k in expected if k not in data]
    if missing:
        raise ValueError(f"{path} lacks parameter '{missing[0]}' of this workload's model "
                         f"({len(missing)} of {len(expected)} missing)")
    unexpected = [k for k in data if k not in known]
    if unexpected:
        raise ValueError(f"{path} has key '{unexpected[0]}', which this workload's model does "
                         f"not have ({len(unexpected)} unexpected key(s))")
    for k, v in expected.items():
        if not isinstance(data[k], torch.Tensor):
            raise ValueError(f"{path}: parameter '{k}' is a {type(data[k]).__name__}, not a "
                             "tensor")
        if tuple(data[k].shape) != tuple(v.shape):
            raise ValueError(f"{path}: parameter '{k}' has shape {tuple(data[k].shape)}, but "
                             f"this workload's model needs {tuple(v.shape)}")
        if not torch.isfinite(data[k]).all():
            raise ValueError(f"{path}: parameter '{k}' is not finite")
    return {k: data[k].detach().float().to(v.device) for k, v in expected.items()}
