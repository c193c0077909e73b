"""Gradient noise that follows the loss: the exact expected loss of least squares.

Linear regression with Gaussian inputs x ~ N(0, H) and labels y = x'theta* + sigma xi: the
per-example gradient at delta = theta - theta* is g = x x'delta - sigma x xi, whose covariance
is (Gaussian fourth moments, E[x x' A x x'] = 2 H A H + tr(A H) H)

    Sigma(delta) = H delta delta' H + (delta' H delta) H + sigma^2 H.

In the eigenbasis of H (curvature h_i, multiplicity count_i), a batch of B examples gives
gradient noise eps_i of variance c_i(s) / B, with s_i = E delta_i^2 and

    c_i(s) = kappa (h_i^2 s_i + h_i S) + sigma^2 h_i,    S = sum_j count_j h_j s_j = 2 L,

kappa = 1 (kappa = 0 switches the coupling off: the constant-noise NQM with c = sigma^2 h,
Zhang et al. 2019, arXiv 1907.04164, section 2).  Only the diagonal of Sigma enters the
second moments of delta_i, so the recurrence below is closed and exact.

SGD, with preconditioner h^-p (a_i = lr h_i^-p, x_i = a_i h_i):

    s_i' = (1 - x_i)^2 s_i + (a_i^2 / B) c_i(s).

Heavy-ball momentum (v' = beta v - a g, theta' = theta + v', as `nqm.optimizer`): with
z = (theta, v), z' = A z + b eps, A = [[1 - x, beta], [-x, beta]], b = (-a, -a), the per-direction
second moments M = E z z' = [[s, m], [m, u]] (s = E theta^2, u = E v^2, m = E theta v) obey

    s' = (1-x)^2 s + 2 beta (1-x) m + beta^2 u + (a^2/B) c_i(s)
    u' = x^2 s     - 2 beta x m     + beta^2 u + (a^2/B) c_i(s)
    m' = -x(1-x) s + beta (1 - 2x) m + beta^2 u + (a^2/B) c_i(s)

(the gradient, hence the noise, is taken at theta, so c_i depends on s alone).  Nesterov and
iterate averaging are not modelled here.  The loss is L = 1/2 sum_i count_i h_i s_i; the
spectrum's `c` is not used (it is implied by s and sigma^2).

The recurrence needs of the noise only that c_i(s) be linear in s: any noise object with
`moment_coefficients(spectrum) -> (diag, coup, add)`, c_i(s) = diag_i s_i + coup_i S + add_i,
runs through the same kernels (`nqm.loss_noise.LossFollowingNoise`: noise proportional to
L + l_noise, for models that are not least squares).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nqm import _coupled_kernels as _k
from nqm.checks import check_batch_size, check_budget, check_target
from nqm.errors import NQMInputError
from nqm.optimizer import OptimizerConfig, transition
from nqm.spectrum import Spectrum


@dataclass(frozen=True)
class CoupledNoise:
    """Label-noise variance sigma2 = sigma^2 >= 0 and whether the noise follows the loss."""

    sigma2: float
    coupling: bool = True

    def __post_init__(self):
        if not (np.isfinite(self.sigma2) and self.sigma2 >= 0):
            raise NQMInputError(f"sigma2 (label-noise variance) must be a finite number >= 0, "
                                f"got {self.sigma2}")

    @property
    def kappa(self) -> float:
        """The coupling's weight: 1 with noise that follows the loss, 0 without."""
        return 1.0 if self.coupling else 0.0

    def additive(self, spectrum: Spectrum) -> np.ndarray:
        """The loss-independent part sigma^2 h_i of c_i(s)."""
        return self.sigma2 * spectrum.h

    def moment_coefficients(self, spectrum: Spectrum):
        """(diag, coup, add) with c_i(s) = diag_i s_i + coup_i S + add_i:
        (kappa h_i^2, kappa h_i, additive_i)."""
        h = spectrum.h
        return self.kappa * h * h, self.kappa * h, self.additive(spectrum)


def check_optimizer(config: OptimizerConfig) -> OptimizerConfig:
    """Only SGD and heavy-ball momentum without EMA have the closed recurrence here."""
    if config.kind not in ("sgd", "momentum") or config.ema is not None:
        raise NQMInputError(f"optimizer must be sgd or momentum without ema for the "
                            f"loss-following noise model, got {config.kind}"
                            f"{'' if config.ema is None else ' with ema'}")
    return config


def _args(spectrum: Spectrum, noise, config: OptimizerConfig):
    check_optimizer(config)
    tr = transition(spectrum.h, config.kind, config.momentum, config.precond, None)
    diag, coup, add = (np.ascontiguousarray(a, dtype=np.float64)
                       for a in noise.moment_coefficients(spectrum))
    return (tr.A0, tr.A1, tr.b1, spectrum.count * spectrum.h, diag, coup, add)


def expected_loss(spectrum: Spectrum, noise, config: OptimizerConfig,
                  batch_size: float, n_steps: int) -> np.ndarray:
    """E L(theta_k) for k = 0..n_steps (float64, exact recurrence of the module docstring);
    `noise`: a `CoupledNoise` or any object with `moment_coefficients`."""
    batch_size = check_batch_size(batch_size)
    if int(n_steps) != n_steps or n_steps < 0:
        raise NQMInputError(f"n_steps must be an integer >= 0, got {n_steps}")
    return _k.losses(*_args(spectrum, noise, config), batch_size, spectrum.s0,
                     float(config.lr), int(n_steps))


def first_crossing(spectrum: Spectrum, noise, config: OptimizerConfig,
                   batch_size: float, target: float, max_steps: int) -> tuple[int | None, float]:
    """(k, x): the exact first step k <= max_steps with E L(k) <= target (None if none) and
    the crossing interpolated in log loss between k - 1 and k (inf if none)."""
    batch_size = check_batch_size(batch_size)
    k, x = _k.crossing(*_args(spectrum, noise, config), batch_size, spectrum.s0,
                       float(config.lr), check_target(target), check_budget(max_steps))
    return (None if k < 0 else int(k)), float(x)
