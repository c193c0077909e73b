"""Spectral estimates from operator products: top eigenpairs (Lanczos), the bulk density
(stochastic Lanczos quadrature) and the trace (Hutchinson).

`op` is any object with `matvec(v)`, `matmat(V)`, `shape` and `as_linear_operator()` (see
`empirical.curvature.CurvatureOperator`); every routine takes an explicit seed.

- Top-k: implicitly restarted Lanczos (ARPACK via scipy.sparse.linalg.eigsh, which='LA': the k
  algebraically largest eigenvalues).
- SLQ (Ubaru, Chen & Saad 2017; Ghorbani, Krishnan & Xiao 2019): for n_v random unit vectors
  z, m Lanczos steps give a tridiagonal T = U diag(t) U'; the density is approximated by
  phi(x) = (1/n_v) sum_z sum_j tau_j delta(x - t_j), tau_j = U[0, j]^2.  With `deflate=V`, the
  start vectors and the Krylov basis are kept orthogonal to the columns of V, so the density
  is that of the operator restricted to the complement of span(V) (the "bulk").
- Hutchinson: tr(A) = E[z' A z] for Rademacher z; the mean of n samples and its standard error
  sd / sqrt(n).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Eigenpairs(NamedTuple):
    """Top eigenpairs of a symmetric operator and the operator products spent."""

    values: np.ndarray      # (k,) descending
    vectors: np.ndarray     # (P, k), orthonormal columns
    products: int           # operator products used


class Quadrature(NamedTuple):
    """Stochastic Lanczos quadrature: Ritz values and weights per probe vector."""

    nodes: np.ndarray       # (n_v, m) Ritz values
    weights: np.ndarray     # (n_v, m) tau, each row sums to 1
    dimension: int          # dimension of the space the density lives on
    products: int

    def histogram(self, edges: np.ndarray) -> np.ndarray:
        """Expected number of eigenvalues per bin: dimension * mean over z of the tau mass."""
        mass, _ = np.histogram(self.nodes.ravel(), bins=edges,
                               weights=self.weights.ravel() / self.nodes.shape[0])
        return mass * self.dimension

    def trace(self) -> float:
        """The SLQ trace estimate dimension * mean_z sum_j tau_j t_j."""
        return float(self.dimension * np.mean(np.sum(self.weights * self.nodes, axis=1)))


def top_eigenpairs(op, k: int, tol: float = 1e-8, seed: int = 0) -> Eigenpairs:
    """The k algebraically largest eigenpairs.  Small operators (dimension <= max(2k, 64)) are
    formed densely (dimension products) and solved exactly."""
    from scipy.sparse.linalg import eigsh

    n = op.shape[0]
    k = int(min(k, n))
    start = op.n_products
    if n <= max(2 * k, 64):
        dense = op.matmat(np.eye(n))
        vals, vecs = np.linalg.eigh(0.5 * (dense + dense.T))
    else:
        v0 = np.random.default_rng(seed).standard_normal(n)
        vals, vecs = eigsh(op.as_linear_operator(), k=k, which="LA", tol=tol, v0=v0)
    order = np.argsort(vals)[::-1][:k]
    return Eigenpairs(vals[order], vecs[:, order], op.n_products - start)


def lanczos(matvec, v0: np.ndarray, steps: int, deflate: np.ndarray | None = None):
    """`steps` Lanczos iterations from v0 with full re-orthogonalisation (and against the
    columns of `deflate`).  Returns the diagonal and off-diagonal of the tridiagonal T."""
    def project(w):
        if deflate is not None and deflate.size:
            w = w - deflate @ (deflate.T @ w)
        return w

    q = project(v0)
    q = q / np.linalg.norm(q)
    basis = [q]
    alpha, beta = [], []
    for j in range(steps):
        w = project(np.asarray(matvec(basis[j])))
        a = float(basis[j] @ w)
        alpha.append(a)
        Q = np.stack(basis, axis=1)
        for _ in range(2):   # twice is enough (Kahan)
            w = project(w - Q @ (Q.T @ w))
        b = float(np.linalg.norm(w))
        if j == steps - 1 or b < 1e-12 * max(1.0, abs(a)):
            break
        beta.append(b)
        basis.append(w / b)
    return np.array(alpha), np.array(beta)


def slq(op, n_vectors: int = 4, steps: int = 40, seed: int = 0,
        deflate: np.ndarray | None = None) -> Quadrature:
    """Stochastic Lanczos quadrature of the spectral density (see the module docstring)."""
    from scipy.linalg import eigh_tridiagonal

    n = op.shape[0]
    k = 0 if deflate is None else deflate.shape[1]
    steps = int(min(steps, n - k))
    rng = np.random.default_rng(seed)
    start = op.n_products
    nodes = np.zeros((n_vectors, steps))
    weights = np.zeros((n_vectors, steps))
    for i in range(n_vectors):
        alpha, beta = lanczos(op.matvec, rng.choice([-1.0, 1.0], size=n), steps, deflate)
        t, U = eigh_tridiagonal(alpha, beta)
        m = t.size
        nodes[i, :m], weights[i, :m] = t, U[0] ** 2
        nodes[i, m:] = t[-1]      # early breakdown: pad with zero-weight nodes
    return Quadrature(nodes, weights, n - k, op.n_products - start)


def hutchinson(op, samples: int = 64, seed: int = 0) -> tuple[float, float]:
    """(estimate of tr(op), its standard error) from Rademacher probes."""
    n = op.shape[0]
    Z = np.random.default_rng(seed).choice([-1.0, 1.0], size=(n, samples))
    q = np.einsum("ij,ij->j", Z, op.matmat(Z))
    return float(q.mean()), float(q.std(ddof=1) / np.sqrt(samples))
