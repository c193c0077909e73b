"""Numba kernels of the loss-following noise model (`nqm.coupled`, `nqm.first_passage`).

Arrays and scalars in, arrays and scalars out.  Symbols as in `nqm.coupled`: per direction i
the state z = (theta[, v]) moves by z' = A z + b eps with A = A0 + lr A1, b = lr b1, and the
noise variance is q_i(s) = max(diag_i s_i + coup_i S + add_i, 0) / B with s_i = E theta_i^2 and
S = sum_j count_j h_j s_j (= 2 L): the noise object's per-direction coefficients
(`moment_coefficients`; least squares: diag = kappa h^2, coup = kappa h, add = sigma^2 h).
The clip at 0 binds only for a noise line that crosses zero (`nqm.loss_noise`).
The simulated sweep (`first_passage_round`) keeps least squares' (kappa, c_i) form.
"""

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _step_moments(M, A, b1, hcount, diag, coup, add, inv_b, lr, tmp):
    """M <- A M A' + q b b' for every direction (M: (d, m, m) second moments, in place;
    A = A0 + lr A1 per direction, `tmp` an (m, m) scratch array)."""
    d, m = M.shape[0], M.shape[1]
    big_s = 0.0
    for i in range(d):
        big_s += hcount[i] * M[i, 0, 0]
    for i in range(d):
        q = max(diag[i] * M[i, 0, 0] + coup[i] * big_s + add[i], 0.0) * inv_b
        # tmp = A M
        for r in range(m):
            for col in range(m):
                acc = 0.0
                for k in range(m):
                    acc += A[i, r, k] * M[i, k, col]
                tmp[r, col] = acc
        for r in range(m):
            for col in range(m):
                acc = 0.0
                for k in range(m):
                    acc += tmp[r, k] * A[i, col, k]
                M[i, r, col] = acc + q * lr * lr * b1[i, r] * b1[i, col]


@njit(cache=True, nogil=True)
def _transition(A0, A1, lr):
    """A = A0 + lr A1 (per direction), once per run."""
    return A0 + lr * A1


@njit(cache=True, nogil=True)
def _initial_moments(s0, m):
    d = s0.size
    M = np.zeros((d, m, m))
    for i in range(d):
        M[i, 0, 0] = s0[i]
    return M


@njit(cache=True, nogil=True)
def losses(A0, A1, b1, hcount, diag, coup, add, batch_size, s0, lr, n_steps):
    """Expected loss L(k) = 1/2 sum_i count_i h_i E theta_i(k)^2 for k = 0..n_steps."""
    m = A0.shape[1]
    M = _initial_moments(s0, m)
    A = _transition(A0, A1, lr)
    tmp = np.empty((m, m))
    out = np.empty(n_steps + 1)
    inv_b = 1.0 / batch_size
    for k in range(n_steps + 1):
        acc = 0.0
        for i in range(hcount.size):
            acc += hcount[i] * M[i, 0, 0]
        out[k] = 0.5 * acc
        if k < n_steps:
            _step_moments(M, A, b1, hcount, diag, coup, add, inv_b, lr, tmp)
    return out


@njit(cache=True, nogil=True)
def crossing(A0, A1, b1, hcount, diag, coup, add, batch_size, s0, lr, target, max_steps):
    """(k, x): the first step k <= max_steps with L(k) <= target (-1 if none, or if the
    loss leaves the floating-point range) and x, the crossing interpolated in log loss
    between steps k-1 and k (a continuous score for the tuner; x = k at k = 0)."""
    m = A0.shape[1]
    M = _initial_moments(s0, m)
    A = _transition(A0, A1, lr)
    tmp = np.empty((m, m))
    inv_b = 1.0 / batch_size
    prev = 0.0
    for k in range(max_steps + 1):
        acc = 0.0
        for i in range(hcount.size):
            acc += hcount[i] * M[i, 0, 0]
        loss = 0.5 * acc
        if not (loss < 1e300):
            return -1, math.inf
        if loss <= target:
            if k == 0 or loss <= 0.0:
                return k, float(k)
            x = (math.log(prev) - math.log(target)) / (math.log(prev) - math.log(loss))
            return k, k - 1.0 + x
        prev = loss
        if k < max_steps:
            _step_moments(M, A, b1, hcount, diag, coup, add, inv_b, lr, tmp)
    return -1, math.inf


@njit(cache=True, nogil=True)
def first_passage_round(h, sqrt_h, weight, precw, c, kappa, batch_size, theta0, lrs, betas,
                        momentum, z, is_eval, target, diverge_loss, stop_at):
    """One round of trials on one shared noise stream: each trial's first evaluated step with
    loss <= target (-1: not reached by stop_at), and whether it diverged.

    Direction i: g_i = h_i theta_i + eps_i with
    eps_i = (kappa z[t, 0] h_i theta_i
             + sqrt(kappa h_i theta'W H theta + c_i) z[t, 1 + i]) / sqrt(B)
    (W = diag(weight)); sgd: theta -= lr w_i g_i; heavy ball: v = beta v - lr w_i g_i,
    theta += v (w_i = precw[i]).  The loss 1/2 sum_i weight_i h_i theta_i^2 is read at steps t
    with is_eval[t]; a trial whose loss exceeds `diverge_loss` (or is not finite) diverged.
    Trials stop at the best crossing found so far (ties: the lower index wins), so the
    minimum and its trial are those of running every trial to the end."""
    n, d = lrs.size, h.size
    steps = np.full(n, -1, dtype=np.int64)
    diverged = np.zeros(n, dtype=np.bool_)
    best = stop_at
    inv_sqrt_b = 1.0 / math.sqrt(batch_size)
    theta = np.empty(d)
    vel = np.empty(d)
    for j in range(n):
        for i in range(d):
            theta[i] = theta0[j, i]
            vel[i] = 0.0
        lr = lrs[j]
        beta = betas[j]
        for t in range(1, best + 1):
            quad = 0.0
            for i in range(d):
                quad += weight[i] * h[i] * theta[i] * theta[i]
            z0 = z[t - 1, 0]
            for i in range(d):
                eps = (kappa * z0 * h[i] * theta[i]
                       + math.sqrt(kappa * h[i] * quad + c[i]) * z[t - 1, 1 + i]) * inv_sqrt_b
                g = h[i] * theta[i] + eps
                if momentum:
                    vel[i] = beta * vel[i] - lr * precw[i] * g
                    theta[i] += vel[i]
                else:
                    theta[i] -= lr * precw[i] * g
            loss = 0.0
            for i in range(d):
                loss += weight[i] * h[i] * theta[i] * theta[i]
            loss *= 0.5
            if not (loss <= diverge_loss):
                diverged[j] = True
                break
            if is_eval[t] and loss <= target:
                steps[j] = t
                if t < best:
                    best = t
                break
    return steps, diverged
