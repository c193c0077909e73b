"""Workloads: frozen descriptions of what to train and what counts as reaching the result.

Everything is offline: the digits come from scikit-learn's bundled copy (8x8 images, 1797
examples, fixed seeded split of 360 for validation), the linear-regression data is generated.
Data are tensors (no DataLoader).

Workloads: `linreg`, `logreg-digits`, `mlp-digits`, `cnn-digits`, `charlm` (a character-level
Transformer on standard-library source files shipped with Python) and `custom` (the user's .npz).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from empirical.catalog import CATALOG, CUSTOM_BUDGET, CUSTOM_MODELS, WORKLOADS

DIGITS_SPLIT_SEED = 0
DIGITS_N_VAL = 360
LINREG_MEASURE_N = 4096
CHARLM_MEASURE_WINDOWS = 1024


@dataclass(frozen=True)
class Workload:
    """What to train and when the result is reached.

    make_model(seed)               a fresh model (its parameters are that trial's init)
    batch(batch_size, gen)         a training batch (x, y), drawn with the generator
    loss(outputs, y)               mean training loss of a batch
    evaluate(model, params)        the metric for every trial of stacked `params`, shape (P,);
                                   the result is reached when it is <= target
    train_set()                    the fixed training examples (x, y) that measurement uses
                                   (`nqm measure`): the whole training set or a stated sample
    reference                      the training run that makes measurement checkpoints:
                                   {"optimizer", "lr", "batch_size"}
    n_train                        the number of training examples (None: fresh data every
                                   step, as in the online linreg)

    Data tensors live on the device the workload was built for (`get(..., device=)`); batches
    are drawn with a CPU generator and the indices or samples moved there.
    """

    name: str
    make_model: Callable[[int], nn.Module]
    batch: Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    evaluate: Callable[[nn.Module, dict], torch.Tensor]
    metric_name: str
    target: float
    budget: int
    search: dict = field(default_factory=dict)
    train_set: Callable[[], tuple[torch.Tensor, torch.Tensor]] | None = None
    reference: dict = field(default_factory=lambda: {"optimizer": "adam", "lr": 1e-3,
                                                     "batch_size": 64})
    n_train: int | None = None


def _seeded(seed: int, build: Callable[[], nn.Module], device="cpu") -> nn.Module:
    torch.manual_seed(seed)
    return build().to(device)


def digits_split(seed: int = DIGITS_SPLIT_SEED):
    """(x_train, y_train, x_val, y_val): scikit-learn's bundled digits, pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32) / 16.0
    y = torch.tensor(d.target, dtype=torch.long)
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
    val, train = perm[:DIGITS_N_VAL], perm[DIGITS_N_VAL:]
    return x[train], y[train], x[val], y[val]


class DigitsCNN(nn.Module):
    """Two 3x3 convolutions on the 8x8 digits and a linear classifier.  No BatchNorm, so
    per-example gradients are well defined."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x):
        """Logits (B, 10) of flattened 8x8 images (B, 64)."""
        x = torch.relu(self.conv1(x.view(-1, 1, 8, 8)))
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def _sampler(xt: torch.Tensor, yt: torch.Tensor):
    """Batches drawn with replacement from fixed training tensors."""
    def batch(batch_size, gen):
        idx = torch.randint(0, xt.shape[0], (batch_size,), generator=gen).to(xt.device)
        return xt[idx], yt[idx]
    return batch


def _error_rate(xv: torch.Tensor, yv: torch.Tensor):
    """Validation error of every trial (vmapped over the stacked parameters)."""
    def evaluate(model, params):
        logits = vmap(lambda p: functional_call(model, p, (xv,)))(params)
        return (logits.argmax(-1) != yv).float().mean(-1)
    return evaluate


_DIGITS = {   # model (metric, target and budget: empirical.catalog)
    "logreg-digits": lambda: nn.Linear(64, 10),
    "mlp-digits": lambda: nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)),
    "cnn-digits": DigitsCNN,
}


def digits_workload(name: str, device="cpu") -> Workload:
    """The digits workload `name` (logreg-digits, mlp-digits or cnn-digits)."""
    xt, yt, xv, yv = (t.to(device) for t in digits_split())
    build, info = _DIGITS[name], CATALOG[name]
    return Workload(name=name, make_model=lambda seed: _seeded(seed, build, device),
                    batch=_sampler(xt, yt), loss=nn.functional.cross_entropy,
                    evaluate=_error_rate(xv, yv),
                    metric_name=info.metric_name, target=info.target, budget=info.budget,
                    search={"lr": (1e-2, 10.0), "lr_adam": (1e-4, 0.1),
                            "one_minus_momentum": (1e-2, 1.0)},
                    train_set=lambda: (xt, yt), n_train=int(xt.shape[0]),
                    reference={"optimizer": "adam", "lr": 3e-3, "batch_size": 64})


def linreg_workload(dim: int = 64, alpha: float = 1.0, noise: float = 0.5,
                    data_seed: int = 0, device="cpu") -> Workload:
    """Online linear regression: x ~ N(0, S), S = diag(i^-alpha), y = w*'x + noise N(0, 1), fresh
    samples every step; loss 1/2 (w'x - y)^2.  The metric is the excess loss
    1/2 (w - w*)' S (w - w*), in closed form: the noisy quadratic with h = i^-alpha.
    Measurement uses a fixed sample of LINREG_MEASURE_N examples (seed data_seed + 1)."""
    g = torch.Generator().manual_seed(data_seed)
    var = torch.arange(1, dim + 1, dtype=torch.float32) ** (-alpha)
    w_star = torch.randn(dim, generator=g)

    def batch(batch_size, gen):
        x = torch.randn(batch_size, dim, generator=gen) * var.sqrt()
        y = x @ w_star + noise * torch.randn(batch_size, generator=gen)
        return x.to(device), y.to(device)

    var_d, w_star_d = var.to(device), w_star.to(device)

    def evaluate(model, params):
        w = params["weight"].reshape(-1, dim)
        return 0.5 * (((w - w_star_d) ** 2) * var_d).sum(-1)

    info = CATALOG["linreg"]
    return Workload(
        name="linreg", batch=batch, evaluate=evaluate,
        make_model=lambda seed: _seeded(seed, lambda: nn.Linear(dim, 1, bias=False), device),
        loss=lambda out, y: 0.5 * ((out.squeeze(-1) - y) ** 2).mean(),
        metric_name=info.metric_name, target=info.target, budget=info.budget,
        search={"lr": (1e-3, 3.0), "lr_adam": (1e-4, 0.3), "one_minus_momentum": (1e-2, 1.0)},
        train_set=lambda: batch(LINREG_MEASURE_N, torch.Generator().manual_seed(data_seed + 1)),
        reference={"optimizer": "sgd", "lr": 0.5, "batch_size": 64})


CHARLM_FILES = ("textwrap.py", "string.py", "heapq.py", "bisect.py", "fractions.py",
                "statistics.py", "calendar.py", "shlex.py")


def stdlib_text() -> str:
    """Source files that ship with every CPython (fixed list; the text can differ slightly
    between Python versions, which every record names)."""
    import sysconfig
    from pathlib import Path

    root = Path(sysconfig.get_paths()["stdlib"])
    parts = [(root / f).read_text(encoding="utf-8") for f in CHARLM_FILES if (root / f).exists()]
    if not parts:
        raise ValueError(f"none of {', '.join(CHARLM_FILES)} found under {root}")
    return "\n".join(parts)


class CharTransformer(nn.Module):
    """A small causal Transformer language model over characters, written with plain tensor
    operations so that it runs under torch.func.vmap (pre-norm blocks, no dropout)."""

    def __init__(self, vocab: int, ctx: int = 32, d: int = 32, heads: int = 4, layers: int = 2):
        super().__init__()
        self.heads = heads
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(0.02 * torch.randn(ctx, d))
        self.blocks = nn.ModuleList(
            nn.ModuleDict({"ln1": nn.LayerNorm(d), "qkv": nn.Linear(d, 3 * d),
                           "proj": nn.Linear(d, d), "ln2": nn.LayerNorm(d),
                           "fc": nn.Linear(d, 4 * d), "out": nn.Linear(4 * d, d)})
            for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, idx):
        """Next-character logits (B, T, vocab) of index windows (B, T), causal attention."""
        b, t = idx.shape
        x = self.tok(idx) + self.pos[:t]
        mask = torch.ones(t, t, dtype=torch.bool, device=idx.device).tril()
        for blk in self.blocks:
            q, k, v = blk["qkv"](blk["ln1"](x)).chunk(3, dim=-1)
            q, k, v = (z.reshape(b, t, self.heads, -1).transpose(1, 2) for z in (q, k, v))
            att = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
            att = att.masked_fill(~mask, float("-inf")).softmax(-1)
            x = x + blk["proj"]((att @ v).transpose(1, 2).reshape(b, t, -1))
            x = x + blk["out"](torch.relu(blk["fc"](blk["ln2"](x))))
        return self.head(self.ln(x))


def charlm_workload(ctx: int = 32, n_val_windows: int = 128, device="cpu") -> Workload:
    """Next-character prediction on `stdlib_text()`: the first 90% trains, the last 10%
    validates (fixed, evenly spaced windows).  Metric: validation cross-entropy in nats."""
    text = stdlib_text()
    cut = int(0.9 * len(text))
    vocab = sorted(set(text[:cut]))
    index = {ch: i for i, ch in enumerate(vocab)}
    ids = torch.tensor([index.get(ch, 0) for ch in text], dtype=torch.long)
    train, val = ids[:cut].to(device), ids[cut:]
    starts = torch.linspace(0, val.numel() - ctx - 2, n_val_windows).long()
    xv = torch.stack([val[s:s + ctx] for s in starts]).to(device)
    yv = torch.stack([val[s + 1:s + ctx + 1] for s in starts]).to(device)
    n_vocab = len(vocab)

    def batch(batch_size, gen):
        s = torch.randint(0, train.numel() - ctx - 1, (batch_size,), generator=gen)
        offs = (s[:, None] + torch.arange(ctx)).to(device)
        return train[offs], train[offs + 1]

    def loss(logits, y):
        return nn.functional.cross_entropy(logits.reshape(-1, n_vocab), y.reshape(-1))

    def train_set():   # evenly spaced training windows, a fixed sample for measurement
        s = torch.linspace(0, train.numel() - ctx - 2, CHARLM_MEASURE_WINDOWS).long()
        offs = (s[:, None] + torch.arange(ctx)).to(device)
        return train[offs], train[offs + 1]

    def evaluate(m, params):
        logits = vmap(lambda p: functional_call(m, p, (xv,)))(params)
        return vmap(lambda lg: loss(lg, yv))(logits)

    info = CATALOG["charlm"]
    return Workload(
        name="charlm", batch=batch, loss=loss, evaluate=evaluate,
        make_model=lambda seed: _seeded(seed, lambda: CharTransformer(n_vocab, ctx), device),
        metric_name=info.metric_name, target=info.target, budget=info.budget,
        search={"lr": (1e-2, 3.0), "lr_adam": (1e-4, 3e-2), "one_minus_momentum": (1e-2, 1.0)},
        train_set=train_set, reference={"optimizer": "adam", "lr": 3e-3, "batch_size": 32},
        n_train=train.numel() - ctx - 1)     # the distinct training windows batch() draws


def _load_custom(path: str):
    from empirical.adapter import read_npz

    data = read_npz(path, "data")     # nothing is unpickled; errors name the file
    missing = [k for k in ("X_train", "y_train", "X_val", "y_val") if k not in data]
    if missing:
        raise ValueError(f"{path} lacks array(s) {', '.join(missing)}")
    for k in ("X_train", "X_val"):
        if data[k].ndim != 2:
            raise ValueError(f"{path}: {k} must be 2-D (examples x features), "
                             f"got shape {data[k].shape}")
    for split in ("train", "val"):
        x, y = data[f"X_{split}"], data[f"y_{split}"]
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise ValueError(f"{path}: y_{split} must be 1-D with one entry per row of "
                             f"X_{split} ({x.shape[0]}), got shape {y.shape}")
        for k, a in ((f"X_{split}", x), (f"y_{split}", y)):
            if not np.issubdtype(a.dtype, np.number) or not np.all(np.isfinite(a)):
                raise ValueError(f"{path}: {k} must be finite numbers")
    if data["X_train"].shape[1] != data["X_val"].shape[1]:
        raise ValueError(f"{path}: X_train has {data['X_train'].shape[1]} features but X_val "
                         f"has {data['X_val'].shape[1]}")
    return data


def custom_workload(path: str, model: str, target: float, device="cpu") -> Workload:
    """The user's data: `linear` regression (metric: validation loss 1/2 mean squared error)
    or `logreg` / `mlp` classification (labels 0..C-1; metric: validation error)."""
    if model not in CUSTOM_MODELS:
        raise ValueError(f"--model must be one of {', '.join(CUSTOM_MODELS)}, got '{model}'")
    if target is None or not target > 0:
        raise ValueError("the custom workload needs --target (a metric value > 0 to beat)")
    d = _load_custom(path)
    xt = torch.tensor(d["X_train"], dtype=torch.float32)
    xv = torch.tensor(d["X_val"], dtype=torch.float32)
    n_in = xt.shape[1]
    if model == "linear":
        yt = torch.tensor(d["y_train"], dtype=torch.float32)
        yv = torch.tensor(d["y_val"], dtype=torch.float32)
        build = lambda: nn.Linear(n_in, 1)  # noqa: E731

        def loss(out, y):
            return 0.5 * ((out.squeeze(-1) - y) ** 2).mean()

        def evaluate(m, params):
            out = vmap(lambda p: functional_call(m, p, (xv,)))(params).squeeze(-1)
            return 0.5 * ((out - yv) ** 2).mean(-1)

        metric = "validation loss"
    else:
        y_all = torch.tensor(np.concatenate([d["y_train"], d["y_val"]]))
        if torch.any(y_all != y_all.round()) or torch.any(y_all < 0):
            raise ValueError(f"{path}: {model} needs integer class labels 0..C-1 in y_train/y_val")
        n_cls = int(y_all.max()) + 1
        yt = torch.tensor(d["y_train"]).long()
        yv = torch.tensor(d["y_val"]).long()
        if model == "logreg":
            build = lambda: nn.Linear(n_in, n_cls)  # noqa: E731
        else:
            build = lambda: nn.Sequential(nn.Linear(n_in, 128), nn.ReLU(),  # noqa: E731
                                          nn.Linear(128, n_cls))
        loss = nn.functional.cross_entropy
        evaluate = _error_rate(xv, yv)
        metric = "validation error"

    xt, yt, xv, yv = (t.to(device) for t in (xt, yt, xv, yv))   # `evaluate` of linear
    if model != "linear":                                       # reads xv, yv from here
        evaluate = _error_rate(xv, yv)
    return Workload(name="custom", make_model=lambda seed: _seeded(seed, build, device),
                    batch=_sampler(xt, yt),
                    loss=loss, evaluate=evaluate, metric_name=metric, target=float(target),
                    budget=CUSTOM_BUDGET, search={"lr": (1e-3, 10.0), "lr_adam": (1e-4, 0.1),
                                         "one_minus_momentum": (1e-2, 1.0)},
                    train_set=lambda: (xt, yt), n_train=int(xt.shape[0]))


def get(name: str, data: str | None = None, model: str | None = None,
        target: float | None = None, device="cpu") -> Workload:
    """A workload by name, its data on `device`; `custom` also needs `data` (.npz), `model`
    and `target`; a .py file or dotted module name is the user's own workload
    (`empirical.user_workload`; `target` overrides its TARGET).  On CUDA it turns TF32 off
    (`empirical.device.full_float32`)."""
    from empirical.device import full_float32
    from empirical.user_workload import is_user_workload, user_workload

    full_float32(device)
    if name == "linreg":
        return linreg_workload(device=device)
    if name in _DIGITS:
        return digits_workload(name, device)
    if name == "charlm":
        return charlm_workload(device=device)
    if name == "custom":
        if not data:
            raise ValueError("the custom workload needs --data PATH.npz")
        return custom_workload(data, model or "logreg", target, device)
    if is_user_workload(name):
        return user_workload(name, target, device)
    raise ValueError(f"unknown workload '{name}'; choose from {', '.join(WORKLOADS)}, or give "
                     "your own as a .py file or a dotted module name")
