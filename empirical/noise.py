"""Gradient noise: per-example gradients, their covariance and the gradient noise scales.

The N measured examples are treated as a sample of the data distribution.  With per-example
gradients g_n (of the per-example loss), their mean g = (1/N) sum_n g_n and the plug-in
covariance S = (1/N) sum_n (g_n - g)(g_n - g)', the estimates are (unbiased for the
distribution's G = E g_n and Sigma = Cov g_n, H fixed):

    tr(Sigma)   = N/(N-1) tr(S),          tr(S) = (1/N) sum_n |g_n|^2 - |g|^2
    |G|^2       = |g|^2 - tr(Sigma) / N   (|g|^2 alone is too large by tr(Sigma)/N on average)
    c_i         = N/(N-1) v_i' S v_i
    tr(H Sigma) = N/(N-1) [(1/N) sum_n g_n' H g_n - g' H g]
    G' H G      = g' H g - tr(H Sigma) / N
    B_simple    = tr(Sigma) / |G|^2,   B_noise = tr(H Sigma) / (G' H G)   (McCandlish et al.
                  2018, arXiv 1812.06162, eqs. 2.8 and 2.9)

A batch of B examples drawn with replacement has gradient covariance Sigma / B.  A ratio whose
denominator estimate is <= 0 (noise swamps the mean gradient, or negative curvature along G)
is reported as None.  The mean of g_n' H g_n costs one operator product per example, so it is
taken over a seeded random subset of `hessian_examples` examples (all of them when N is
smaller).  Confidence intervals: nonparametric bootstrap over examples; each replicate
resamples the N examples (for g and tr S, and g' H g by one product per replicate) and,
independently, the subset (for the g' H g mean) and recomputes the same estimates; the 95%
interval is the 2.5/97.5% percentiles of the replicates.  The replicates of these ratios are
skewed and centre near the plug-in value tr S / |g|^2 rather than on the estimate, so when
B_simple is not small against N the estimate can lie near or just outside its interval; in
simulation (tests/empirical/test_noise.py) this percentile interval covered the true values
more often than a shifted or basic interval (86-92% at B/N = 0.22, 91-94% at B/N = 0.06, 200
seeds).

Two-batch estimator (McCandlish et al., appendix A) from mean-loss gradients of batches drawn
with replacement, B_small < B_big, of the same parameters:
    |G|^2     ~ (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small)
    tr(Sigma) ~ (|G_small|^2 - |G_big|^2) / (1/B_small - 1/B_big)
both unbiased for the set the batches are drawn from (here the N examples: its plug-in tr S
and |g|^2); numerator and denominator are averaged over the draws separately before the ratio
is taken.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch.func import grad, vmap

from empirical.curvature import float64_inputs


def per_example_grads(flat, loss, x: torch.Tensor, y: torch.Tensor,
                      chunk: int = 256, warn=None) -> np.ndarray:
    """(N, P) float64 matrix of per-example gradients g_n = grad_theta loss(f(theta, x_n), y_n)
    of the network as `flat` evaluates it (eval mode, buffers such as BatchNorm running
    statistics fixed: `empirical.curvature.FlatModel`), by vmap(grad) over the parameter
    dict, `chunk` examples at a time (bounds the memory of intermediates), written block by
    block into one preallocated array in the flat parameter order.  A model that vmap cannot run
    gets one gradient per example in a loop instead, said once through `warn`."""
    x, y = float64_inputs(x), float64_inputs(y)
    params = flat.unflatten(flat.theta)

    def one(p, xi, yi):
        return loss(flat.apply(p, xi[None]), yi[None])

    vmapped = vmap(grad(one), in_dims=(None, 0, 0))

    def looped(p, xs, ys):
        rows = [grad(one)(p, xs[i], ys[i]) for i in range(xs.shape[0])]
        return {k: torch.stack([r[k] for r in rows]) for k in p}

    g = vmapped
    out = np.empty((x.shape[0], flat.dim))
    view = torch.from_numpy(out)
    for s in range(0, x.shape[0], chunk):
        try:
            block = g(params, x[s:s + chunk], y[s:s + chunk])
        except Exception as exc:
            if g is looped:
                raise
            if warn is not None:
                warn(f"note: per-example gradients cannot be vmapped for this model "
                     f"({type(exc).__name__}); computing them one example at a time")
            g = looped
            block = g(params, x[s:s + chunk], y[s:s + chunk])
        offset = 0
        for name, size in zip(flat.names, flat.sizes):
            view[s:s + chunk, offset:offset + size] = block[name].reshape(-1, size).cpu()
            offset += size
    return out


class NoiseStats(NamedTuple):
    """Gradient-noise statistics at one point: tr(Sigma), |G|^2, tr(H Sigma), G'HG, the noise
    scales B_simple = tr(Sigma)/|G|^2 and B_noise = tr(H Sigma)/G'HG with their bootstrap 95%
    intervals, and c_i = v_i' Sigma v_i along the given directions."""

    trace_sigma: float
    grad_norm_sq: float
    trace_h_sigma: float
    g_h_g: float
    b_simple: float | None         # None when the |G|^2 estimate is <= 0
    b_noise: float | None          # None when the G'HG estimate is <= 0
    b_simple_ci: tuple[float, float] | None
    b_noise_ci: tuple[float, float] | None
    c: np.ndarray                  # variance along each given direction
    hessian_examples: int
    bootstrap: int


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den > 0 else None


def _estimates(mean_sq, g2, mean_q, ghg, n: int):
    """(tr Sigma, |G|^2, tr H Sigma, G'HG) from plug-in moments (module docstring); works
    elementwise on arrays of bootstrap replicates too."""
    f = n / (n - 1)
    tr_sigma = f * (mean_sq - g2)
    tr_h_sigma = f * (mean_q - ghg)
    return tr_sigma, g2 - tr_sigma / n, tr_h_sigma, ghg - tr_h_sigma / n


def noise_stats(grads: np.ndarray, op, directions: np.ndarray, hessian_examples: int = 128,
                bootstrap: int = 100, seed: int = 0) -> NoiseStats:
    """The estimates of the module docstring from per-example gradients `grads` (N, P), the
    curvature operator `op` and orthonormal `directions` (P, k)."""
    if bootstrap < 2:
        raise ValueError(f"bootstrap needs at least 2 replicates, got {bootstrap}")
    N = grads.shape[0]
    if N < 2:
        raise ValueError(f"the noise statistics need at least 2 examples, got {N}")
    rng = np.random.default_rng(seed)
    g = grads.mean(0)
    sq = np.einsum("np,np->n", grads, grads)
    proj = grads @ directions
    c = np.maximum(N / (N - 1) * ((proj**2).mean(0) - (g @ directions) ** 2), 0.0)

    sub = np.sort(rng.choice(N, size=min(N, hessian_examples), replace=False))
    q = np.einsum("np,pn->n", grads[sub], op.matmat(grads[sub].T))
    tr_s, g2, tr_hs, ghg = _estimates(sq.mean(), float(g @ g), q.mean(),
                                      float(g @ op.matvec(g)), N)

    # bootstrap replicates: resampled examples for g and tr S, resampled subset for the q mean
    W = np.stack([np.bincount(rng.integers(0, N, N), minlength=N) / N for _ in range(bootstrap)])
    q_means = np.array([q[rng.integers(0, q.size, q.size)].mean() for _ in range(bootstrap)])
    gb = (W @ grads).T                                     # (P, R)
    r_s, r_g2, r_hs, r_ghg = _estimates(W @ sq, np.einsum("pr,pr->r", gb, gb), q_means,
                                        np.einsum("pr,pr->r", gb, op.matmat(gb)), N)
    with np.errstate(divide="ignore", invalid="ignore"):
        b_s = np.where(r_g2 > 0, r_s / r_g2, np.nan)
        b_n = np.where(r_ghg > 0, r_hs / r_ghg, np.nan)
    b_simple, b_noise = _ratio(tr_s, g2), _ratio(tr_hs, ghg)
    return NoiseStats(
        trace_sigma=float(tr_s), grad_norm_sq=float(g2), trace_h_sigma=float(tr_hs),
        g_h_g=float(ghg), b_simple=b_simple, b_noise=b_noise,
        b_simple_ci=_percentiles(b_s) if b_simple is not None else None,
        b_noise_ci=_percentiles(b_n) if b_noise is not None else None,
        c=c, hessian_examples=int(sub.size), bootstrap=int(bootstrap))


def _percentiles(reps: np.ndarray) -> tuple[float, float]:
    """The 95% percentile interval of the replicates (a ratio whose denominator replicate is
    <= 0 is unbounded above: such replicates count as +inf)."""
    reps = np.where(np.isnan(reps), np.inf, reps)
    with np.errstate(invalid="ignore"):      # inf - inf when interpolating between two infs
        lo, hi = np.percentile(reps, [2.5, 97.5])
    return (float(lo), float(hi))


class TwoBatch(NamedTuple):
    """The two-batch estimate of B_simple (McCandlish et al. 2018, appendix A) and its terms."""

    b_simple: float | None        # None when the |G|^2 estimate is not positive
    ci: tuple[float, float]
    trace_sigma: float
    grad_norm_sq: float
    draws: int


def two_batch_pair(small_sq: float, big_sq: float, b_small: int, b_big: int
                   ) -> tuple[float, float]:
    """(tr(Sigma), |G|^2) from the squared norms |G_small|^2, |G_big|^2 of mean-loss gradients
    of b_small < b_big examples (McCandlish et al., appendix A; module docstring)."""
    trace_sigma = (small_sq - big_sq) / (1.0 / b_small - 1.0 / b_big)
    g2 = (b_big * big_sq - b_small * small_sq) / (b_big - b_small)
    return trace_sigma, g2


def two_batch_b_simple(flat, loss, x: torch.Tensor, y: torch.Tensor, b_small: int, b_big: int,
                       draws: int = 200, seed: int = 0, bootstrap: int = 200) -> TwoBatch:
    """B_simple from pairs of batch gradients (module docstring), no per-example gradients.

    Each draw takes b_big indices with replacement; G_big is their mean gradient and G_small
    that of the first b_small of them.  The interval is a percentile bootstrap over draws of the
    ratio of means.
    """
    if not 0 < b_small < b_big:
        raise ValueError(f"need 0 < b_small < b_big, got {b_small} and {b_big}")
    x, y = float64_inputs(x), float64_inputs(y)
    gen = torch.Generator().manual_seed(seed)
    g_of = grad(lambda theta, xb, yb: loss(flat(theta, xb), yb))
    s_est, g_est = np.zeros(draws), np.zeros(draws)
    for d in range(draws):
        idx = torch.randint(0, x.shape[0], (b_big,), generator=gen).to(x.device)
        big = g_of(flat.theta, x[idx], y[idx])
        small = g_of(flat.theta, x[idx[:b_small]], y[idx[:b_small]])
        n_big, n_small = float(big @ big), float(small @ small)
        s_est[d], g_est[d] = two_batch_pair(n_small, n_big, b_small, b_big)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, draws, (bootstrap, draws))
    s_rep, g_rep = s_est[idx].mean(1), g_est[idx].mean(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        reps = np.where(g_rep > 0, s_rep / g_rep, np.nan)
    return TwoBatch(_ratio(s_est.mean(), g_est.mean()), _percentiles(reps),
                    float(s_est.mean()), float(g_est.mean()), draws)
