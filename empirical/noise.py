"""Gradient noise: per-example gradients, their covariance and the gradient noise scales.

Over N examples with per-example gradients g_n (of the per-example loss) and mean gradient
G = (1/N) sum_n g_n (the full-batch gradient of the mean training loss):

    Sigma       = (1/N) sum_n (g_n - G)(g_n - G)'     per-example covariance (a batch of B
                                                      examples drawn with replacement has
                                                      gradient covariance Sigma / B)
    tr(Sigma)   = (1/N) sum_n |g_n|^2 - |G|^2
    c_i         = v_i' Sigma v_i = (1/N) sum_n (v_i' g_n)^2 - (v_i' G)^2
    tr(H Sigma) = (1/N) sum_n g_n' H g_n - G' H G
    B_simple    = tr(Sigma) / |G|^2,   B_noise = tr(H Sigma) / (G' H G)   (McCandlish et al.
                  2018, arXiv 1812.06162, eqs. 2.8 and 2.9)

The mean of g_n' H g_n costs one operator product per example, so it is taken over a seeded
random subset of `hessian_examples` examples (all of them when N is smaller).  Confidence
intervals come from a nonparametric bootstrap over examples: each replicate resamples the N
examples (for tr Sigma, G and G' H G, the latter by one product per replicate) and,
independently, the subset (for the g' H g mean); intervals are basic (reverse-percentile) 95%
bootstrap intervals.

Two-batch estimator (McCandlish et al., appendix A) from mean-loss gradients of batches drawn
with replacement, B_small < B_big, of the same parameters:
    |G|^2     ~ (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small)
    tr(Sigma) ~ (|G_small|^2 - |G_big|^2) / (1/B_small - 1/B_big)
both unbiased; numerator and denominator are averaged over the draws separately before the
ratio is taken.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch.func import grad, vmap


def per_example_grads(flat, loss, x: torch.Tensor, y: torch.Tensor,
                      chunk: int = 256) -> np.ndarray:
    """(N, P) float64 matrix of per-example gradients by vmap(grad) over the parameter dict,
    `chunk` examples at a time (bounds the memory of intermediates), written block by block
    into one preallocated array in the flat parameter order."""
    from torch.func import functional_call

    from empirical.curvature import float64_inputs

    x = float64_inputs(x)
    y = y.double() if y.is_floating_point() else y
    params = flat.unflatten(flat.theta)

    def one(p, xi, yi):
        return loss(functional_call(flat.base, p, (xi[None],)), yi[None])

    g = vmap(grad(one), in_dims=(None, 0, 0))
    out = np.empty((x.shape[0], flat.dim))
    view = torch.from_numpy(out)
    for s in range(0, x.shape[0], chunk):
        block = g(params, x[s:s + chunk], y[s:s + chunk])
        offset = 0
        for name, size in zip(flat.names, flat.sizes):
            view[s:s + chunk, offset:offset + size] = block[name].reshape(-1, size)
            offset += size
    return out


class NoiseStats(NamedTuple):
    trace_sigma: float
    grad_norm_sq: float
    trace_h_sigma: float
    g_h_g: float
    b_simple: float
    b_noise: float | None          # None when G'HG <= 0 (negative curvature along G)
    b_simple_ci: tuple[float, float]
    b_noise_ci: tuple[float, float] | None
    c: np.ndarray                  # variance along each given direction
    hessian_examples: int
    bootstrap: int


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den > 0 else None


def noise_stats(grads: np.ndarray, op, directions: np.ndarray, hessian_examples: int = 128,
                bootstrap: int = 100, seed: int = 0) -> NoiseStats:
    """The quantities of the module docstring from per-example gradients `grads` (N, P), the
    curvature operator `op` and orthonormal `directions` (P, k)."""
    if bootstrap < 2:
        raise ValueError(f"bootstrap needs at least 2 replicates, got {bootstrap}")
    rng = np.random.default_rng(seed)
    N = grads.shape[0]
    G = grads.mean(0)
    sq = np.einsum("np,np->n", grads, grads)
    trace_sigma = float(sq.mean() - G @ G)
    proj = grads @ directions
    c = np.maximum((proj**2).mean(0) - (G @ directions) ** 2, 0.0)

    sub = np.sort(rng.choice(N, size=min(N, hessian_examples), replace=False))
    q = np.einsum("np,pn->n", grads[sub], op.matmat(grads[sub].T))
    ghg = float(G @ op.matvec(G))
    trace_h_sigma = float(q.mean() - ghg)

    # bootstrap replicates: resampled examples for G and tr(Sigma), resampled subset for q
    W = np.stack([np.bincount(rng.integers(0, N, N), minlength=N) / N for _ in range(bootstrap)])
    q_means = np.array([q[rng.integers(0, q.size, q.size)].mean() for _ in range(bootstrap)])
    Gb = (W @ grads).T                                     # (P, R)
    g2b = np.einsum("pr,pr->r", Gb, Gb)
    ghgb = np.einsum("pr,pr->r", Gb, op.matmat(Gb))
    with np.errstate(divide="ignore", invalid="ignore"):
        b_s = np.where(g2b > 0, (W @ sq - g2b) / g2b, np.nan)
        bn = np.where(ghgb > 0, (q_means - ghgb) / ghgb, np.nan)
    g2 = float(G @ G)
    b_noise = _ratio(trace_h_sigma, ghg)
    return NoiseStats(
        trace_sigma=trace_sigma, grad_norm_sq=g2, trace_h_sigma=trace_h_sigma, g_h_g=ghg,
        b_simple=trace_sigma / g2 if g2 > 0 else float("inf"), b_noise=b_noise,
        b_simple_ci=_basic_interval(trace_sigma / g2 if g2 > 0 else None, b_s),
        b_noise_ci=_basic_interval(b_noise, bn) if b_noise is not None else None,
        c=c, hessian_examples=int(sub.size), bootstrap=int(bootstrap))


def _basic_interval(estimate: float, reps: np.ndarray) -> tuple[float, float]:
    """The basic (reverse-percentile) 95% bootstrap interval [2t - q97.5, 2t - q2.5]: it
    corrects the shift of the replicates, e.g. |G*|^2 exceeds |G|^2 by tr(Sigma)/N on average,
    which pulls the replicates of B_simple below the estimate."""
    reps = reps[np.isfinite(reps)]
    if reps.size == 0 or estimate is None:
        return (float("nan"), float("nan"))
    lo, hi = np.percentile(reps, [2.5, 97.5])
    return (float(max(2 * estimate - hi, 0.0)), float(2 * estimate - lo))


class TwoBatch(NamedTuple):
    b_simple: float | None        # None when the |G|^2 estimate is not positive
    ci: tuple[float, float]
    trace_sigma: float
    grad_norm_sq: float
    draws: int


def two_batch_b_simple(flat, loss, x: torch.Tensor, y: torch.Tensor, b_small: int, b_big: int,
                       draws: int = 200, seed: int = 0, bootstrap: int = 200) -> TwoBatch:
    """B_simple from pairs of batch gradients (module docstring), no per-example gradients.

    Each draw takes b_big indices with replacement; G_big is their mean gradient and G_small
    that of the first b_small of them.  The interval is a percentile bootstrap over draws of the
    ratio of means (basic interval).
    """
    from empirical.curvature import float64_inputs

    if not 0 < b_small < b_big:
        raise ValueError(f"need 0 < b_small < b_big, got {b_small} and {b_big}")
    x = float64_inputs(x)
    y = y.double() if y.is_floating_point() else y
    gen = torch.Generator().manual_seed(seed)
    g_of = grad(lambda theta, xb, yb: loss(flat(theta, xb), yb))
    s_est, g_est = np.zeros(draws), np.zeros(draws)
    for d in range(draws):
        idx = torch.randint(0, x.shape[0], (b_big,), generator=gen)
        big = g_of(flat.theta, x[idx], y[idx])
        small = g_of(flat.theta, x[idx[:b_small]], y[idx[:b_small]])
        n_big, n_small = float(big @ big), float(small @ small)
        s_est[d] = (n_small - n_big) / (1 / b_small - 1 / b_big)
        g_est[d] = (b_big * n_big - b_small * n_small) / (b_big - b_small)
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(bootstrap):
        i = rng.integers(0, draws, draws)
        if g_est[i].mean() > 0:
            reps.append(s_est[i].mean() / g_est[i].mean())
    estimate = _ratio(s_est.mean(), g_est.mean())
    return TwoBatch(estimate, _basic_interval(estimate, np.array(reps)),
                    float(s_est.mean()), float(g_est.mean()), draws)
