"""`nqm._kernels.build_modes` against the obvious reference: the dense per-direction transition
matrix A = A0 + lr A1 of `nqm.optimizer.transition`, its eigenvalues by `np.linalg.eigvals`
and the responses e'A^t f and e'A^t b (b = lr b1) by matrix powers.

build_modes gives lam_j = exp(logabs_j + i arg_j), q_j and g_j with
    e'A^t f = sum_j q_j lam_j^t,   e'A^t b = sum_j g_j lam_j^t   (Sylvester's formula),
inv1m_jl = 1 / (1 - lam_j lam_l) and the spectral radius max |lam|."""

import math

import numpy as np
import pytest

from nqm import _kernels
from nqm.optimizer import lr_limit, transition

H = np.array([1.0, 0.37, 0.11, 0.023, 4e-3])     # no two directions alike
CASES = [(kind, momentum, ema, precond)
         for kind, momentum in (("sgd", 0.0), ("momentum", 0.9), ("nesterov", 0.7))
         for ema in (None, 0.95)
         for precond in (0.0, 0.5)]


def modes(kind, momentum, ema, precond, lr):
    """The kernel's output for H and the dense transition it was built from."""
    tr = transition(H, kind, momentum, precond, ema)
    m0 = 1 if kind == "sgd" else 2
    logabs, arg, g, q, inv1m, realpos, radius = _kernels.build_modes(
        tr.A0, tr.A1, tr.b1, tr.f, tr.e, float(lr), m0)
    lam = np.exp(logabs + 1j * arg)
    return tr, lam, g, q, inv1m, realpos, radius


@pytest.mark.parametrize("kind,momentum,ema,precond", CASES)
@pytest.mark.parametrize("fraction", [0.3, 0.9])
def test_build_modes_matches_dense_eigendecomposition(kind, momentum, ema, precond, fraction):
    lr = fraction * lr_limit(H, kind, momentum, precond)
    tr, lam, g, q, inv1m, realpos, radius = modes(kind, momentum, ema, precond, lr)
    m = tr.A0.shape[1]
    assert lam.shape == (H.size, m)
    radii = []
    for i in range(H.size):
        A = tr.A0[i] + lr * tr.A1[i]
        b = lr * tr.b1[i]
        eig = np.linalg.eigvals(A)
        radii.append(np.abs(eig).max())
        np.testing.assert_allclose(np.sort_complex(lam[i]), np.sort_complex(eig),
                                   rtol=0, atol=1e-9)
        At = np.eye(m)
        for t in range(60):
            want_f = tr.e @ At @ tr.f
            want_b = tr.e @ At @ b
            got_f = np.sum(q[i] * lam[i] ** t)
            got_b = np.sum(g[i] * lam[i] ** t)
            scale_b = max(abs(lr) * np.abs(tr.b1[i]).max(), 1e-300)
            assert abs(got_f.imag) <= 1e-9 and abs(got_f.real - want_f) <= 1e-9, (i, t)
            assert abs(got_b.imag) <= 1e-9 * scale_b, (i, t)
            assert abs(got_b.real - want_b) <= 1e-9 * scale_b, (i, t)
            At = At @ A
        np.testing.assert_allclose(inv1m[i], 1.0 / (1.0 - np.outer(lam[i], lam[i])), rtol=1e-9)
        real_nonneg = (np.abs(lam[i].imag) == 0) & (lam[i].real >= 0)
        assert not np.any(realpos[i] & ~real_nonneg)
    assert radius == pytest.approx(max(radii), rel=1e-12, abs=1e-12)
    assert radius < 1.0


def test_reference_is_sensitive_to_a_wrong_mode():
    # the comparison above would notice a coefficient off by 1e-6
    lr = 0.5 * lr_limit(H, "momentum", 0.9, 0.0)
    tr, lam, g, q, *_ = modes("momentum", 0.9, None, 0.0, lr)
    A = tr.A0[0] + lr * tr.A1[0]
    want = tr.e @ np.linalg.matrix_power(A, 5) @ tr.f
    assert abs(np.sum(q[0] * lam[0] ** 5).real - want) < 1e-12
    assert abs(np.sum((q[0] + [1e-6, 0]) * lam[0] ** 5) - want) > 1e-9


@pytest.mark.parametrize("kind,momentum,ema,precond", CASES)
def test_direct_builds_equal_build_modes_bit_for_bit(kind, momentum, ema, precond):
    """The kernels that form the transition's arrays themselves (`build_modes_sgd`,
    `build_modes_pair`, `build_modes_momentum_ema`, used by `Modes.build`) against
    `build_modes` on the arrays of `nqm.optimizer.transition`: identical, not merely close."""
    lr = 0.6 * lr_limit(H, kind, momentum, precond)
    tr = transition(H, kind, momentum, precond, ema)
    want = _kernels.build_modes(tr.A0, tr.A1, tr.b1, tr.f, tr.e, float(lr),
                                1 if kind == "sgd" else 2)
    u, w = H ** (1.0 - precond), H ** (-precond)
    if kind == "sgd" and ema is None:
        got = _kernels.build_modes_sgd(u, w, float(lr))
    elif kind != "sgd" and ema is not None:
        got = _kernels.build_modes_momentum_ema(u, w, kind == "nesterov", float(momentum),
                                                float(ema), float(lr))
    else:
        got = _kernels.build_modes_pair(u, w, kind == "nesterov", float(momentum),
                                        -1.0 if ema is None else float(ema), float(lr))
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


PAIR_CASES = [c for c in CASES if (c[0] == "sgd") == (c[2] is not None)]


@pytest.mark.parametrize("kind,momentum,ema,precond", PAIR_CASES)
@pytest.mark.parametrize("fraction,inv_b,hint", [(0.6, 1.0, 50.0), (0.05, 1e-3, 3.0),
                                                 (0.9, 1e-6, 4000.0), (0.6, 1.0, 1e7)])
def test_fused_surrogate_equals_build_then_crossing_bit_for_bit(kind, momentum, ema, precond,
                                                                fraction, inv_b, hint):
    """`surrogate_pair` (the tuner's one call per point) against `build_modes_pair` then
    `surrogate_crossing`: the same status and value, not merely close, whether the crossing
    is bracketed (status 0) or not within the step budget (status 1)."""
    lr = fraction * lr_limit(H, kind, momentum, precond)
    u, w = H ** (1.0 - precond), H ** (-precond)
    wdet, wn = 0.5 * H * 1.0, 0.5 * H * np.geomspace(1.0, 0.1, H.size)
    gamma = -1.0 if ema is None else float(ema)
    consts = (np.log(1e-3), np.log(float(np.sum(wdet))), hint, 10**6, 0.02, 200, 1.05, 2.0,
              1e-5)
    logabs, arg, g, q, inv1m, _realpos, _radius = _kernels.build_modes_pair(
        u, w, kind == "nesterov", float(momentum), gamma, float(lr))
    want = _kernels.surrogate_crossing(logabs, arg, g, q, inv1m, wdet, wn,
                                       np.empty(logabs.shape, dtype=np.complex128), inv_b,
                                       *consts)
    got = _kernels.surrogate_pair(u, w, kind == "nesterov", float(momentum), gamma, float(lr),
                                  wdet, wn, inv_b, *consts, np.inf)
    assert got[0] == want[0] and np.float64(got[1]).tobytes() == np.float64(want[1]).tobytes()


@pytest.mark.parametrize("kind,momentum,ema,precond", PAIR_CASES)
def test_surrogate_stops_early_only_beyond_its_bound(kind, momentum, ema, precond):
    """With a bound k_above the search answers (2, k) only when k > k_above and the full
    search's result is at least k (a crossing >= k, or not bracketed: the caller's penalty
    exceeds the step budget); otherwise it answers exactly as without the bound."""
    u, w = H ** (1.0 - precond), H ** (-precond)
    wdet, wn = 0.5 * H * 1.0, 0.5 * H * np.geomspace(1.0, 0.1, H.size)
    gamma = -1.0 if ema is None else float(ema)
    early = 0
    for fraction in (0.02, 0.2, 0.6, 0.95):
        lr = fraction * lr_limit(H, kind, momentum, precond)
        for inv_b, hint in ((1.0, 30.0), (1e-2, 300.0), (1e-4, 5.0), (1e-6, 3000.0)):
            args = (u, w, kind == "nesterov", float(momentum), gamma, float(lr), wdet, wn,
                    inv_b, np.log(1e-3), np.log(float(np.sum(wdet))), hint, 10**6, 0.02, 200,
                    1.05, 2.0, 1e-5)
            status, value = _kernels.surrogate_pair(*args, np.inf)
            for k_above in (0.5, 3.0, 40.0, 200.0, 0.97 * value, 0.999 * value, 1e5):
                got = _kernels.surrogate_pair(*args, k_above)
                if got[0] == 2:
                    early += 1
                    assert got[1] > k_above
                    assert status == 1 or value >= got[1], (status, value, got, k_above)
                else:
                    assert got == (status, value)
    assert early > 20


def _pair_row_reference(a00, a01, a10, a11, b0, b1, f, e, m0):
    """The 2 x 2 modes by the complex formulas themselves, in Python's complex arithmetic
    (CPython's product and quotient, numba's too; numpy scalars would use numpy's):
    logabs, arg, g, q, inv1m."""
    a00, a01, a10, a11, b0, b1 = map(float, (a00, a01, a10, a11, b0, b1))
    if m0 == 2:
        half_tr, det = 0.5 * (a00 + a11), a00 * a11 - a01 * a10
        disc = half_tr * half_tr - det
        if disc >= 0.0:
            root = math.sqrt(disc)
            l1 = half_tr + root if half_tr >= 0.0 else half_tr - root
            lam = [complex(l1, 0.0), complex(det / l1 if l1 != 0.0 else half_tr - root, 0.0)]
        else:
            root = math.sqrt(-disc)
            lam = [complex(half_tr, root), complex(half_tr, -root)]
    else:
        lam = [complex(a00, 0.0), complex(a11, 0.0)]
    if abs(lam[0] - lam[1]) < _kernels.SPLIT:
        lam = [lam[0] + _kernels.SPLIT, lam[1] - _kernels.SPLIT]
    eb, ef = e[0] * b0 + e[1] * b1, e[0] * f[0] + e[1] * f[1]
    eAb = e[0] * (a00 * b0 + a01 * b1) + e[1] * (a10 * b0 + a11 * b1)
    eAf = e[0] * (a00 * f[0] + a01 * f[1]) + e[1] * (a10 * f[0] + a11 * f[1])
    g = [(eAb - lam[1 - j] * eb) / (lam[j] - lam[1 - j]) for j in range(2)]
    q = [(eAf - lam[1 - j] * ef) / (lam[j] - lam[1 - j]) for j in range(2)]
    inv1m = [[1.0 / (1.0 - lj * ll) for ll in lam] for lj in lam]
    logabs = [math.log(abs(v)) if abs(v) > 0.0 else -math.inf for v in lam]
    arg = [math.atan2(v.imag, v.real) for v in lam]
    return logabs, arg, g, q, inv1m


def test_pair_builder_equals_the_complex_formulas_bit_for_bit():
    """`build_modes_pair` (conjugate pairs and real eigenvalues by their shortcuts) against the
    complex formulas written out: equal values for real, complex and split eigenvalues."""
    rng = np.random.default_rng(7)
    h = np.concatenate([np.geomspace(1e-6, 1.0, 40), rng.uniform(1e-3, 1.0, 40)])
    u = h ** 0.7
    w = h ** -0.3
    kinds = {"real": 0, "complex": 0, "split": 0}
    for trial in range(60):
        nesterov = bool(trial % 3 == 1)
        beta = float(1.0 - 10.0 ** rng.uniform(-8, 0)) if trial % 5 else 0.0
        gamma = float(rng.uniform(0.0, 0.999)) if trial % 3 == 2 else -1.0
        lr = float(rng.uniform(0.01, 0.99) * 2.0 / u.max())
        if trial in (9, 24):  # heavy ball, critically damped in row 0: x = (1 - sqrt(beta))^2
            lr = (1.0 - math.sqrt(beta)) ** 2 / u[0]
        logabs, arg, g, q, inv1m, _realpos, _radius = _kernels.build_modes_pair(
            u, w, nesterov, beta, gamma, lr)
        for i in range(h.size):
            x1 = -u[i]
            if gamma < 0.0:
                n1 = -beta * u[i] if nesterov else 0.0
                entries = (1.0 + lr * x1, beta + lr * n1, 0.0 + lr * x1, beta + lr * n1,
                           lr * -w[i], lr * -w[i], (1.0, 0.0), (1.0, 0.0), 2)
            else:
                entries = (1.0 + lr * x1, 0.0 + lr * 0.0,
                           (1.0 - gamma) * 1.0 + lr * ((1.0 - gamma) * x1), gamma + lr * 0.0,
                           lr * -w[i], lr * ((1.0 - gamma) * -w[i]), (1.0, 1.0), (0.0, 1.0), 1)
            la, ar, gg, qq, inv = _pair_row_reference(*entries)
            assert list(logabs[i]) == la and list(arg[i]) == ar, (trial, i)
            assert list(g[i]) == gg and list(q[i]) == qq, (trial, i)
            assert [list(r) for r in inv1m[i]] == inv, (trial, i)
            kinds["real" if ar == [0.0, 0.0] or 0.0 in ar and math.pi in ar
                  else "complex" if ar[0] == -ar[1] else "split"] += 1
    assert min(kinds.values()) > 0, kinds
