"""Adam on the noisy quadratic, in the mean field, with a preconditioner not aligned to H.

Adam (Kingma & Ba 2015, arXiv 1412.6980) per parameter p, step k = 1, 2, ...:

    m_p' = beta1 m_p + (1 - beta1) g_p,     u_p' = beta2 u_p + (1 - beta2) g_p^2,
    theta_p' = theta_p - lr (m_p' / (1 - beta1^k)) / (sqrt(u_p' / (1 - beta2^k)) + eps).

Zhang et al. 2019 (arXiv 1907.04164, section 3.2) stand Adam in for a fixed diagonal
preconditioner H^-p in H's eigenbasis (`nqm.optimizer`, precond = p), which assumes that the
parameters are H's eigenvectors.  Here the opposite is assumed: the parameter basis is
unaligned (a random rotation of the eigenbasis), so every parameter sees the same average
E g_p^2 = E|g|^2 / N_p, and u is replaced by its expectation (the mean field: u averages about
1 / (1 - beta2) steps of g^2).  Adam then is heavy-ball momentum in the eigenbasis with one
scalar, state-dependent step size:

    v(k)  = beta2 v(k-1) + (1 - beta2) (1 / N_p) sum_i count_i (h_i^2 S_i + c_i / B),
    a(k)  = lr / (1 - beta1^k) / (sqrt(v(k) / (1 - beta2^k)) + eps),
    m_i'  = beta1 m_i + (1 - beta1)(h_i theta_i + e_i),    theta_i' = theta_i - a(k) m_i',

with N_p = sum_i count_i, e_i the gradient noise of variance c_i / B, and S_i = E theta_i^2
(E g_i^2 = h_i^2 S_i + c_i / B).  With z = (theta_i, m_i), z' = A z + n e_i,
A = [[1 - a b h_i, -a beta1], [b h_i, beta1]], n = (-a b, b), b = 1 - beta1, the second moments
S, M = E m^2, X = E theta m follow exactly (given a(k)) from E z'z'^T = A E zz^T A^T +
(c_i / B) n n^T, from S = s0, M = X = 0; the expected loss is L(k) = 1/2 sum_i count_i h_i S_i.
So at small B (noise-dominated v) Adam is momentum SGD with a constant normalised step, and at
large B its step grows as the gradient shrinks.  The learning rate is in the parameters' units:
each step moves a parameter by about lr, and `lr_unit` = sqrt(sum_i count_i s0_i / N_p) is the
root-mean-square initial distance per parameter.  (A measured spectrum whose rows stand for
fewer directions than the model has parameters puts N_p below the true count, so v above and
lr below the real ones by about sqrt(n_params / N_p); the step counts do not depend on it.)

Symbols -> arguments: lr = `lr`, beta1 = `beta1`, beta2 = `beta2`, eps = `eps`, B = `batch_size`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nqm.checks import check_batch_size, check_budget, check_target_below_initial
from nqm.errors import NQMInputError
from nqm.spectrum import Spectrum


@dataclass(frozen=True)
class AdamConfig:
    """lr > 0; 0 <= beta1 < 1; 0 <= beta2 < 1; eps >= 0 (torch.optim.Adam's defaults)."""

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self):
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise NQMInputError(f"lr must be a finite number > 0, got {self.lr}")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise NQMInputError(f"{name} must be in [0, 1), got {value}")
        if not (math.isfinite(self.eps) and self.eps >= 0):
            raise NQMInputError(f"eps must be a finite number >= 0, got {self.eps}")


def lr_unit(spectrum: Spectrum) -> float:
    """sqrt(sum_i count_i s0_i / N_p): the root-mean-square initial distance per parameter."""
    return math.sqrt(float(np.sum(spectrum.count * spectrum.s0) / np.sum(spectrum.count)))


def kernel_arrays(spectrum: Spectrum) -> tuple[np.ndarray, ...]:
    """(h, c, s0, count) as contiguous float64 arrays, the kernels' first four arguments."""
    return (np.ascontiguousarray(spectrum.h, dtype=np.float64),
            np.ascontiguousarray(spectrum.c, dtype=np.float64),
            np.ascontiguousarray(spectrum.s0, dtype=np.float64),
            np.ascontiguousarray(spectrum.count, dtype=np.float64))


def expected_loss(spectrum: Spectrum, batch_size: float, config: AdamConfig,
                  steps: int) -> np.ndarray:
    """E L(k) for k = 0 .. steps (module docstring); nan from a diverged step on."""
    from nqm import _adam_kernels as _k

    batch_size = check_batch_size(batch_size)
    steps = check_budget(steps)
    out = np.empty(steps + 1)
    _k.expected_losses(*kernel_arrays(spectrum), float(batch_size), config.lr, config.beta1,
                       config.beta2, config.eps, out)
    return out


def steps_to_target(spectrum: Spectrum, batch_size: float, config: AdamConfig, target: float,
                    max_steps: int) -> int | None:
    """The first k in 1 .. max_steps with E L(k) <= target; None where there is none."""
    from nqm import _adam_kernels as _k

    batch_size = check_batch_size(batch_size)
    target = check_target_below_initial(spectrum, target)
    max_steps = check_budget(max_steps)
    k, _, _ = _k.first_crossing(*kernel_arrays(spectrum), float(batch_size), config.lr,
                                config.beta1, config.beta2, config.eps, target, max_steps)
    return int(k) if k > 0 else None
