"""Exact expected loss of the NQM under a constant learning rate, at O(d) cost per step k.

For the linear iteration z' = A z + b eps of `nqm.optimizer` (per direction, Var eps = c / B)
with z(0) = f theta(0), E theta(0)^2 = s0, the loss read at y = e'z is

    E y_k^2 = s0 (e' A^k f)^2 + (c / B) sum_{t<k} (e' A^t b)^2.

Diagonalising A = V diag(lam) V^-1 gives e' A^t v = sum_j (V'e)_j lam_j^t (V^-1 v)_j, so with
q = (V'e) * (V^-1 f) and g = (V'e) * (V^-1 b):

    d(k) = sum_j q_j lam_j^k,
    n(k) = sum_{t<k} (sum_j g_j lam_j^t)^2
         = sum_{j,l} g_j g_l (1 - (lam_j lam_l)^k) / (1 - lam_j lam_l),
    L(k) = sum_i 1/2 count_i h_i [ s0_i d_i(k)^2 + (c_i / B) n_i(k) ] = D(k) + N(k) / B.

This is the closed form p_k = p* + T^k (p_0 - p*) of Zhang et al. 2019 (arXiv 1907.04164,
appendix) written through the eigenvalues of A: T's eigenvalues are lam_j lam_l.  Nothing here
depends on B, so one `Modes` serves every batch size.  Valid for a stable A (all |lam| < 1);
for SGD (m = 1) lam = 1 - x and 1 - lam^2 = x (2 - x) are formed without cancellation.
Precision: Sylvester's coefficients carry 1 / (lam_j - lam_l), so a direction whose eigenvalues
are `gap` apart (critical damping; 1 - x close to the EMA's gamma) loses about 1e-16 / gap^2 of
relative accuracy in its own terms; eigenvalues closer than 1e-7 are split by that amount
(`nqm._kernels.build_modes`).  The steady state avoids this by a direct Lyapunov solve.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from nqm import _kernels
from nqm.optimizer import OptimizerConfig, direction_powers, transition
from nqm.spectrum import Spectrum


class SpectrumParts(NamedTuple):
    """What `Modes.build` needs of a spectrum for a preconditioner exponent p, whatever the
    optimizer: the loss weights wdet = 1/2 count h s0 and wn = 1/2 count h c, and the powers
    (h^(1-p), h^-p) of `nqm.optimizer.transition`."""

    wdet: np.ndarray
    wn: np.ndarray
    powers: tuple[np.ndarray, np.ndarray]

    @classmethod
    def of(cls, spectrum: Spectrum, precond: float) -> SpectrumParts:
        w = 0.5 * spectrum.count * spectrum.h
        return cls(wdet=w * spectrum.s0, wn=w * spectrum.c,
                   powers=direction_powers(spectrum.h, precond))


@dataclass(frozen=True, eq=False)
class Modes:
    """Per-direction eigen-modes of one optimizer configuration on one spectrum (module doc).

    Row i is a direction (a spectrum row), column j a mode of its state map A_i.
    """

    logabs: np.ndarray          # (d, m) log |lam_ij|
    arg: np.ndarray             # (d, m) arg lam_ij (0 or pi for real eigenvalues)
    g: np.ndarray               # (d, m) complex: noise response e'A^t b = sum_j g_ij lam_ij^t
    q: np.ndarray               # (d, m) complex: initial response e'A^t f = sum_j q_ij lam_ij^t
    inv1m: np.ndarray           # (d, m, m) complex: 1 / (1 - lam_ij lam_il)
    realpos: np.ndarray         # (d, m) bool: lam_ij and q_ij real and lam_ij >= 0 (monotone term)
    wdet: np.ndarray            # (d,) 1/2 count_i h_i s0_i: weight of d_i(k)^2 in D(k)
    wn: np.ndarray              # (d,) 1/2 count_i h_i c_i: weight of n_i(k) in N(k)
    spectral_radius: float      # max |lam_ij|; the configuration is stable iff < 1
    spectrum: Spectrum
    config: OptimizerConfig

    def scratch(self) -> np.ndarray | None:
        """Working space for one kernel call (the powers lam^k), never shared between calls;
        None for one real mode per row (SGD), which needs none."""
        if self.logabs.shape[1] == 1:
            return None
        return np.empty(self.logabs.shape, dtype=np.complex128)

    @property
    def kernel_arg(self) -> np.ndarray | None:
        """`arg` as the kernels take it: None for one real mode per row (SGD), so that numba
        compiles only that case (`nqm._kernels.dn_at`)."""
        return None if self.logabs.shape[1] == 1 else self.arg

    @property
    def stable(self) -> bool:
        return self.spectral_radius < 1.0

    @classmethod
    def build(cls, spectrum: Spectrum, config: OptimizerConfig,
              parts: SpectrumParts | None = None) -> Modes:
        """The modes of `config` on `spectrum`; `parts` (`SpectrumParts.of(spectrum,
        config.precond)`) saves recomputing what does not depend on the configuration."""
        if parts is None:
            parts = SpectrumParts.of(spectrum, config.precond)
        u, w = parts.powers
        lr, kind = float(config.lr), config.kind
        if kind == "sgd" and config.ema is None:
            built = _kernels.build_modes_sgd(u, w, lr)
        elif config.ema is None or kind == "sgd":      # the transition's arrays in the kernel
            built = _kernels.build_modes_pair(u, w, kind == "nesterov", float(config.momentum),
                                              -1.0 if config.ema is None else float(config.ema),
                                              lr)
        else:
            built = _kernels.build_modes_momentum_ema(u, w, kind == "nesterov",
                                                      float(config.momentum),
                                                      float(config.ema), lr)
        logabs, arg, g, q, inv1m, realpos, radius = built
        return cls(logabs=logabs, arg=arg, g=g, q=q, inv1m=inv1m, realpos=realpos,
                   wdet=parts.wdet, wn=parts.wn, spectral_radius=float(radius),
                   spectrum=spectrum, config=config)

    # ------------------------------------------------------------------ evaluation
    def dn(self, k: int) -> tuple[float, float]:
        """(D(k), N(k)): the loss at step k is D + N / B."""
        return _kernels.dn_at(k, self.logabs, self.kernel_arg, self.g, self.q, self.inv1m,
                              self.wdet, self.wn, self.scratch())

    def dn_ladder(self, ks) -> tuple[np.ndarray, np.ndarray]:
        """(D(k), N(k)) at every k of an integer array (one kernel call)."""
        return _kernels.dn_ladder(np.asarray(ks, dtype=np.int64), self.logabs, self.kernel_arg,
                                  self.g, self.q, self.inv1m, self.wdet, self.wn,
                                  self.scratch())

    def dn_ladder_until(self, ks, target: float, batch_size: float):
        """`dn_ladder` up to the first k of `ks` where the loss at `batch_size` is <= target,
        that k's values repeated after it (enough to find the first ladder crossing of every
        batch size >= `batch_size`)."""
        return _kernels.dn_ladder_until(np.asarray(ks, dtype=np.int64), self.logabs,
                                        self.kernel_arg,
                                        self.g, self.q, self.inv1m, self.wdet, self.wn,
                                        self.scratch(), float(target), 1.0 / batch_size)

    def loss(self, k: int, batch_size: float) -> float:
        D, N = self.dn(k)
        return D + N / batch_size

    def losses(self, ks, batch_size: float) -> np.ndarray:
        D, N = self.dn_ladder(ks)
        return D + N / batch_size

    def steady_state(self, batch_size: float) -> float:
        """lim_k L(k) = sum_i 1/2 count_i h_i (c_i / B) e'L_i e, L_i = A L_i A' + b b'.

        Solved directly per direction (not through the modes, so close eigenvalues cost no
        accuracy); +inf for an unstable configuration."""
        if not self.stable:
            return float("inf")
        cfg, spec = self.config, self.spectrum
        tr = transition(spec.h, cfg.kind, cfg.momentum, cfg.precond, cfg.ema)
        n_inf = _lyapunov_readout(tr.A0 + cfg.lr * tr.A1, cfg.lr * tr.b1, tr.e)
        return float(np.sum(self.wn * n_inf) / batch_size)

    def first_crossings(self, batch_sizes, target: float, k_max: int,
                        hint: int | None = None) -> np.ndarray:
        """First step k <= k_max with L(k) <= target for each batch size (-1: not reached).
        `hint`, where the crossing is expected, makes it cheaper when close (a hint above
        k_max: none expected); the result does not depend on it."""
        inv_b = 1.0 / np.asarray(batch_sizes, dtype=np.float64)
        return _kernels.first_crossings(self.logabs, self.kernel_arg, self.g, self.q, self.inv1m,
                                        self.wdet, self.wn, self.realpos, inv_b,
                                        float(target), int(k_max), self.scratch(),
                                        -1 if hint is None else int(hint))


def _lyapunov_readout(A: np.ndarray, b: np.ndarray, e: np.ndarray) -> np.ndarray:
    """e'L e per direction where L = A L A' + b b' (vec form: (I - A kron A) vec L = vec bb')."""
    d, m, _ = A.shape
    kron = np.einsum("dij,dkl->dikjl", A, A).reshape(d, m * m, m * m)
    rhs = np.einsum("di,dj->dij", b, b).reshape(d, m * m)
    with np.errstate(all="ignore"):
        vec = np.linalg.solve(np.eye(m * m) - kron, rhs[..., None])[..., 0]
    return np.einsum("dij,i,j->d", vec.reshape(d, m, m), e, e)
