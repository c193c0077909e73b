"""Numba kernels: arrays and scalars in, arrays and scalars out (the only module importing numba).

Closed form (see `nqm.closed_form`): per direction i and mode j the state map has eigenvalue
lam[i, j] = exp(logabs[i, j] + 1j * arg[i, j]); the deterministic response is
d_i(k) = sum_j q[i, j] lam^k and the accumulated noise is
n_i(k) = sum_{j,l} g_j g_l (1 - (lam_j lam_l)^k) * inv1m[i, j, l],  inv1m = 1 / (1 - lam_j lam_l).
Expected loss at step k for batch size B:  L(k) = D(k) + N(k) / B  with
D(k) = sum_i wdet_i Re(d_i(k))^2 and N(k) = sum_i wn_i Re(n_i(k)).
"""

import math

import numpy as np
from numba import njit

LEAF = 4
SPLIT = 1e-7  # eigenvalues closer than this are split apart (defective / critically damped A)


@njit(cache=True)
def _quad_roots(a00, a01, a10, a11):
    """Eigenvalues of [[a00, a01], [a10, a11]] without cancellation in the real case."""
    half_tr = 0.5 * (a00 + a11)
    det = a00 * a11 - a01 * a10
    disc = half_tr * half_tr - det
    if disc >= 0.0:
        root = math.sqrt(disc)
        l1 = half_tr + root if half_tr >= 0.0 else half_tr - root
        l2 = det / l1 if l1 != 0.0 else half_tr - root
        return complex(l1, 0.0), complex(l2, 0.0)
    root = math.sqrt(-disc)
    return complex(half_tr, root), complex(half_tr, -root)


def build_modes(A0, A1, b1, f, e, lr, m0):
    """Eigen-modes of A = A0 + lr A1 per direction, for `nqm.closed_form.Modes`.

    The state map is block lower-triangular (an EMA row appended to a base block of size m0),
    so its eigenvalues are the base block's (closed form) and the trailing diagonal entry.
    Sylvester's formula A^t = sum_j lam_j^t prod_{l != j} (A - lam_l I) / (lam_j - lam_l)
    gives e'A^t v = sum_j c_j(v) lam_j^t with
        c_j(v) = e' prod_{l != j} (A - lam_l I) v / prod_{l != j} (lam_j - lam_l),
    so g = c(lr b1) and q = c(f).  Returns logabs, arg, g, q, inv1m = 1 / (1 - lam_j lam_l),
    realpos and the spectral radius.  One kernel per state size m (1: SGD; 2: momentum,
    Nesterov or SGD + EMA; 3: momentum + EMA), so a command compiles only the one it uses.
    """
    m = A0.shape[1]
    if m == 1:
        return _build_modes_1(A0, A1, b1, f, e, float(lr))
    if m == 2:
        return _build_modes_2(A0, A1, b1, f, e, float(lr), int(m0))
    return _build_modes_general(A0, A1, b1, f, e, float(lr), int(m0))


@njit(cache=True, nogil=True)
def build_modes_sgd(u, w, lr):
    """`build_modes` of plain SGD from u = h^(1-p) and w = h^-p alone: `_build_modes_1` with
    the arrays of `nqm.optimizer.transition` (A0 = 1, A1 = -u, b1 = -w, f = e = 1) written
    into its arithmetic, so the result is bit for bit `build_modes`'s."""
    d = u.size
    logabs, arg, g, q, inv1m, realpos = _sgd_arrays(d)
    radius = 0.0
    for i in range(d):
        r = _sgd_row(i, 1.0 + lr * -u[i], (1.0 - 1.0) - lr * -u[i], lr * -w[i] * 1.0, 1.0,
                     logabs, arg, g, q, inv1m, realpos)
        radius = max(radius, r)
    return logabs, arg, g, q, inv1m, realpos, radius


@njit(cache=True, nogil=True)
def build_modes_pair(u, w, nesterov, beta, gamma, lr):
    """`build_modes` of a 2 x 2 map from u = h^(1-p), w = h^-p and scalars: heavy-ball
    (nesterov False) or Nesterov momentum beta when gamma < 0, else SGD with iterate averaging
    gamma.  The entries A0 + lr A1 and lr b1 of `nqm.optimizer.transition` are written out
    with its arithmetic, so the result is bit for bit `build_modes`'s."""
    d = u.size
    logabs, arg, g, q, inv1m, realpos = _pair_arrays(d)
    radius = 0.0
    for i in range(d):
        x1 = -u[i]                      # A1[0, 0]
        if gamma < 0.0:                 # A0 = [[1, beta], [0, beta]], b1 = (-w, -w)
            n1 = -beta * u[i] if nesterov else 0.0          # A1[0, 1] = A1[1, 1]
            r = _pair_row(i, 1.0 + lr * x1, beta + lr * n1, 0.0 + lr * x1, beta + lr * n1,
                          lr * -w[i], lr * -w[i], 1.0, 0.0, 1.0, 0.0, 2,
                          logabs, arg, g, q, inv1m, realpos)
        else:                           # A0 = [[1, 0], [1 - gamma, gamma]]
            r = _pair_row(i, 1.0 + lr * x1, 0.0 + lr * 0.0,
                          (1.0 - gamma) * 1.0 + lr * ((1.0 - gamma) * x1), gamma + lr * 0.0,
                          lr * -w[i], lr * ((1.0 - gamma) * -w[i]), 1.0, 1.0, 0.0, 1.0, 1,
                          logabs, arg, g, q, inv1m, realpos)
        radius = max(radius, r)
    return logabs, arg, g, q, inv1m, realpos, radius


@njit(cache=True, nogil=True)
def build_modes_momentum_ema(u, w, nesterov, beta, gamma, lr):
    """`build_modes` of heavy-ball (nesterov False) or Nesterov momentum beta with iterate
    averaging gamma from u = h^(1-p), w = h^-p and scalars, the 3 x 3 arrays formed here with
    the arithmetic of `nqm.optimizer.transition` (bit for bit `build_modes`'s)."""
    d = u.size
    A0 = np.zeros((d, 3, 3))
    A1 = np.zeros((d, 3, 3))
    b1 = np.zeros((d, 3))
    for i in range(d):
        A0[i, 0, 0] = 1.0
        A1[i, 0, 0] = -u[i]
        b1[i, 0] = -w[i]
        A0[i, 0, 1] = beta
        A0[i, 1, 1] = beta
        A1[i, 1, 0] = -u[i]
        if nesterov:
            A1[i, 0, 1] = -beta * u[i]
            A1[i, 1, 1] = -beta * u[i]
        b1[i, 1] = -w[i]
        for s in range(2):
            A0[i, 2, s] = (1.0 - gamma) * A0[i, 0, s]
            A1[i, 2, s] = (1.0 - gamma) * A1[i, 0, s]
        A0[i, 2, 2] = gamma
        b1[i, 2] = (1.0 - gamma) * b1[i, 0]
    f = np.zeros(3)
    e = np.zeros(3)
    f[0] = 1.0
    f[2] = 1.0
    e[2] = 1.0
    return _build_modes_general(A0, A1, b1, f, e, lr, 2)


@njit(cache=True, nogil=True)
def _build_modes_1(A0, A1, b1, f, e, lr):
    """`build_modes` for SGD: lam = 1 - x, g = lr b1, q = 1, 1 - lam^2 = x (2 - x) without
    cancellation."""
    d = A0.shape[0]
    logabs, arg, g, q, inv1m, realpos = _sgd_arrays(d)
    radius = 0.0
    for i in range(d):
        r = _sgd_row(i, A0[i, 0, 0] + lr * A1[i, 0, 0], (1.0 - A0[i, 0, 0]) - lr * A1[i, 0, 0],
                     lr * b1[i, 0] * e[0], f[0] * e[0], logabs, arg, g, q, inv1m, realpos)
        radius = max(radius, r)
    return logabs, arg, g, q, inv1m, realpos, radius


@njit(cache=True)
def _sgd_arrays(d):
    """Empty logabs, arg, g, q, inv1m, realpos for d rows of one mode."""
    return (np.empty((d, 1)), np.empty((d, 1)), np.empty((d, 1), dtype=np.complex128),
            np.empty((d, 1), dtype=np.complex128), np.empty((d, 1, 1), dtype=np.complex128),
            np.empty((d, 1), dtype=np.bool_))


@njit(cache=True)
def _sgd_row(i, lam, one_minus, gi, qi, logabs, arg, g, q, inv1m, realpos):
    """Row i of one real mode lam (one_minus = 1 - lam, formed by the caller without
    cancellation), g = gi, q = qi; returns |lam|."""
    a = abs(lam)
    logabs[i, 0] = math.log(a) if a > 0.0 else -np.inf
    arg[i, 0] = 0.0 if lam >= 0.0 else math.pi
    g[i, 0] = gi
    q[i, 0] = qi
    inv1m[i, 0, 0] = 1.0 / (one_minus * (1.0 + lam))
    realpos[i, 0] = lam >= 0.0
    return a


@njit(cache=True)
def _pair_row(i, a00, a01, a10, a11, b0, b1_, f0, f1, e0, e1, m0,
              logabs, arg, g, q, inv1m, realpos):
    """Row i of `_build_modes_2` from the entries of A = [[a00, a01], [a10, a11]],
    b = (b0, b1_), f = (f0, f1), e = (e0, e1); returns max |lam| of the row."""
    f = (f0, f1)
    e = (e0, e1)
    radius = 0.0
    if m0 == 2:
        l0, l1 = _quad_roots(a00, a01, a10, a11)
    else:        # SGD + EMA: A is lower triangular, its eigenvalues its diagonal
        l0, l1 = complex(a00, 0.0), complex(a11, 0.0)
    if abs(l0 - l1) < SPLIT:
        l0 += SPLIT
        l1 -= SPLIT
    eb = e[0] * b0 + e[1] * b1_
    ef = e[0] * f[0] + e[1] * f[1]
    eAb = e[0] * (a00 * b0 + a01 * b1_) + e[1] * (a10 * b0 + a11 * b1_)
    eAf = e[0] * (a00 * f[0] + a01 * f[1]) + e[1] * (a10 * f[0] + a11 * f[1])
    g[i, 0] = (eAb - l1 * eb) / (l0 - l1)
    g[i, 1] = (eAb - l0 * eb) / (l1 - l0)
    q[i, 0] = (eAf - l1 * ef) / (l0 - l1)
    q[i, 1] = (eAf - l0 * ef) / (l1 - l0)
    for j in range(2):
        lam = l0 if j == 0 else l1
        a = abs(lam)
        radius = max(radius, a)
        logabs[i, j] = math.log(a) if a > 0.0 else -np.inf
        arg[i, j] = math.atan2(lam.imag, lam.real)
        realpos[i, j] = lam.imag == 0.0 and lam.real >= 0.0 and q[i, j].imag == 0.0
    inv1m[i, 0, 0] = 1.0 / (1.0 - l0 * l0)
    inv1m[i, 0, 1] = 1.0 / (1.0 - l0 * l1)
    inv1m[i, 1, 0] = inv1m[i, 0, 1]
    inv1m[i, 1, 1] = 1.0 / (1.0 - l1 * l1)
    return radius


@njit(cache=True, nogil=True)
def _build_modes_2(A0, A1, b1, f, e, lr, m0):
    """`build_modes` for a 2 x 2 map: momentum / Nesterov (m0 = 2) or SGD + EMA (m0 = 1), the
    formulas in scalars (`_pair_row`)."""
    d = A0.shape[0]
    logabs, arg, g, q, inv1m, realpos = _pair_arrays(d)
    radius = 0.0
    for i in range(d):
        r = _pair_row(i, A0[i, 0, 0] + lr * A1[i, 0, 0], A0[i, 0, 1] + lr * A1[i, 0, 1],
                      A0[i, 1, 0] + lr * A1[i, 1, 0], A0[i, 1, 1] + lr * A1[i, 1, 1],
                      lr * b1[i, 0], lr * b1[i, 1], f[0], f[1], e[0], e[1], m0,
                      logabs, arg, g, q, inv1m, realpos)
        radius = max(radius, r)
    return logabs, arg, g, q, inv1m, realpos, radius


@njit(cache=True)
def _pair_arrays(d):
    """Empty logabs, arg, g, q, inv1m, realpos for d rows of two modes."""
    return (np.empty((d, 2)), np.empty((d, 2)), np.empty((d, 2), dtype=np.complex128),
            np.empty((d, 2), dtype=np.complex128), np.empty((d, 2, 2), dtype=np.complex128),
            np.empty((d, 2), dtype=np.bool_))


@njit(cache=True, nogil=True)
def _build_modes_general(A0, A1, b1, f, e, lr, m0):
    """`build_modes` for any block lower-triangular map of size m <= 3 (`_build_one`)."""
    d, m, _ = A0.shape
    logabs = np.empty((d, m))
    arg = np.empty((d, m))
    g = np.empty((d, m), dtype=np.complex128)
    q = np.empty((d, m), dtype=np.complex128)
    inv1m = np.empty((d, m, m), dtype=np.complex128)
    realpos = np.empty((d, m), dtype=np.bool_)
    radii = np.zeros(d)
    lam = np.empty(m, dtype=np.complex128)
    A = np.empty((m, m))
    b = np.empty(m)
    Ab = np.empty(m)
    Af = np.empty(m)
    for i in range(d):
        _build_one(i, A0, A1, b1, f, e, lr, m0, m, lam, A, b, Ab, Af,
                   logabs, arg, g, q, inv1m, realpos, radii)
    radius = 0.0
    for i in range(d):
        radius = max(radius, radii[i])
    return logabs, arg, g, q, inv1m, realpos, radius


@njit(cache=True)
def _build_one(  # the general case: SGD + EMA (m0 = 1, m = 2) and momentum + EMA (m = 3)
i, A0, A1, b1, f, e, lr, m0, m, lam, A, b, Ab, Af,
               logabs, arg, g, q, inv1m, realpos, radii):
    for r in range(m):
        b[r] = lr * b1[i, r]
        for s in range(m):
            A[r, s] = A0[i, r, s] + lr * A1[i, r, s]
    if m0 == 1:
        lam[0] = A[0, 0]
    else:
        lam[0], lam[1] = _quad_roots(A[0, 0], A[0, 1], A[1, 0], A[1, 1])
    if m > m0:
        lam[m - 1] = A[m - 1, m - 1]
    for j in range(m):                      # split (near-)coincident eigenvalues
        for l in range(j + 1, m):
            if abs(lam[j] - lam[l]) < SPLIT:
                lam[j] += SPLIT
                lam[l] -= SPLIT
    for r in range(m):
        Ab[r] = 0.0
        Af[r] = 0.0
        for s in range(m):
            Ab[r] += A[r, s] * b[s]
            Af[r] += A[r, s] * f[s]
    eb = 0.0
    ef = 0.0
    eAb = 0.0
    eAf = 0.0
    eAAb = 0.0
    eAAf = 0.0
    for r in range(m):
        eb += e[r] * b[r]
        ef += e[r] * f[r]
        eAb += e[r] * Ab[r]
        eAf += e[r] * Af[r]
        for s in range(m):
            eAAb += e[r] * A[r, s] * Ab[s]
            eAAf += e[r] * A[r, s] * Af[s]
    for j in range(m):
        if m == 2:
            o = lam[1 - j]
            g[i, j] = (eAb - o * eb) / (lam[j] - o)
            q[i, j] = (eAf - o * ef) / (lam[j] - o)
        else:
            oa = lam[(j + 1) % 3]
            ob = lam[(j + 2) % 3]
            den = (lam[j] - oa) * (lam[j] - ob)
            g[i, j] = (eAAb - (oa + ob) * eAb + oa * ob * eb) / den
            q[i, j] = (eAAf - (oa + ob) * eAf + oa * ob * ef) / den
        a = abs(lam[j])
        radii[i] = max(radii[i], a)
        logabs[i, j] = math.log(a) if a > 0.0 else -np.inf
        arg[i, j] = math.atan2(lam[j].imag, lam[j].real)
        realpos[i, j] = lam[j].imag == 0.0 and lam[j].real >= 0.0 and q[i, j].imag == 0.0
    for j in range(m):
        for l in range(m):
            inv1m[i, j, l] = 1.0 / (1.0 - lam[j] * lam[l])


@njit(cache=True, inline="always")
def _powk(logabs, arg, k):
    if k == 0:
        return 1.0 + 0.0j
    r = math.exp(k * logabs)
    if arg == 0.0:
        return complex(r, 0.0)
    return complex(r * math.cos(k * arg), r * math.sin(k * arg))


@njit(cache=True, inline="always")
def _noise_row(i, m, g, inv1m, work):
    """n_i(k) = Re sum_{j,l} g_j g_l (1 - p_j p_l) inv1m_jl with p = work[i] = lam^k; for a
    conjugate pair (m = 2: p_1, g_1, inv1m_11 the conjugates of p_0, g_0, inv1m_00) the (1, 1)
    term is the conjugate of the (0, 0) term, so Re of their sum is twice Re of one."""
    if m == 2 and work[i, 1] == work[i, 0].conjugate() and g[i, 1] == g[i, 0].conjugate() \
            and inv1m[i, 1, 1] == inv1m[i, 0, 0].conjugate() and work[i, 0].imag != 0.0:
        p0 = work[i, 0]
        t00 = g[i, 0] * g[i, 0] * (1.0 - p0 * p0) * inv1m[i, 0, 0]
        t01 = g[i, 0] * g[i, 1] * (1.0 - p0 * work[i, 1]) * inv1m[i, 0, 1]
        return 2.0 * (t00.real + t01.real)
    s = 0.0 + 0.0j
    for j in range(m):
        pj = work[i, j]
        s += g[i, j] * g[i, j] * (1.0 - pj * pj) * inv1m[i, j, j]
        for l in range(j + 1, m):
            s += 2.0 * g[i, j] * g[i, l] * (1.0 - pj * work[i, l]) * inv1m[i, j, l]
    return s.real


@njit(cache=True, nogil=True)
def dn_at(k, logabs, arg, g, q, inv1m, wdet, wn, work):
    """(D(k), N(k)) of the module docstring.

    `arg` and `work` None: one real mode per row (SGD), d^2 = lam^(2k) and
    n = g^2 (1 - lam^(2k)) / (1 - lam^2), all real; numba then compiles only this case."""
    d, m = logabs.shape
    D = 0.0
    N = 0.0
    if arg is None:
        for i in range(d):
            p2 = math.exp(2.0 * k * logabs[i, 0]) if k > 0 else 1.0
            D += wdet[i] * p2 * (q[i, 0].real * q[i, 0].real)
            N += wn[i] * (g[i, 0].real * g[i, 0].real) * (1.0 - p2) * inv1m[i, 0, 0].real
        return D, N
    for i in range(d):
        dk = 0.0
        for j in range(m):
            if j > 0 and arg[i, j] == -arg[i, j - 1] and arg[i, j] != 0.0 and \
                    logabs[i, j] == logabs[i, j - 1]:
                pj = work[i, j - 1].conjugate()      # conjugate pair: one power serves both
            else:
                pj = _powk(logabs[i, j], arg[i, j], k)
            work[i, j] = pj
            dk += (q[i, j] * pj).real
        D += wdet[i] * dk * dk
        N += wn[i] * _noise_row(i, m, g, inv1m, work)
    return D, N


@njit(cache=True, nogil=True)
def dn_ladder(ks, logabs, arg, g, q, inv1m, wdet, wn, work):
    """(D(k), N(k)) for every k in `ks`."""
    n = ks.size
    D = np.empty(n)
    N = np.empty(n)
    for i in range(n):
        D[i], N[i] = dn_at(ks[i], logabs, arg, g, q, inv1m, wdet, wn, work)
    return D, N


@njit(cache=True, nogil=True)
def dn_ladder_until(ks, logabs, arg, g, q, inv1m, wdet, wn, work, target, inv_b):
    """(D(k), N(k)) along `ks` up to the first k with D + N * inv_b <= target; the entries
    after it repeat that k's values (a larger batch size, inv_b' <= inv_b, has crossed by
    then, so the first crossing on the ladder is the same for every such batch size)."""
    n = ks.size
    D = np.empty(n)
    N = np.empty(n)
    for i in range(n):
        D[i], N[i] = dn_at(ks[i], logabs, arg, g, q, inv1m, wdet, wn, work)
        if D[i] + N[i] * inv_b <= target:
            D[i + 1:] = D[i]
            N[i + 1:] = N[i]
            break
    return D, N


@njit(cache=True)
def _log_excess(k, logabs, arg, g, q, inv1m, wdet, wn, work, inv_b, log_target, log_l0):
    """log L(k) - log target (k = 0: the initial loss exp(log_l0))."""
    if k == 0:
        return log_l0 - log_target
    D, N = dn_at(k, logabs, arg, g, q, inv1m, wdet, wn, work)
    return math.log(max(D + N * inv_b, 1e-300)) - log_target


@njit(cache=True, nogil=True)
def surrogate_crossing(logabs, arg, g, q, inv1m, wdet, wn, work, inv_b, log_target, log_l0,
                       hint, k_max, probe, max_bracket, overshoot, max_log_step, rel_width,
                       k_above=np.inf):
    """The search of `nqm.tuning._Problem.surrogate_closed` (its docstring states it) with
    f(k) = log L(k) - log target: returns (0, crossing interpolated between integer steps) or
    (1, f at the last step tried) when no crossing was bracketed (the caller's penalty).
    With `k_above` finite, (2, k) with k > k_above as soon as the result is known to be at
    least k (the caller needs no more): while the search steps up from the hint (f > 0 at
    every step so far, so the crossing, or the penalty >= k_max, lies beyond the last step),
    and while the bracket [lo, hi] has f(lo) > 0 >= f(hi) (the interpolation lies in it);
    the steps evaluated up to then are the full search's."""
    k0 = int(min(max(np.rint(hint), 1.0), k_max))
    f0 = _log_excess(k0, logabs, arg, g, q, inv1m, wdet, wn, work, inv_b, log_target, log_l0)
    up = f0 > 0
    if up and k0 > k_above:
        return 2, float(k0)
    k1 = int(min(max(k0 + (1 if up else -1) * max(1.0, np.rint(probe * k0)), 0), k_max))
    f1 = _log_excess(k1, logabs, arg, g, q, inv1m, wdet, wn, work, inv_b, log_target, log_l0)
    bracketed = False
    for _ in range(max_bracket):
        if (f0 > 0) != (f1 > 0):
            bracketed = True
            break
        if f1 > 0 and k1 >= k_max:
            return 1, f1
        if f1 > 0 and f0 > 0 and k1 > k_above and k1 > k0:
            return 2, float(k1)
        up = f1 > 0
        dt = math.log1p(k1) - math.log1p(k0)
        slope = (f1 - f0) / dt if dt != 0 else 0.0
        step = -f1 / slope if slope != 0 else 0.0
        if not math.isfinite(step) or (step > 0) != up or step == 0:
            step = 2.0 * abs(dt) * (1 if up else -1)
        step = max(min(step * overshoot, max_log_step), -max_log_step)
        k_new = int(np.rint(math.expm1(math.log1p(k1) + step)))
        if k_new == k1:
            k_new = k1 + (1 if up else -1)
        k_new = min(max(k_new, 0), k_max)
        k0, f0 = k1, f1
        k1 = k_new
        f1 = _log_excess(k1, logabs, arg, g, q, inv1m, wdet, wn, work, inv_b, log_target,
                         log_l0)
    if not bracketed:
        return 1, f1
    if f0 > 0:
        lo, flo, hi, fhi = k0, f0, k1, f1
    else:
        lo, flo, hi, fhi = k1, f1, k0, f0
    if lo > hi:
        lo, flo, hi, fhi = hi, fhi, lo, flo
    w2 = np.inf
    w1 = np.inf
    ordered = flo > 0 >= fhi
    while hi - lo > max(1.0, rel_width * lo):
        if ordered and lo > k_above:
            return 2, float(lo)
        tl = math.log1p(lo)
        th = math.log1p(hi)
        if th - tl > 0.5 * w2:
            tm = 0.5 * (tl + th)
        else:
            tm = tl + flo * (th - tl) / (flo - fhi)
        w2 = w1
        w1 = th - tl
        km = min(max(int(np.rint(math.expm1(tm))), lo + 1), hi - 1)
        fm = _log_excess(km, logabs, arg, g, q, inv1m, wdet, wn, work, inv_b, log_target,
                         log_l0)
        if fm > 0:
            lo, flo = km, fm
        else:
            hi, fhi = km, fm
    return 0, lo + (hi - lo) * flo / (flo - fhi)


@njit(cache=True, nogil=True)
def surrogate_pair(u, w, nesterov, beta, gamma, lr, wdet, wn, inv_b, log_target, log_l0,
                   hint, k_max, probe, max_bracket, overshoot, max_log_step, rel_width,
                   k_above):
    """`surrogate_crossing` on the modes of `build_modes_pair(u, w, nesterov, beta, gamma, lr)`
    in one call, for the tuner's local search (one call per evaluated point, no arrays
    returned): the two kernels called in turn, so bit for bit their result."""
    logabs, arg, g, q, inv1m, _realpos, _radius = build_modes_pair(u, w, nesterov, beta, gamma,
                                                                   lr)
    work = np.empty(logabs.shape, dtype=np.complex128)
    return surrogate_crossing(logabs, arg, g, q, inv1m, wdet, wn, work, inv_b, log_target,
                              log_l0, hint, k_max, probe, max_bracket, overshoot, max_log_step,
                              rel_width, k_above)


@njit(cache=True, inline="always")
def _cos_range(start, delta):
    """(min, max) of cos over the arc [start, start + delta] (delta may be negative)."""
    if delta < 0.0:
        start += delta
        delta = -delta
    if delta >= 2.0 * math.pi:
        return -1.0, 1.0
    c1 = math.cos(start)
    c2 = math.cos(start + delta)
    lo = min(c1, c2)
    hi = max(c1, c2)
    two_pi = 2.0 * math.pi
    if math.floor((start + delta) / two_pi) > math.floor(start / two_pi):
        hi = 1.0                                  # the arc passes a multiple of 2 pi
    if math.floor((start + delta - math.pi) / two_pi) > math.floor((start - math.pi) / two_pi):
        lo = -1.0                                 # the arc passes pi + a multiple of 2 pi
    return lo, hi


@njit(cache=True, nogil=True)
def dn_lower(k1, k2, logabs, arg, g, q, inv1m, wdet, wn, realpos, work, qabs, qarg):
    """Lower bound of D over steps k1..k2 and N(k1) (N is non-decreasing in k).

    Each term Re(q lam^k) of d_i(k) is bounded on the interval: monotone between its end
    values when lam and q are real and lam >= 0 (`realpos`); otherwise it is
    |q| rho^k cos(theta_q + k arg) with rho^k between its end values and the cosine within its
    range over the phase arc (all of [-1, 1] once the arc spans 2 pi).
    Then d_i^2 >= lo^2 if lo > 0, hi^2 if hi < 0, 0 otherwise.
    A conjugate pair of modes (lam_{j+1} = conj(lam_j), q_{j+1} = conj(q_j)) has equal terms,
    bounded once and counted twice.  qabs, qarg: |q| and arg q (computed once per search).
    """
    d, m = logabs.shape
    D = 0.0
    N = 0.0
    for i in range(d):
        lo = 0.0
        hi = 0.0
        j = 0
        while j < m:
            if realpos[i, j]:
                p1 = _powk(logabs[i, j], arg[i, j], k1)
                work[i, j] = p1
                v1 = q[i, j].real * p1.real
                v2 = q[i, j].real * _powk(logabs[i, j], 0.0, k2).real
                lo += min(v1, v2)
                hi += max(v1, v2)
                j += 1
                continue
            # Re(q lam^k) = |q| rho^k cos(theta_q + k arg): rho^k lies between its end
            # values and the cosine within its range over the phase arc
            e1 = math.exp(k1 * logabs[i, j]) if k1 > 0 else 1.0
            p1 = complex(e1 * math.cos(k1 * arg[i, j]), e1 * math.sin(k1 * arg[i, j])) \
                if k1 > 0 else 1.0 + 0.0j
            work[i, j] = p1
            r1 = qabs[i, j] * e1
            r2 = qabs[i, j] * math.exp(k2 * logabs[i, j])
            theta = qarg[i, j] + k1 * arg[i, j]
            cmin, cmax = _cos_range(theta, (k2 - k1) * arg[i, j])
            times = 1.0
            if j + 1 < m and arg[i, j] != 0.0 and arg[i, j + 1] == -arg[i, j] and \
                    logabs[i, j + 1] == logabs[i, j] and q[i, j + 1] == q[i, j].conjugate():
                times = 2.0
                work[i, j + 1] = p1.conjugate()
                j += 1
            lo += times * min(r1 * cmin, r2 * cmin)
            hi += times * max(r1 * cmax, r2 * cmax)
            j += 1
        if lo > 0.0:
            D += wdet[i] * lo * lo
        elif hi < 0.0:
            D += wdet[i] * hi * hi
        N += wn[i] * _noise_row(i, m, g, inv1m, work)
    return D, N


@njit(cache=True, nogil=True)
def _one_mode_lower(k1, k2, logabs, g, q, inv1m, wdet, wn, inv_b, lb):
    """One mode per row (SGD): lb[j] = sum_i min(l_ij(k1), l_ij(k2)) <= min over k1..k2 of the
    loss at inv_b[j], exactly the sum of the rows' minima: with P = lam_i^(2k), which falls
    with k, l_ij(k) = wdet_i q_i^2 P + wn_i g_i^2 (1 - P) inv1m_i inv_b[j] is linear in P, so
    monotone in k and smallest at an end of the interval."""
    nb = inv_b.size
    for j in range(nb):
        lb[j] = 0.0
    for i in range(logabs.shape[0]):
        p1 = math.exp(2.0 * k1 * logabs[i, 0]) if k1 > 0 else 1.0
        p2 = math.exp(2.0 * k2 * logabs[i, 0]) if k2 > 0 else 1.0
        dq = wdet[i] * (q[i, 0].real * q[i, 0].real)
        ng = wn[i] * (g[i, 0].real * g[i, 0].real) * inv1m[i, 0, 0].real
        for j in range(nb):
            l1 = dq * p1 + ng * (1.0 - p1) * inv_b[j]
            l2 = dq * p2 + ng * (1.0 - p2) * inv_b[j]
            lb[j] += min(l1, l2)


@njit(cache=True)
def _push_before(end, one_mode, stack, sp):
    """Push intervals covering [0, end] where no crossing is expected; returns the new stack
    size.  One mode per row: [0, end] itself (its bound, the sum of the rows' minima, is
    the loss at `end` when every row falls, so one evaluation settles it).  Otherwise
    [end - 4 (2^(j+1) - 1) + 1, end - 4 (2^j - 1)], j = 0, 1, ..., right to left (the
    leftmost on top): short intervals where the loss is near the target, long ones where
    the bound has room."""
    if one_mode:
        stack[sp, 0] = 0
        stack[sp, 1] = end
        return sp + 1
    j = 0
    while end - LEAF * (2**j - 1) >= 0:
        stack[sp, 0] = max(end - LEAF * (2**(j + 1) - 1) + 1, 0)
        stack[sp, 1] = end - LEAF * (2**j - 1)
        sp += 1
        j += 1
    return sp


@njit(cache=True, nogil=True)
def first_crossings(logabs, arg, g, q, inv1m, wdet, wn, realpos, inv_b, target, k_max, work,
                    hint=-1):
    """First k in [0, k_max] with D(k) + N(k) * inv_b[j] <= target, for every j (-1: none).

    Exact branch and bound, left to right: an interval is skipped only when its lower bound
    exceeds the target for every batch size not yet resolved, so the first k found for a batch
    size is its first crossing even when the loss is not monotone.  The lower bound is the
    sum of the rows' minima over the interval for one mode per row (`_one_mode_lower`; `arg`
    and `work` None, as for `dn_at`), otherwise `dn_lower`'s.
    A `hint` 0 < hint <= k_max (where the crossing is expected; -1: none) only orders the
    work: [0, hint - 1] first (`_push_before`: with several modes, intervals of 4, 8, 16, ...
    steps counted back from hint - 1), then [hint, k_max] by intervals of 4, 8, 16, ... steps
    from hint on, so a crossing at or just after the hint costs a few evaluations instead of
    a descent from k_max; the result is the same.  A hint > k_max (none expected up to
    k_max) covers [0, k_max] as `_push_before` does.
    """
    nb = inv_b.size
    m = logabs.shape[1]
    lb = np.empty(nb)
    qabs = np.empty(logabs.shape)
    qarg = np.empty(logabs.shape)
    if arg is not None:
        for i in range(logabs.shape[0]):
            for j in range(m):
                qabs[i, j] = abs(q[i, j])
                qarg[i, j] = math.atan2(q[i, j].imag, q[i, j].real)
    res = np.full(nb, -1, dtype=np.int64)
    unresolved = nb
    tol = target * (1.0 + 1e-12)
    stack = np.empty((256, 2), dtype=np.int64)
    sp = 0
    if 0 < hint <= k_max:
        n_gallop = 0              # intervals [hint + 4 (2^j - 1), hint + 4 (2^(j+1) - 1) - 1]
        while hint + LEAF * (2**n_gallop - 1) <= k_max:
            n_gallop += 1
        for j in range(n_gallop - 1, -1, -1):          # pushed right to left
            stack[sp, 0] = hint + LEAF * (2**j - 1)
            stack[sp, 1] = min(hint + LEAF * (2**(j + 1) - 1) - 1, k_max)
            sp += 1
        sp = _push_before(hint - 1, arg is None, stack, sp)
    elif hint > k_max:
        sp = _push_before(k_max, arg is None, stack, sp)
    else:
        stack[0, 0] = 0
        stack[0, 1] = k_max
        sp = 1
    while sp > 0 and unresolved > 0:
        sp -= 1
        a = stack[sp, 0]
        b = stack[sp, 1]
        if b - a < LEAF:
            for k in range(a, b + 1):
                D, N = dn_at(k, logabs, arg, g, q, inv1m, wdet, wn, work)
                for j in range(nb):
                    if res[j] < 0 and D + N * inv_b[j] <= target:
                        res[j] = k
                        unresolved -= 1
                if unresolved == 0:
                    break
            continue
        need = False
        if arg is None:
            _one_mode_lower(a, b, logabs, g, q, inv1m, wdet, wn, inv_b, lb)
            for j in range(nb):
                if res[j] < 0 and lb[j] <= tol:
                    need = True
                    break
        else:
            lbD, N1 = dn_lower(a, b, logabs, arg, g, q, inv1m, wdet, wn, realpos, work,
                               qabs, qarg)
            for j in range(nb):
                if res[j] < 0 and lbD + N1 * inv_b[j] <= tol:
                    need = True
                    break
        if not need:
            continue
        mid = (a + b) // 2
        stack[sp, 0] = mid + 1
        stack[sp, 1] = b
        stack[sp + 1, 0] = a
        stack[sp + 1, 1] = mid
        sp += 2
    return res


@njit(cache=True, nogil=True)
def recurrence(A0, A1, b1, f, e, wl, s0, c_over_b, lrs, target, stop_at_target):
    """Second-moment recurrence M' = A M A^T + (c/B) b b^T with A = A0 + lr_t A1, b = lr_t b1.

    Loss_t = sum_i wl_i e^T M_i(t) e.  Returns the losses for t = 0..len(lrs) (entries past an
    early stop are NaN) and the first t with loss <= target (-1 if none).  A loss that is not
    finite or exceeds 1e300 stops the run (divergence) and leaves +inf.
    """
    d, m = b1.shape
    n = lrs.size
    out = np.full(n + 1, np.nan)
    M = np.empty((d, m, m))
    for i in range(d):
        for r in range(m):
            for s in range(m):
                M[i, r, s] = s0[i] * f[r] * f[s]
    A = np.empty((m, m))
    T = np.empty((m, m))
    first = -1
    for t in range(n + 1):
        loss = 0.0
        for i in range(d):
            acc = 0.0
            for r in range(m):
                for s in range(m):
                    acc += e[r] * M[i, r, s] * e[s]
            loss += wl[i] * acc
        out[t] = loss
        if not (loss < 1e300):
            out[t] = np.inf
            break
        if first < 0 and loss <= target:
            first = t
            if stop_at_target:
                break
        if t == n:
            break
        lr = lrs[t]
        for i in range(d):
            if m == 1:                  # the same arithmetic, without the loops
                a = A0[i, 0, 0] + lr * A1[i, 0, 0]
                M[i, 0, 0] = (a * M[i, 0, 0]) * a + c_over_b[i] * lr * lr * b1[i, 0] * b1[i, 0]
                continue
            for r in range(m):
                for s in range(m):
                    A[r, s] = A0[i, r, s] + lr * A1[i, r, s]
            for r in range(m):          # T = A M
                for s in range(m):
                    acc = 0.0
                    for u in range(m):
                        acc += A[r, u] * M[i, u, s]
                    T[r, s] = acc
            nv = c_over_b[i] * lr * lr
            for r in range(m):          # M = T A^T + nv b b^T
                for s in range(m):
                    acc = 0.0
                    for u in range(m):
                        acc += T[r, u] * A[s, u]
                    M[i, r, s] = acc + nv * b1[i, r] * b1[i, s]
    return out, first


@njit(cache=True, nogil=True)
def recurrence_dn(A0, A1, b1, f, e, wd, wn, lrs, target, inv_b_max):
    """`recurrence` split by linearity into the parts that do not depend on B: with
    P' = A P A^T (P(0) = f f^T) and Q' = A Q A^T + lr_t^2 b1 b1^T (Q(0) = 0), M = s0 P + (c/B) Q,
    so Loss_t = D_t + N_t / B with D_t = sum_i wd_i e^T P_i(t) e (wd = wl s0) and
    N_t = sum_i wn_i e^T Q_i(t) e (wn = wl c).  Returns D and N for t = 0..len(lrs) (NaN past
    the stop) and the last t computed: the run stops once D_t + N_t * inv_b_max <= target (the
    smallest batch size has crossed, so every larger one has) or D_t or N_t is not finite
    (divergence; the caller marks losses above 1e300 as `recurrence` does).
    """
    d, m = b1.shape
    n = lrs.size
    D = np.full(n + 1, np.nan)
    N = np.full(n + 1, np.nan)
    P = np.empty((d, m, m))
    Q = np.zeros((d, m, m))
    for i in range(d):
        for r in range(m):
            for s in range(m):
                P[i, r, s] = f[r] * f[s]
    A = np.empty((m, m))
    T = np.empty((m, m))
    last = n
    for t in range(n + 1):
        dt = 0.0
        nt = 0.0
        for i in range(d):
            accp = 0.0
            accq = 0.0
            for r in range(m):
                for s in range(m):
                    accp += e[r] * P[i, r, s] * e[s]
                    accq += e[r] * Q[i, r, s] * e[s]
            dt += wd[i] * accp
            nt += wn[i] * accq
        D[t] = dt
        N[t] = nt
        if not (math.isfinite(dt) and math.isfinite(nt)) or dt + nt * inv_b_max <= target \
                or t == n:
            last = t
            break
        lr = lrs[t]
        for i in range(d):
            if m == 1:
                a = A0[i, 0, 0] + lr * A1[i, 0, 0]
                P[i, 0, 0] = (a * P[i, 0, 0]) * a
                Q[i, 0, 0] = (a * Q[i, 0, 0]) * a + lr * lr * b1[i, 0] * b1[i, 0]
                continue
            for r in range(m):
                for s in range(m):
                    A[r, s] = A0[i, r, s] + lr * A1[i, r, s]
            for X in (P, Q):
                for r in range(m):          # T = A X
                    for s in range(m):
                        acc = 0.0
                        for u in range(m):
                            acc += A[r, u] * X[i, u, s]
                        T[r, s] = acc
                for r in range(m):          # X = T A^T
                    for s in range(m):
                        acc = 0.0
                        for u in range(m):
                            acc += T[r, u] * A[s, u]
                        X[i, r, s] = acc
            nv = lr * lr
            for r in range(m):
                for s in range(m):
                    Q[i, r, s] += nv * b1[i, r] * b1[i, s]
    return D, N, last


@njit(cache=True, nogil=True)
def monte_carlo(h, sd_noise, sd0, wl, step_w, kind, beta, gamma, lrs, n_runs, rng):
    """Sample the literal stochastic iteration (module docstring of `nqm.optimizer`).

    kind: 0 sgd, 1 heavy-ball momentum, 2 Nesterov; gamma < 0 means no iterate averaging.
    Per direction: theta_0 ~ N(0, sd0^2), eps_t ~ N(0, sd_noise^2) (sd_noise^2 = c / B),
    a_t = lrs[t] * step_w (step_w = h^-p).  Loss_t = sum_i wl_i y_i^2, y = theta or its EMA.
    `rng` is a numpy Generator, advanced in place.  Returns the mean loss per step over runs
    and its standard error.
    """
    d = h.size
    n = lrs.size
    s1 = np.zeros(n + 1)
    s2 = np.zeros(n + 1)
    theta = np.empty(d)
    v = np.empty(d)
    avg = np.empty(d)
    for _ in range(n_runs):
        for i in range(d):
            theta[i] = sd0[i] * rng.standard_normal()
            v[i] = 0.0
            avg[i] = theta[i]
        for t in range(n + 1):
            loss = 0.0
            for i in range(d):
                y = avg[i] if gamma >= 0.0 else theta[i]
                loss += wl[i] * y * y
            s1[t] += loss
            s2[t] += loss * loss
            if t == n:
                break
            for i in range(d):
                a = lrs[t] * step_w[i]
                eps = sd_noise[i] * rng.standard_normal()
                if kind == 0:
                    theta[i] -= a * (h[i] * theta[i] + eps)
                else:
                    look = beta * v[i] if kind == 2 else 0.0
                    v[i] = beta * v[i] - a * (h[i] * (theta[i] + look) + eps)
                    theta[i] += v[i]
                if gamma >= 0.0:
                    avg[i] = gamma * avg[i] + (1.0 - gamma) * theta[i]
    mean = s1 / n_runs
    var = np.maximum(s2 / n_runs - mean * mean, 0.0)
    return mean, np.sqrt(var / max(n_runs - 1, 1))


# ---------------------------------------------------------------- the tuner's local search
# Every Nelder-Mead search of one batch size for a 2 x 2 state map with a constant learning
# rate (momentum, Nesterov, SGD + EMA: two search coordinates) in one call, with no Python
# between the evaluated points: `nqm.simplex.nelder_mead` (scipy's Nelder-Mead with bounds,
# the same points in the same order) on the objective of `nqm.tuning._Objective`, written out:
#
#     c = (z_lr, z_x)                        the clipped coordinates (the cache key)
#     beta = 1 - e^z_x,  gamma = -1          momentum (kind 0) and Nesterov (kind 1)
#     beta = 0,          gamma = 1 - e^z_x   SGD + EMA (kind 2)
#     lr = e^z_lr * X(kind, beta) / h_scale  X = 2 (1 + beta), 2 (1 + beta) / (1 + 2 beta), 2
#     (status, v) = surrogate_pair(...)      bracketed up to k_above = (e^above - 1)(1 + margin)
#     value = v                              status 0 (the crossing)
#           = M (1 + min(max(log(e^v T) - log T, 0), cap))  status 1 (`tuning.unreached_score`)
#           = +inf                           status 2 (known to exceed the caller's `above`)
#     objective = log(1 + value)
#
# Every float operation is the one the Python code performs, so the answer is the same bit for
# bit (tested against `nqm.tuning`'s Python path).  `problem` is the tuple (kind, h_scale, u, w,
# wdet, wn, inv_b, log_target, log_l0, hint, k_max, probe, max_bracket, overshoot,
# max_log_step, rel_width, target, margin, cap).  It lives in this module so that numba's cache,
# which watches only the file of the function it compiles, recompiles it with the kernels it
# calls.

NM_RHO, NM_CHI, NM_PSI, NM_SIGMA = 1.0, 2.0, 0.5, 0.5


@njit(cache=True, inline="always")
def _clip(v, lo, hi):
    """`nqm.simplex._clip`: np.clip of one number."""
    v = v if v > lo or v != v else lo
    return v if v < hi or v != v else hi


@njit(cache=True)
def _sort_simplex(sim, fsim):
    """Vertices and values sorted by value, stably, NaNs last (numpy's order:
    `nqm.simplex._sorted`)."""
    for i in range(1, fsim.size):
        j = i
        while j > 0 and (fsim[j] < fsim[j - 1] or (fsim[j - 1] != fsim[j - 1]
                                                  and fsim[j] == fsim[j])):
            fsim[j], fsim[j - 1] = fsim[j - 1], fsim[j]
            for c in range(sim.shape[1]):
                sim[j, c], sim[j - 1, c] = sim[j - 1, c], sim[j, c]
            j -= 1


@njit(cache=True, nogil=True)
def _search_value(x0, x1, above, known, count, problem):
    """The objective at clipped coordinates (x0, x1) (section comment); values are remembered
    in `known` (rows (x0, x1, value), `count[0]` of them)."""
    (kind, h_scale, u, w, wdet, wn, inv_b, log_target, log_l0, hint, k_max, probe,
     max_bracket, overshoot, max_log_step, rel_width, target, margin, cap) = problem
    for i in range(count[0] - 1, -1, -1):          # the most recent first
        if known[i, 0] == x0 and known[i, 1] == x1:
            return math.log1p(known[i, 2])
    k_above = math.expm1(above) * (1.0 + margin) if 0.0 <= above < math.inf else math.inf
    if kind == 2:
        beta = 0.0
        gamma = 1.0 - math.exp(x1)
        factor = 2.0
    else:
        beta = 1.0 - math.exp(x1)
        gamma = -1.0
        factor = 2.0 * (1.0 + beta) if kind == 0 else 2.0 * (1.0 + beta) / (1.0 + 2.0 * beta)
    lr = math.exp(x0) * (factor / h_scale)
    status, v = surrogate_pair(u, w, kind == 1, beta, gamma, lr, wdet, wn, inv_b, log_target,
                               log_l0, hint, k_max, probe, max_bracket, overshoot,
                               max_log_step, rel_width, k_above)
    if status == 2:
        return math.inf
    if status == 1:
        loss = math.exp(v) * target
        excess = math.log(loss) - log_target if loss > 0 else cap
        excess = 0.0 if 0.0 > excess else excess
        v = k_max * (1.0 + (cap if cap < excess else excess))
    if count[0] < known.shape[0]:
        known[count[0], 0], known[count[0], 1], known[count[0], 2] = x0, x1, v
        count[0] += 1
    return math.log1p(v)


@njit(cache=True, nogil=True)
def _simplex_step(sim, fsim, xbar, lo, hi, left, known, count, problem):
    """One Nelder-Mead step on the sorted simplex, in place (`nqm.simplex.nelder_mead`);
    returns the evaluations `left` of the budget.  Every trial point is clip(a xbar - c s) with
    (a, c) = (2, 1) reflection, (3, 2) expansion, (3/2, 1/2) contraction, (1/2, -1/2) inside
    contraction (the same floats as (1 - psi) xbar + psi s), evaluated at one call site to keep
    the compiled code small.  Where the budget runs out the step ends before the evaluation,
    as the Python code's does."""
    n = sim.shape[1]
    for c in range(n):
        xbar[c] = sim[0, c]
    for j in range(1, n):
        for c in range(n):
            xbar[c] = xbar[c] + sim[j, c]
    for c in range(n):
        xbar[c] = xbar[c] / n
    a, b, above, stage = 1.0 + NM_RHO, NM_RHO, fsim[n], 0
    xr0 = xr1 = fxr = 0.0
    while True:
        x0 = _clip(a * xbar[0] - b * sim[n, 0], lo[0], hi[0])
        x1 = _clip(a * xbar[1] - b * sim[n, 1], lo[1], hi[1])
        if left <= 0:
            return left
        left -= 1
        fx = _search_value(x0, x1, above, known, count, problem)
        if stage == 0:                                   # reflection
            xr0, xr1, fxr = x0, x1, fx
            if fxr < fsim[0]:
                a, b, above, stage = 1.0 + NM_RHO * NM_CHI, NM_RHO * NM_CHI, fxr, 1
            elif fxr < fsim[n - 1]:
                sim[n, 0], sim[n, 1], fsim[n] = xr0, xr1, fxr
                return left
            elif fxr < fsim[n]:
                a, b, above, stage = 1.0 + NM_PSI * NM_RHO, NM_PSI * NM_RHO, fxr, 2
            else:
                a, b, above, stage = 1.0 - NM_PSI, -NM_PSI, fsim[n], 3
            continue
        if stage == 1:                                   # expansion
            if fx < fxr:
                sim[n, 0], sim[n, 1], fsim[n] = x0, x1, fx
            else:
                sim[n, 0], sim[n, 1], fsim[n] = xr0, xr1, fxr
            return left
        if (fx <= fxr) if stage == 2 else (fx < fsim[n]):      # the contraction holds
            sim[n, 0], sim[n, 1], fsim[n] = x0, x1, fx
            return left
        break
    for j in range(1, n + 1):                            # shrink towards the best vertex
        for c in range(n):
            sim[j, c] = _clip(sim[0, c] + NM_SIGMA * (sim[j, c] - sim[0, c]), lo[c], hi[c])
        if left <= 0:
            return left
        left -= 1
        fsim[j] = _search_value(sim[j, 0], sim[j, 1], math.inf, known, count, problem)
    return left


@njit(cache=True, nogil=True)
def _simplex_search(sim, lo, hi, xatol, fatol, maxfev, known, count, problem):
    """Nelder-Mead from the initial simplex `sim` (3 x 2, in place): (best vertex, its value);
    a vertex above an upper bound is first reflected into the box."""
    n = sim.shape[1]
    fsim = np.full(n + 1, np.inf)
    xbar = np.empty(n)
    for j in range(n + 1):
        for c in range(n):
            v = sim[j, c]
            sim[j, c] = _clip(2 * hi[c] - v if v > hi[c] else v, lo[c], hi[c])
    left = maxfev                                        # evaluations left
    for j in range(n + 1):
        if left <= 0:
            break
        left -= 1
        fsim[j] = _search_value(sim[j, 0], sim[j, 1], math.inf, known, count, problem)
    _sort_simplex(sim, fsim)
    while left > 0:
        done = True
        for j in range(1, n + 1):
            for c in range(n):
                done = done and abs(sim[j, c] - sim[0, c]) <= xatol
            done = done and abs(fsim[0] - fsim[j]) <= fatol
        if done:
            break
        left = _simplex_step(sim, fsim, xbar, lo, hi, left, known, count, problem)
        _sort_simplex(sim, fsim)
    low = fsim[0]                                        # np.min: a NaN wins
    for j in range(n + 1):
        if fsim[j] != fsim[j] or (low == low and fsim[j] < low):
            low = fsim[j]
    return sim[0].copy(), low


@njit(cache=True, nogil=True)
def local_searches_pair(simplexes, lo, hi, xatol, fatol, maxfev, problem):
    """Nelder-Mead from each initial simplex `simplexes[s]` (3 x 2) within [lo, hi] on the
    objective of this section's comment: (best vertices (s, 2), their values (s,)), each search
    stopping when every |x_j - x_0| <= xatol and |f_0 - f_j| <= fatol, or after `maxfev`
    evaluations.  One memory of values serves all searches."""
    m = simplexes.shape[0]
    known = np.empty((m * maxfev, 3))
    count = np.zeros(1, dtype=np.int64)
    best = np.empty((m, 2))
    vals = np.empty(m)
    for s in range(m):
        best[s], vals[s] = _simplex_search(simplexes[s].copy(), lo, hi, xatol, fatol, maxfev,
                                           known, count, problem)
    return best, vals


def cache_is_warm(state_size: int = 1) -> bool:
    """Whether the kernels a tuning with this state size uses (1: SGD, 2: momentum, Nesterov
    or SGD + EMA, 3: momentum + EMA; a richer optimizer tunes SGD first) are compiled and
    cached on disk for this source (numba's cache index matches the source file); True when
    that cannot be told."""
    # a 2 x 2 map's local searches run in `local_searches_pair`; momentum + EMA tunes
    # momentum first
    builds = {2: (build_modes_pair, local_searches_pair),
              3: (build_modes_momentum_ema, build_modes_pair, local_searches_pair)
              }.get(state_size, ())
    try:
        return all(bool(f._cache._cache_file._load_index())
                   for f in (build_modes_sgd, dn_at, dn_ladder_until,
                             first_crossings, surrogate_crossing, *builds))
    except Exception:   # numba's cache layout is private: say nothing rather than fail
        return True
