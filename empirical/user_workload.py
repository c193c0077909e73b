"""The user's own workload: a Python file (`path/to/file.py`) or module (`package.module`) that
defines, by these fixed names,

    model()                    a fresh torch.nn.Module (torch is seeded before the call: trial i
                               of a sweep gets seed + i, like the built-in workloads)
    data()                     a mapping with X_train, y_train, X_val, y_val: tensors (numpy
                               arrays are converted), or objects indexable along their first
                               dimension by a LongTensor
    loss(outputs, targets)     optional: one loss per example, shape (n,); the training loss
                               is their mean.  Default: cross-entropy for integer targets
                               (outputs (n, ..., C), targets (n, ...)), half squared error
                               1/2 sum (outputs - targets)^2 over each example for floating
                               targets
    metric(outputs, targets)   optional: the validation metric, lower is better, one number.
                               Default: error rate (argmax != target) for integer targets,
                               the mean loss otherwise
    TARGET, BUDGET, LR_RANGE   optional defaults of the target, the step budget and the
                               learning-rate search range (the command line overrides them)
    REFERENCE                  optional: the reference run of `nqm measure`, a dict with
                               optimizer, lr, batch_size (default: Adam, lr 3e-3, batch 64)

Importing the file runs it: only name files you trust.  Batches are drawn with replacement
from the training set (as the built-in workloads do); the metric is evaluated on the whole
validation set.  The file's content (sha256) identifies the workload in resume keys.
Everything the file provides is checked once when the workload is built, each problem a
one-line ValueError naming the function and what is wrong.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from empirical.catalog import is_user_workload  # noqa: F401  (re-exported)

DATA_KEYS = ("X_train", "y_train", "X_val", "y_val")
DEFAULT_BUDGET = 3000
DEFAULT_LR_RANGE = (1e-3, 10.0)
DEFAULT_LR_ADAM = (1e-4, 0.1)
_PROBE = 4          # training examples of the forward-pass check


def source_file(spec: str) -> Path:
    """The file that defines workload `spec` (the .py path, or the module's source file; a
    module's parent packages are imported to find it)."""
    if spec.endswith(".py"):
        path = Path(spec)
        if not path.is_file():
            raise ValueError(f"workload file not found: {spec}")
        return path
    cwd = str(Path.cwd())
    if "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)     # as `python -m` does: modules of the current directory
    try:
        found = importlib.util.find_spec(spec)
    except (ImportError, ValueError):
        found = None
    if found is None or not found.origin or not Path(found.origin).is_file():
        raise ValueError(f"workload module '{spec}' not found (give a .py file or a module "
                         "importable from here)")
    return Path(found.origin)


def source_sha256(spec: str) -> str:
    """The sha256 of the workload's source file: what resume keys record."""
    return hashlib.sha256(source_file(spec).read_bytes()).hexdigest()


_MODULES: dict[tuple[str, str], object] = {}


def load_module(spec: str):
    """The imported module of `spec` (once per process and file content).  Importing runs the
    user's code; an exception there is one line naming the file."""
    path = source_file(spec)
    key = (str(path.resolve()), hashlib.sha256(path.read_bytes()).hexdigest())
    if key in _MODULES:
        return _MODULES[key]
    try:
        if spec.endswith(".py"):
            name = f"_nqm_workload_{key[1][:16]}"
            mod_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[name] = module
            mod_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(spec)
    except Exception as exc:
        raise ValueError(f"importing workload {spec} raised {type(exc).__name__}: "
                         f"{_one_line(exc)}") from None
    _MODULES[key] = module
    return module


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""


def _call(what: str, fn: Callable, *args):
    """fn(*args); an exception becomes a one-line ValueError naming `what`."""
    try:
        return fn(*args)
    except ValueError as exc:
        if str(exc).startswith(what):
            raise
        raise ValueError(f"{what} raised ValueError: {_one_line(exc)}") from None
    except Exception as exc:
        raise ValueError(f"{what} raised {type(exc).__name__}: {_one_line(exc)}") from None


def _length(name: str, obj) -> int:
    shape = getattr(obj, "shape", None)
    try:
        return int(shape[0]) if shape is not None and len(shape) else len(obj)
    except TypeError:
        raise ValueError(f"data(): {name} is not indexable along a first dimension (got "
                         f"{type(obj).__name__})") from None


def _as_data(obj):
    return torch.as_tensor(obj) if isinstance(obj, np.ndarray) and obj.dtype != object else obj


def check_data(d) -> dict:
    """data()'s mapping, checked: the four keys, matching first dimensions, finite numbers,
    indexable by a LongTensor; numpy arrays become tensors."""
    if not isinstance(d, Mapping):
        raise ValueError(f"data() must return a mapping with {', '.join(DATA_KEYS)}, got "
                         f"{type(d).__name__}")
    missing = [k for k in DATA_KEYS if k not in d]
    if missing:
        raise ValueError(f"data() lacks {', '.join(missing)}")
    out = {k: _as_data(d[k]) for k in DATA_KEYS}
    for split in ("train", "val"):
        nx, ny = _length(f"X_{split}", out[f"X_{split}"]), _length(f"y_{split}", out[f"y_{split}"])
        if nx != ny:
            raise ValueError(f"data(): X_{split} has {nx} examples but y_{split} has {ny}")
        if nx < 2:
            raise ValueError(f"data(): X_{split} needs at least 2 examples, got {nx}")
    for k, v in out.items():
        if isinstance(v, torch.Tensor):
            if v.dtype == torch.bool or v.is_complex():
                raise ValueError(f"data(): {k} must be real numbers, got {v.dtype}")
            if v.is_floating_point() and not bool(torch.isfinite(v).all()):
                raise ValueError(f"data(): {k} has non-finite values (NaN or inf)")
        else:
            _call(f"data(): indexing {k} with a LongTensor", lambda v=v: v[torch.tensor([0, 1])])
    return out


def take(obj, idx: torch.Tensor):
    """Rows `idx` of a tensor or an indexable object (idx moved to a tensor's device)."""
    if isinstance(obj, torch.Tensor):
        return obj[idx.to(obj.device)]
    return obj[idx]


def to_device(obj, device):
    """A tensor moved to `device`; other objects unchanged."""
    return obj.to(device) if isinstance(obj, torch.Tensor) else obj


def is_classification(y) -> bool:
    """Integer targets (class labels) rather than floating ones."""
    return isinstance(y, torch.Tensor) and not y.is_floating_point()


def default_loss(classify: bool) -> Callable:
    """Per-example cross-entropy (integer targets) or 1/2 sum of squared errors (floating)."""
    if classify:
        def cross_entropy(out, y):
            if out.dim() != y.dim() + 1 or out.shape[:-1] != y.shape:
                raise ValueError(f"the model's output {tuple(out.shape)} does not fit the "
                                 f"cross-entropy of integer targets {tuple(y.shape)} (it needs "
                                 "one score per class in a last dimension)")
            ce = nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1),
                                             reduction="none")
            return ce.reshape(y.shape).reshape(y.shape[0], -1).mean(1)
        return cross_entropy

    def half_squared_error(out, y):
        if out.shape != y.shape:
            if out.numel() != y.numel() or out.shape[0] != y.shape[0]:
                raise ValueError(f"the model's output {tuple(out.shape)} does not fit the "
                                 f"squared error of targets {tuple(y.shape)}")
            out = out.reshape(y.shape)
        return 0.5 * ((out - y) ** 2).reshape(y.shape[0], -1).sum(1)
    return half_squared_error


def default_metric(classify: bool, per_example: Callable) -> Callable:
    """Error rate (integer targets) or the mean per-example loss."""
    if classify:
        return lambda out, y: (out.argmax(-1) != y).float().mean()
    return lambda out, y: per_example(out, y).mean()


def _constant(module, name: str, check: Callable[[object], bool], what: str):
    value = getattr(module, name, None)
    if value is not None and not check(value):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def constants(module) -> tuple[float | None, int | None, tuple[float, float] | None]:
    """(TARGET, BUDGET, LR_RANGE) of the module, each None when not defined; checked."""
    target = _constant(module, "TARGET", _positive, "a finite number > 0")
    budget = _constant(module, "BUDGET", lambda b: isinstance(b, int) and b >= 1,
                       "an integer >= 1")
    lr = _constant(module, "LR_RANGE",
                   lambda r: isinstance(r, (tuple, list)) and len(r) == 2
                   and all(_positive(x) for x in r) and r[0] < r[1],
                   "two numbers 0 < lo < hi")
    return target, budget, None if lr is None else (float(lr[0]), float(lr[1]))


REFERENCE_DEFAULT = {"optimizer": "adam", "lr": 3e-3, "batch_size": 64}


def reference(module, n_train: int) -> dict:
    """REFERENCE over the default reference run, checked; the batch at most n_train."""
    from empirical.train_config import OPTIMIZERS

    given = getattr(module, "REFERENCE", None) or {}
    if not isinstance(given, Mapping) or set(given) - set(REFERENCE_DEFAULT):
        raise ValueError(f"REFERENCE must be a dict with keys among optimizer, lr, "
                         f"batch_size, got {given!r}")
    ref = {**REFERENCE_DEFAULT, **given}
    if ref["optimizer"] not in OPTIMIZERS:
        raise ValueError(f"REFERENCE optimizer must be one of {', '.join(OPTIMIZERS)}, got "
                         f"{ref['optimizer']!r}")
    if not _positive(ref["lr"]):
        raise ValueError(f"REFERENCE lr must be a finite number > 0, got {ref['lr']!r}")
    if not (isinstance(ref["batch_size"], int) and ref["batch_size"] >= 1):
        raise ValueError(f"REFERENCE batch_size must be an integer >= 1, got "
                         f"{ref['batch_size']!r}")
    return {**ref, "lr": float(ref["lr"]), "batch_size": min(ref["batch_size"], n_train)}


def functions(module) -> tuple[Callable, Callable, Callable | None, Callable | None]:
    """model, data and the optional loss and metric; a missing or non-callable one is named."""
    out = []
    for name, required in (("model", True), ("data", True), ("loss", False),
                           ("metric", False)):
        fn = getattr(module, name, None)
        if fn is None and required:
            raise ValueError(f"workload {module.__name__} defines no {name}() function")
        if fn is not None and not callable(fn):
            raise ValueError(f"{name} must be a function, got {type(fn).__name__}")
        out.append(fn)
    return tuple(out)


def build_model(model_fn: Callable, seed: int) -> nn.Module:
    """model() with torch seeded by `seed`, checked to be a module with float parameters."""
    torch.manual_seed(seed)
    m = _call("model()", model_fn)
    if not isinstance(m, nn.Module):
        raise ValueError(f"model() must return a torch.nn.Module, got {type(m).__name__}")
    params = list(m.parameters())
    if not params:
        raise ValueError("model() returned a module without parameters")
    bad = next((p for p in params if not p.is_floating_point()), None)
    if bad is not None:
        raise ValueError(f"model() has a parameter of dtype {bad.dtype}; parameters must be "
                         "floating point")
    return m


def check_fit(model: nn.Module, loss: Callable, metric: Callable, data: dict) -> None:
    """The model's output fits the loss (one finite loss per example) and the metric (one
    finite number) on a few training and the validation examples."""
    n = min(_PROBE, _length("X_train", data["X_train"]))
    idx = torch.arange(n)
    x, y = take(data["X_train"], idx), take(data["y_train"], idx)
    out = _call("model(): the forward pass on X_train", model, x)
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"model() must output a tensor, got {type(out).__name__}")
    losses = _call("loss(outputs, targets)", loss, out, y)
    if not isinstance(losses, torch.Tensor) or tuple(losses.shape) != (n,):
        shape = tuple(losses.shape) if isinstance(losses, torch.Tensor) else type(losses).__name__
        raise ValueError(f"loss(outputs, targets) must return one loss per example, shape "
                         f"({n},), got {shape}")
    if not bool(torch.isfinite(losses).all()):
        raise ValueError("loss(outputs, targets) is not finite at the model's initialisation")
    model.eval()
    with torch.no_grad():
        out_val = _call("model(): the forward pass on X_val", model, data["X_val"])
    model.train()
    value = _call("metric(outputs, targets)", metric, out_val, data["y_val"])
    value = torch.as_tensor(value) if isinstance(value, (int, float)) else value
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"metric(outputs, targets) must return one number, got {shape}")
    if not bool(torch.isfinite(value).all()):
        raise ValueError("metric(outputs, targets) is not finite at the model's "
                         "initialisation")


def evaluator(metric: Callable, xv, yv) -> Callable:
    """evaluate(model, params): the metric of every trial of stacked `params`, shape (P,),
    vmapped over the trials when the model and metric allow it, else trial by trial (with
    the model's own buffers, e.g. BatchNorm running statistics, in the caller's mode)."""
    state = {"vmap": True}

    def one(model, p):
        return torch.as_tensor(metric(functional_call(model, p, (xv,)), yv),
                               dtype=torch.float32, device=xv.device).reshape(())

    def evaluate(model, params):
        if state["vmap"]:
            try:
                return vmap(lambda p: one(model, p))(params)
            except Exception:
                state["vmap"] = False
        trials = next(iter(params.values())).shape[0]
        return torch.stack([one(model, {k: v[i] for k, v in params.items()})
                            for i in range(trials)])
    return evaluate


_BUILT: dict[tuple, object] = {}


def user_workload(spec: str, target: float | None = None, device="cpu"):
    """The Workload of the user's file or module `spec` (module docstring), its data on
    `device`.  `target` overrides TARGET; one of the two is needed.  Built once per process,
    file content, target and device (data() can be expensive)."""
    key = (str(source_file(spec).resolve()), source_sha256(spec), spec, target, str(device))
    if key not in _BUILT:
        _BUILT[key] = _build(spec, target, device)
    return _BUILT[key]


def _build(spec: str, target: float | None, device):
    from empirical.workloads import Workload

    module = load_module(spec)
    model_fn, data_fn, loss_fn, metric_fn = functions(module)
    tgt, budget, lr_range = constants(module)
    target = target if target is not None else tgt
    if target is None:
        raise ValueError(f"workload {spec} defines no TARGET; pass --target (a metric value "
                         "> 0 to beat)")
    data = check_data(_call("data()", data_fn))
    classify = is_classification(data["y_train"])
    if loss_fn is None and not isinstance(data["y_train"], torch.Tensor):
        raise ValueError("data(): y_train is not a tensor, so the default loss does not apply; "
                         "define loss(outputs, targets)")
    per_example = loss_fn or default_loss(classify)
    metric = metric_fn or default_metric(classify, per_example)
    check_fit(build_model(model_fn, 0), per_example, metric, data)
    data = {k: to_device(v, device) for k, v in data.items()}
    xt, yt, xv, yv = (data[k] for k in DATA_KEYS)
    n_train = _length("X_train", xt)

    def batch(batch_size, gen):
        idx = torch.randint(0, n_train, (batch_size,), generator=gen)
        return take(xt, idx), take(yt, idx)

    name = getattr(module, "METRIC_NAME", None) or (
        "validation metric" if metric_fn else
        "validation error" if classify else "validation loss")
    lr = lr_range or DEFAULT_LR_RANGE
    return Workload(
        name=spec, make_model=lambda seed: build_model(model_fn, seed).to(device),
        batch=batch, loss=lambda out, y: per_example(out, y).mean(),
        evaluate=evaluator(metric, xv, yv), metric_name=str(name), target=float(target),
        budget=int(budget or DEFAULT_BUDGET),
        search={"lr": lr, "lr_adam": lr_range or DEFAULT_LR_ADAM,
                "one_minus_momentum": (1e-2, 1.0)},
        train_set=lambda: (xt, yt), n_train=n_train,
        reference=reference(module, n_train))
