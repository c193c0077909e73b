"""Checkpoints along one reference training run, saved and loaded as tensors only.

The run trains `workload.make_model(seed)` in train mode (BatchNorm normalises by the batch
and updates its running statistics) with the workload's reference optimizer (a plain
torch.optim loop, `empirical.plain.make_optimizer`), batches from a generator seeded with
`seed`, and keeps the parameters and the buffers (running statistics) at the requested steps
and, with `at_target`, at the first evaluated step whose validation metric (eval mode) is
<= the target (evaluations on the geometric schedule of the sweeps, so within 5% of the step
count).  The buffers are part of a checkpoint because the measurement evaluates the network in
eval mode with them fixed (`empirical.curvature.FlatModel`).  Files hold a plain
{name: tensor} dict, the parameters and the persistent buffers by their state_dict names,
written by torch.save and read with torch.load(weights_only=True).
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
    """The parameters and buffers of the reference run at one step, and the validation metric
    there."""

    label: str                       # "init", "step K" or "target"
    step: int
    params: dict[str, torch.Tensor]
    metric: float
    buffers: dict[str, torch.Tensor]   # persistent buffers (BatchNorm running statistics)

    @property
    def state(self) -> dict[str, torch.Tensor]:
        """Parameters and buffers in one {name: tensor} dict, as a state_dict has them."""
        return {**self.params, **self.buffers}


def buffers_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the model's persistent buffers (those its state_dict holds), by name."""
    params = dict(model.named_parameters())
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k not in params}


def _metric(workload: Workload, model: torch.nn.Module) -> float:
    return metric(workload, dict(model.named_parameters()), model)


def metric(workload: Workload, params: dict[str, torch.Tensor],
           model: torch.nn.Module | None = None,
           buffers: dict[str, torch.Tensor] | None = None) -> float:
    """The workload's validation metric at `params`, evaluated in eval mode (`model`, by
    default a fresh one, supplies the architecture and the buffers; `buffers`, if given, are
    copied into it first)."""
    model = model or workload.make_model(0)
    if buffers:
        with torch.no_grad():
            for k, v in buffers.items():
                model.get_buffer(k).copy_(v)
    was_training = model.training
    with torch.no_grad():
        stacked = {k: v.detach()[None] for k, v in params.items()}
        value = float(workload.evaluate(model.eval(), stacked)[0])
    model.train(was_training)
    return value


def _checkpoint(label: str, step: int, model: torch.nn.Module, value: float) -> Checkpoint:
    """A copy of the model's parameters and buffers now, with the metric `value`."""
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    return Checkpoint(label, step, params, value, buffers_of(model))


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
    model = workload.make_model(seed).train()
    opt = make_optimizer(model, TrainConfig(optimizer, lr, budget=budget))
    gen = torch.Generator().manual_seed(seed)
    evals = set(eval_schedule(budget)) if at_target else set()
    out = []
    if 0 in wanted:
        out.append(_checkpoint("init", 0, model, _metric(workload, model)))
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
            out.append(_checkpoint(f"step {t}", t, model, _metric(workload, model)))
        if not reached and t in evals:
            metric = _metric(workload, model)
            if metric <= workload.target:
                out.append(_checkpoint("target", t, model, metric))
                reached = True
                if t >= max(wanted + [0]):
                    break
    if not reached:
        raise ValueError(f"reference training ({optimizer}, lr {lr}, batch {batch_size}) did not "
                         f"reach {workload.metric_name} <= {workload.target} in {budget} steps; "
                         "pass --budget, --lr or --target")
    return sorted(out, key=lambda c: c.step)


def save(state: dict[str, torch.Tensor], path: str | Path) -> None:
    """A {name: tensor} dict (a checkpoint's `state`: parameters and buffers) written to a
    temporary file and renamed, so a crash leaves the old file or the new."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({k: v.detach().cpu() for k, v in state.items()}, tmp)
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


def load(path: str | Path, model: torch.nn.Module
         ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(parameters, buffers) from a tensors-only checkpoint (a {name: tensor} dict or a
    state_dict), checked against `model`'s parameter and persistent buffer names and shapes,
    on the device of `model`.  A model with buffers (BatchNorm running statistics) needs them
    in the file: the measurement evaluates the network with them.  Nothing but tensors and
    plain containers is unpickled (torch.load(weights_only=True)); errors are one line naming
    the file and the first missing, unexpected or misshapen entry."""
    path = Path(path)
    data = _read(path)
    expected = dict(model.named_parameters())
    buffers = {k: v for k, v in model.state_dict().items() if k not in expected}
    missing = [k for k in expected if k not in data]
    if missing:
        raise ValueError(f"{path} lacks parameter '{missing[0]}' of this workload's model "
                         f"({len(missing)} of {len(expected)} missing)")
    unexpected = [k for k in data if k not in expected and k not in buffers]
    if unexpected:
        raise ValueError(f"{path} has key '{unexpected[0]}', which this workload's model does "
                         f"not have ({len(unexpected)} unexpected key(s))")
    missing = [k for k in buffers if k not in data]
    if missing:
        raise ValueError(f"{path} lacks the buffers {', '.join(missing)} of this workload's "
                         "model (the measured network is evaluated with them); save it with "
                         "torch.save(model.state_dict(), path)")
    for kind, wanted in (("parameter", expected), ("buffer", buffers)):
        for k, v in wanted.items():
            _check_entry(path, kind, k, data[k], v)
    return ({k: data[k].detach().float().to(v.device) for k, v in expected.items()},
            {k: data[k].detach().to(dtype=v.dtype, device=v.device) for k, v in buffers.items()})


def _read(path: Path) -> dict:
    """The dict a checkpoint file holds, loaded tensors-only; one-line errors."""
    import pickle
    import warnings

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
    return data


def _check_entry(path: Path, kind: str, name: str, value, like: torch.Tensor) -> None:
    """ValueError unless `value` is a tensor of `like`'s shape with finite values."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{path}: {kind} '{name}' is a {type(value).__name__}, not a tensor")
    if tuple(value.shape) != tuple(like.shape):
        raise ValueError(f"{path}: {kind} '{name}' has shape {tuple(value.shape)}, but "
                         f"this workload's model needs {tuple(like.shape)}")
    if not torch.isfinite(value).all():
        raise ValueError(f"{path}: {kind} '{name}' is not finite")
