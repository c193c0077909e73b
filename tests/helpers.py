"""Shared test helpers: slow, obviously correct references written from the update rules (no
code shared with `nqm`), the brute-force optimum over the metaparameter box (the reference for
`nqm.tuning`), a dense operator with a known spectrum (the reference for `empirical.spectral`),
and a BatchNorm network with trained running statistics (for the measurement's buffers).
"""

import contextlib
import os
import subprocess
import sys

import numpy as np

from nqm.closed_form import Modes
from nqm.optimizer import OptimizerConfig, lr_limit


def moment_recurrence(h, c, s0, count, kind, lr, momentum, precond, ema, batch_size, lrs=None,
                      n_steps=None):
    """Expected loss at steps 0..n by propagating the exact second moments step by step.

    State per direction: (theta, v, avg) as needed.  The update is written out literally:
        g = h * (theta + look) + eps,  look = momentum * v for nesterov else 0
        sgd:       theta <- theta - a g
        momentum:  v <- momentum v - a g; theta <- theta + v
        ema:       avg <- ema * avg + (1 - ema) * theta
    with a = lr_t h^-precond.  Second moments of the affine map z <- A z + B eps follow
    Sigma <- A Sigma A' + Var(eps) B B'.
    """
    lrs = np.full(n_steps, lr) if lrs is None else np.asarray(lrs)
    d = len(h)
    names = ["theta"] + (["v"] if kind != "sgd" else []) + (["avg"] if ema is not None else [])
    m = len(names)
    ix = {n: i for i, n in enumerate(names)}
    z0 = np.zeros(m)
    z0[ix["theta"]] = 1.0
    if ema is not None:
        z0[ix["avg"]] = 1.0
    read = ix["avg"] if ema is not None else ix["theta"]
    sig = np.array([s0[i] * np.outer(z0, z0) for i in range(d)])
    out = [0.5 * np.sum(count * h * sig[:, read, read])]
    for lr_t in lrs:
        for i in range(d):
            a = lr_t * h[i] ** (-precond)
            # theta, v, avg as linear functions of (old state, eps): rows = new, cols = old + eps
            M = np.zeros((m, m + 1))
            old = np.eye(m + 1)[:m]           # old state coordinates
            epsv = np.eye(m + 1)[m]
            theta = old[ix["theta"]]
            if kind == "sgd":
                g = h[i] * theta + epsv
                new_theta = theta - a * g
                M[ix["theta"]] = new_theta
            else:
                v = old[ix["v"]]
                look = momentum * v if kind == "nesterov" else 0.0
                g = h[i] * (theta + look) + epsv
                new_v = momentum * v - a * g
                new_theta = theta + new_v
                M[ix["theta"]] = new_theta
                M[ix["v"]] = new_v
            if ema is not None:
                M[ix["avg"]] = ema * old[ix["avg"]] + (1 - ema) * new_theta
            A, Bv = M[:, :m], M[:, m]
            sig[i] = A @ sig[i] @ A.T + (c[i] / batch_size) * np.outer(Bv, Bv)
        out.append(0.5 * np.sum(count * h * sig[:, read, read]))
    return np.array(out)


def second_moment_recurrence(sp, noise, kind, lr, beta, precond, batch_size, n):
    """The loss of the per-direction second moments (s, u, m) of SGD or heavy ball, written
    out one step at a time, with gradient-noise variance noise(s) / batch_size per direction
    (noise: s -> c(s), any law of the current second moments)."""
    h, w = sp.h, sp.count
    a = lr * h ** (-precond)
    x = a * h
    s, u, m = sp.s0.copy(), np.zeros_like(h), np.zeros_like(h)
    out = [0.5 * np.sum(w * h * s)]
    for _ in range(n):
        q = noise(s) / batch_size * a**2
        if kind == "sgd":
            s = (1 - x) ** 2 * s + q
        else:
            s, u, m = ((1 - x) ** 2 * s + 2 * beta * (1 - x) * m + beta**2 * u + q,
                       x**2 * s - 2 * beta * x * m + beta**2 * u + q,
                       -x * (1 - x) * s + beta * (1 - 2 * x) * m + beta**2 * u + q)
        out.append(0.5 * np.sum(w * h * s))
    return np.array(out)


def forward_scan(losses, target):
    """Index of the first entry <= target, or -1."""
    hit = np.flatnonzero(np.asarray(losses) <= target)
    return int(hit[0]) if hit.size else -1


def brute_force(spec, kind, batch_sizes, target, max_steps, precond=0.0, ema=False,
                lr_ratios=None, one_minus_betas=None, one_minus_gammas=None, zoom=True):
    """Best exact steps per batch size (None: not reached) over every grid combination of
    lr = ratio * lr_limit(beta), beta = 1 - one_minus_beta, gamma = 1 - one_minus_gamma; with
    `zoom`, then a 3x finer grid around each batch size's best point, twice."""
    lr_ratios = np.geomspace(1e-12, 1 - 1e-6, 241) if lr_ratios is None else lr_ratios
    if kind == "sgd":
        one_minus_betas = np.array([1.0])
    elif one_minus_betas is None:
        one_minus_betas = np.geomspace(1e-7, 1.0, 43)
    if not ema:
        one_minus_gammas = np.array([None])
    elif one_minus_gammas is None:
        one_minus_gammas = np.geomspace(1e-7, 1.0, 29)
    bs = np.asarray(batch_sizes, dtype=np.float64)
    best = np.full(bs.size, max_steps + 1, dtype=np.int64)
    arg = [None] * bs.size

    def scan(ratios, mbetas, mgammas, only=None):
        for mb in mbetas:
            beta = 0.0 if kind == "sgd" else 1.0 - mb
            lim = lr_limit(spec.h, kind, beta, precond)
            for mg in mgammas:
                gamma = None if mg is None else 1.0 - mg
                for r in ratios:
                    cfg = OptimizerConfig(kind, lr=r * lim, momentum=beta, precond=precond,
                                          ema=gamma)
                    modes = Modes.build(spec, cfg)
                    if not modes.stable:
                        continue
                    # a crossing later than every batch size's best so far cannot win
                    cap = int(best.max() if only is None else best[only]) - 1
                    ks = modes.first_crossings(bs, target, cap)
                    for j, k in enumerate(ks):
                        if (only is None or j == only) and 0 <= k < best[j]:
                            best[j], arg[j] = k, (r, mb, mg)

    scan(lr_ratios, one_minus_betas, one_minus_gammas)
    if zoom:
        for j in range(bs.size):
            if arg[j] is None:
                continue
            for level in (1, 2):
                r, mb, mg = arg[j]
                step = np.log(lr_ratios[1] / lr_ratios[0]) / 3**level
                fine = r * np.exp(step * np.arange(-4, 5))
                fine = fine[fine < 1.0]
                mbs = _around(mb, one_minus_betas, level) if kind != "sgd" else [1.0]
                mgs = _around(mg, one_minus_gammas, level) if ema else [None]
                scan(fine, mbs, mgs, only=j)
    return [int(k) if a is not None else None for k, a in zip(best, arg)], arg


def _around(v, axis, level):
    if axis.size < 2:
        return [v]
    step = np.log(axis[1] / axis[0]) / 3**level
    out = v * np.exp(step * np.arange(-4, 5))
    return out[out <= 1.0]


class Dense:
    """A dense symmetric matrix behind the operator interface, counting products."""

    def __init__(self, A):
        self.A, self.shape, self.n_products = A, A.shape, 0

    def matvec(self, v):
        self.n_products += 1
        return self.A @ v

    def matmat(self, V):
        self.n_products += V.shape[1]
        return self.A @ V

    def as_linear_operator(self):
        from scipy.sparse.linalg import LinearOperator
        return LinearOperator(self.shape, matvec=self.matvec, matmat=self.matmat,
                              dtype=np.float64)


@contextlib.contextmanager
def another_process_holding_the_lock(directory):
    """A second process that holds `empirical.records.directory_lock(directory)` until the
    block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from empirical.records import directory_lock\n"
         "with directory_lock(sys.argv[1]):\n print('locked', flush=True); sys.stdin.read()",
         str(directory)], cwd=os.getcwd(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.stdin.close()
        holder.wait()


def trained_batchnorm():
    """A BatchNorm MLP after a few train-mode steps on shifted inputs: its running statistics
    are far from their initial values (mean 0, variance 1)."""
    import torch
    from torch import nn

    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(2)
    for _ in range(5):
        xb = 2 * torch.randn(16, 5, generator=gen) + 1
        yb = torch.randint(0, 3, (16,), generator=gen)
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()
    return model


def checkpoint_of(model) -> tuple[dict, dict]:
    """(parameters, persistent buffers) of `model`, detached copies."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    params = {k: state.pop(k) for k, _ in model.named_parameters()}
    return params, state


#: a user workload file (model() and data()): three Gaussian blobs and a linear classifier
BLOBS = """
import torch
from torch import nn
TARGET = 0.12
BUDGET = 600
REFERENCE = {"optimizer": "sgd", "lr": 0.5, "batch_size": 16}
def data():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (300,), generator=g)
    centres = torch.tensor([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    x = centres[y] + torch.randn(300, 2, generator=g)
    return {"X_train": x[:200], "y_train": y[:200], "X_val": x[200:], "y_val": y[200:]}
def model():
    return nn.Linear(2, 3)
"""


def small_spectrum(seed: int, rows: int = 5):
    """A random spectrum of `rows` rows: h in [0.01, 1], c ~ h, s0 ~ 1/h, counts 1-3."""
    from nqm.spectrum import Spectrum

    rng = np.random.default_rng(seed)
    h = np.sort(10.0 ** rng.uniform(-2.0, 0.0, rows))[::-1]
    return Spectrum(h=h, c=h * rng.uniform(0.5, 2.0, rows), s0=rng.uniform(0.5, 2.0, rows) / h,
                    count=rng.integers(1, 4, rows).astype(float))
