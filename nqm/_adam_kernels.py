"""Numba kernels of the mean-field Adam recurrence (`nqm.adam` states the math).

Each kernel takes the spectrum's arrays and scalars only; `nqm.adam` validates and allocates.
Per direction i the state is the second moments S_i = E theta_i^2, M_i = E m_i^2,
X_i = E theta_i m_i; v is the one scalar second-moment average of the isotropic preconditioner.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

DIVERGED = 1e12   # a loss this many times the initial loss has diverged


@njit(cache=True)
def _step(h, c, count, S, M, X, v, k, batch_size, lr, beta1, beta2, eps, n_params):
    """One step k >= 1 of the recurrence, in place; returns (loss after it, new v)."""
    g2 = 0.0
    for i in range(h.size):
        g2 += count[i] * (h[i] * h[i] * S[i] + c[i] / batch_size)
    v = beta2 * v + (1.0 - beta2) * g2 / n_params
    a = lr / (1.0 - beta1 ** k) / (math.sqrt(v / (1.0 - beta2 ** k)) + eps)
    b = 1.0 - beta1
    loss = 0.0
    for i in range(h.size):
        a00 = 1.0 - a * b * h[i]
        a01 = -a * beta1
        a10 = b * h[i]
        n0 = -a * b
        q = c[i] / batch_size
        s, m, x = S[i], M[i], X[i]
        S[i] = a00 * a00 * s + 2.0 * a00 * a01 * x + a01 * a01 * m + n0 * n0 * q
        M[i] = a10 * a10 * s + 2.0 * a10 * beta1 * x + beta1 * beta1 * m + b * b * q
        X[i] = (a00 * a10 * s + (a00 * beta1 + a01 * a10) * x + a01 * beta1 * m
                + n0 * b * q)
        loss += 0.5 * count[i] * h[i] * S[i]
    return loss, v


@njit(cache=True)
def _start(h, s0, count):
    """The state at step 0: (S, M, X) = (s0, 0, 0), N_p and the initial loss."""
    loss = 0.0
    for i in range(h.size):
        loss += 0.5 * count[i] * h[i] * s0[i]
    return s0.copy(), np.zeros(h.size), np.zeros(h.size), count.sum(), loss


@njit(cache=True)
def expected_losses(h, c, s0, count, batch_size, lr, beta1, beta2, eps, out):
    """out[k] = E L after k steps, k = 0 .. out.size - 1 (nan from a diverged step on)."""
    S, M, X, n_params, loss = _start(h, s0, count)
    out[0] = loss
    limit = DIVERGED * loss
    v = 0.0
    for k in range(1, out.size):
        loss, v = _step(h, c, count, S, M, X, v, k, batch_size, lr, beta1, beta2, eps,
                        n_params)
        if not loss < limit:
            out[k:] = np.nan
            return
        out[k] = loss


@njit(cache=True)
def first_crossing(h, c, s0, count, batch_size, lr, beta1, beta2, eps, target, k_max):
    """(k, log L(k)): the first step k in 1 .. k_max with E L(k) <= target and its log loss
    (with the log loss of the step before it in the third slot, for interpolation); k = -1 and
    the log loss at k_max where the target is not met; k = -2 where the loss diverged."""
    S, M, X, n_params, loss = _start(h, s0, count)
    limit = DIVERGED * loss
    v = 0.0
    for k in range(1, k_max + 1):
        before = loss
        loss, v = _step(h, c, count, S, M, X, v, k, batch_size, lr, beta1, beta2, eps,
                        n_params)
        if not loss < limit:
            return -2, math.inf, math.log(before)
        if loss <= target:
            return k, math.log(loss), math.log(before)
    return -1, math.log(loss), math.log(loss)
