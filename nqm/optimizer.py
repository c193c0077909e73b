"""Optimizer configurations and their per-direction linear state maps on the noisy quadratic.

Per direction i (curvature h, noise variance c / B), with preconditioner P^-1 = H^-p
(Zhang et al. 2019, section 3.2), write  a = lr * h^-p  (the step along the direction) and
x = a * h = lr * h^(1-p).  The stochastic gradient is g = h * theta + eps, Var(eps) = c / B.

    sgd        theta' = theta - a g(theta)
    momentum   v' = beta v - a g(theta),               theta' = theta + v'     (heavy ball)
    nesterov   v' = beta v - a g(theta + beta v),      theta' = theta + v'
               (Sutskever et al. 2013; the loss is read at theta)
    ema        theta_avg' = gamma theta_avg + (1 - gamma) theta'                (any of the above)

Each is linear in the state z = (theta[, v][, theta_avg]):  z' = A z + b eps, with
A = A0 + lr * A1 and b = lr * b1 (A and b are affine in the learning rate).  The loss is read
at e'z (theta, or theta_avg with EMA) and z(0) = f * theta(0), so f = (1[, 0][, 1]).
Symbols -> arguments: lr = `lr`, beta = `momentum`, p = `precond`, gamma = `ema`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from nqm.errors import NQMInputError

KINDS = ("sgd", "momentum", "nesterov")


def check_kind(kind: str) -> str:
    """The optimizer name; NQMInputError unless one of KINDS."""
    if kind not in KINDS:
        raise NQMInputError(f"optimizer must be one of {', '.join(KINDS)}, got '{kind}'")
    return kind


def check_precond(p: float) -> float:
    """The preconditioner exponent p of H^-p as a float; NQMInputError unless 0 <= p <= 1."""
    if not 0.0 <= p <= 1.0:
        raise NQMInputError(f"precond exponent p must be in [0, 1], got {p}")
    return float(p)


@dataclass(frozen=True)
class OptimizerConfig:
    """kind in {'sgd', 'momentum', 'nesterov'}; lr > 0; 0 <= momentum < 1; 0 <= precond <= 1;
    ema = gamma in [0, 1) or None for no iterate averaging."""

    kind: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.0
    precond: float = 0.0
    ema: float | None = None

    def __post_init__(self):
        check_kind(self.kind)
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise NQMInputError(f"learning rate must be a finite number > 0, got {self.lr}")
        if not (0.0 <= self.momentum < 1.0):
            raise NQMInputError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.kind == "sgd" and self.momentum != 0.0:
            raise NQMInputError(
                "momentum must be 0 for optimizer 'sgd' (use 'momentum' or 'nesterov')")
        check_precond(self.precond)
        if self.ema is not None and not (0.0 <= self.ema < 1.0):
            raise NQMInputError(f"ema gamma must be in [0, 1), got {self.ema}")


class Transition(NamedTuple):
    """Per-direction state map: A = A0 + lr * A1 (d, m, m); b = lr * b1 (d, m); f, e (m,)."""

    A0: np.ndarray
    A1: np.ndarray
    b1: np.ndarray
    f: np.ndarray
    e: np.ndarray


def direction_powers(h: np.ndarray, precond: float) -> tuple[np.ndarray, np.ndarray]:
    """(u, w) = (h^(1-p), h^-p): x = lr * u and a = lr * w of the module docstring."""
    h = np.asarray(h, dtype=np.float64)
    return h ** (1.0 - precond), h ** (-precond)


def transition(h: np.ndarray, kind: str, momentum: float, precond: float,
               ema: float | None, powers: tuple[np.ndarray, np.ndarray] | None = None
               ) -> Transition:
    """Build (A0, A1, b1, f, e) of the module docstring for every direction; `powers`:
    `direction_powers(h, precond)` if already at hand."""
    h = np.asarray(h, dtype=np.float64)
    d = h.size
    u, w = powers if powers is not None else direction_powers(h, precond)
    beta = float(momentum)
    m0 = 1 if kind == "sgd" else 2
    m = m0 + (ema is not None)
    A0 = np.zeros((d, m, m))
    A1 = np.zeros((d, m, m))
    b1 = np.zeros((d, m))
    A0[:, 0, 0] = 1.0
    A1[:, 0, 0] = -u
    b1[:, 0] = -w
    if kind in ("momentum", "nesterov"):
        # theta' = (1 - x) theta + beta s v - a eps,  v' = -x theta + beta s v - a eps,
        # with s = 1 (heavy ball) or s = 1 - x (Nesterov: gradient at theta + beta v)
        A0[:, 0, 1] = beta
        A0[:, 1, 1] = beta
        A1[:, 1, 0] = -u
        if kind == "nesterov":
            A1[:, 0, 1] = -beta * u
            A1[:, 1, 1] = -beta * u
        b1[:, 1] = -w
    if ema is not None:
        g = float(ema)
        A0[:, m - 1, :m0] = (1.0 - g) * A0[:, 0, :m0]
        A1[:, m - 1, :m0] = (1.0 - g) * A1[:, 0, :m0]
        A0[:, m - 1, m - 1] = g
        b1[:, m - 1] = (1.0 - g) * b1[:, 0]
    f = np.zeros(m)          # theta(0) = theta_0, v(0) = 0, theta_avg(0) = theta_0
    f[0] = 1.0
    e = np.zeros(m)          # the loss is read at theta_avg with EMA, else at theta
    if ema is not None:
        f[m - 1] = 1.0
        e[m - 1] = 1.0
    else:
        e[0] = 1.0
    return Transition(A0, A1, b1, f, e)


def stability_factor(kind: str, momentum: float) -> float:
    """X such that the iteration is stable in a direction iff 0 < x < X (x = lr h^(1-p)).

    From the Jury conditions on the characteristic polynomial of the deterministic map:
    sgd: 1 - x in (-1, 1) -> X = 2; heavy ball: lambda^2 - (1 + beta - x) lambda + beta
    -> X = 2 (1 + beta); Nesterov: lambda^2 - (1 + beta)(1 - x) lambda + beta (1 - x)
    -> X = 2 (1 + beta) / (1 + 2 beta).  Iterate averaging (gamma < 1) does not change it.
    """
    if kind == "sgd":
        return 2.0
    if kind == "momentum":
        return 2.0 * (1.0 + momentum)
    return 2.0 * (1.0 + momentum) / (1.0 + 2.0 * momentum)


def lr_limit(h: np.ndarray, kind: str, momentum: float, precond: float) -> float:
    """The largest stable learning rate: stability_factor / max_i h_i^(1-p)."""
    return stability_factor(kind, momentum) / float(np.max(np.asarray(h) ** (1.0 - precond)))
