"""Lanczos, SLQ and Hutchinson on dense matrices with known spectra (fixed seeds)."""

import numpy as np
import pytest

from empirical.spectral import hutchinson, slq, top_eigenpairs
from tests.helpers import Dense


def random_symmetric(eigs, seed=0):
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((eigs.size, eigs.size)))
    return (Q * eigs) @ Q.T


@pytest.fixture(scope="module")
def power_law():
    eigs = np.arange(1, 401) ** -1.0
    eigs[-40:] = -0.01 * np.arange(1, 41) / 40          # a few negative eigenvalues
    return eigs, random_symmetric(eigs)


@pytest.mark.parametrize("n", [30, 400])    # dense path and Lanczos path
def test_top_eigenpairs_match_dense(n, power_law):
    eigs, A = power_law
    if n < 400:
        A = A[:n, :n]
        eigs = np.linalg.eigvalsh(A)
    pairs = top_eigenpairs(Dense(A), 10, seed=1)
    expect = np.sort(eigs)[::-1][:10]
    assert np.allclose(pairs.values, expect, rtol=1e-8, atol=1e-12)
    resid = A @ pairs.vectors - pairs.vectors * pairs.values
    assert np.abs(resid).max() < 1e-6
    assert np.allclose(pairs.vectors.T @ pairs.vectors, np.eye(10), atol=1e-8)
    assert pairs.products > 0


def test_hutchinson_is_unbiased_with_the_stated_standard_error(power_law):
    eigs, A = power_law
    op = Dense(A)
    errors, ses = [], []
    for seed in range(500, 700):
        est, se = hutchinson(op, samples=64, seed=seed)
        errors.append(est - eigs.sum())
        ses.append(se)
    z = np.array(errors) / np.array(ses)
    assert np.mean(np.abs(z) < 1.96) > 0.85           # ~95% of runs within 1.96 SE
    assert abs(np.mean(errors)) < 4 * np.std(errors) / np.sqrt(200)  # no bias (4 SE)
    # Rademacher theory: Var(z'Az) = 2 (|A|_F^2 - sum_i A_ii^2)
    sd = np.sqrt(2 * (np.sum(A**2) - np.sum(np.diag(A) ** 2)) / 64)
    assert np.mean(ses) == pytest.approx(sd, rel=0.2)


def test_slq_density_and_trace_converge(power_law):
    eigs, A = power_law
    quad = slq(Dense(A), n_vectors=32, steps=60, seed=3)
    assert quad.dimension == 400
    assert np.allclose(quad.weights.sum(1), 1.0, atol=1e-10)
    # the spectral measure: fraction of eigenvalues in [-0.02, 0.01], (0.01, 0.1], (0.1, 1.01]
    edges = np.array([-0.02, 0.01, 0.1, 1.01])
    true = np.histogram(eigs, edges)[0]
    est = quad.histogram(edges)
    # each count is a mean of 32 independent unit-vector quadratic forms: tolerance 15% of 400
    assert np.all(np.abs(est - true) < 0.15 * 400), (est, true)
    assert quad.trace() == pytest.approx(eigs.sum(), abs=0.25 * abs(eigs.sum()))


def test_deflated_slq_lives_on_the_complement(power_law):
    eigs, A = power_law
    top = top_eigenpairs(Dense(A), 5, seed=0)
    quad = slq(Dense(A), n_vectors=8, steps=50, seed=0, deflate=top.vectors)
    assert quad.dimension == 395
    # the deflated operator's largest eigenvalue is the 6th of A
    assert quad.nodes.max() <= np.sort(eigs)[::-1][5] * (1 + 1e-8)
    assert quad.nodes.max() == pytest.approx(np.sort(eigs)[::-1][5], rel=1e-6)
