"""Benchmark for `nqm measure`, both comparisons in one run, on mlp-digits:

1. per-example gradients: `vmap(grad)` (empirical.noise.per_example_grads) against a plain loop
   of one autograd backward per example (same float64 model, same examples); prints the ratio
   of wall times and checks the two agree.
2. Hessian-vector products for the top-k eigenpairs: Lanczos (ARPACK eigsh, as
   `empirical.spectral.top_eigenpairs` calls it) against power iteration with deflation, both
   run until every one of the k pairs has residual |A v - lambda v| <= tol * lambda_1; prints
   the products each needed and their ratio.

    python benchmarks/bench_measure.py [--examples N] [--top-k 20] [--tol 1e-3]
                                       [--curvature hessian|ggn]

The operator is measured where the reference run reaches the target (the checkpoint
`nqm measure --at-target` uses).  Power iteration converges to the eigenvalue of largest
magnitude, so the benchmark checks that no negative eigenvalue is larger in magnitude than
lambda_k; otherwise it says so and the Gauss-Newton option should be used.
"""

import argparse
import time

import numpy as np
import torch
from scipy.sparse.linalg import eigsh

from empirical.checkpoints import train_checkpoints
from empirical.curvature import CurvatureOperator, FlatModel
from empirical.noise import per_example_grads
from empirical.workloads import get


def loop_grads(flat, loss, x, y):
    """The plain reference: one backward pass per example."""
    out = []
    for n in range(x.shape[0]):
        theta = flat.theta.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(loss(flat(theta, x[n:n + 1].double()), y[n:n + 1]), theta)
        out.append(g)
    return torch.stack(out).numpy()


def power_deflation(op, k, tol, seed=0, max_products=200_000):
    """Power iteration for the top k pairs, deflating the ones found (A - sum lambda_j v_j v_j')."""
    rng = np.random.default_rng(seed)
    vals, vecs, start, lam1 = [], [], op.n_products, None
    for _ in range(k):
        v = rng.standard_normal(op.shape[0])
        v /= np.linalg.norm(v)
        while op.n_products - start < max_products:
            w = op.matvec(v)
            if vecs:
                V = np.stack(vecs, 1)
                w = w - V @ (np.array(vals) * (V.T @ v))
            lam = float(v @ w)
            scale = lam1 if lam1 is not None else abs(lam)
            if np.linalg.norm(w - lam * v) <= tol * scale:
                break
            v = w / np.linalg.norm(w)
        vals.append(lam)
        vecs.append(v)
        lam1 = vals[0]
    return np.array(vals), np.stack(vecs, 1), op.n_products - start


def residuals(op_dense_free, vals, vecs):
    return np.array([np.linalg.norm(op_dense_free.matvec(v) - lam * v)
                     for lam, v in zip(vals, vecs.T)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--examples", type=int, default=None,
                    help="default: the whole training set (1437), as `nqm measure` uses")
    ap.add_argument("--repeats", type=int, default=3, help="best of this many timings")
    ap.add_argument("--top-k", type=int, default=20)
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--curvature", choices=["hessian", "ggn"], default="hessian")
    args = ap.parse_args()
    w = get("mlp-digits")
    target = train_checkpoints(w, [], at_target=True, seed=0)[-1]
    flat = FlatModel(w.make_model(0), target.params, target.buffers)
    x, y = w.train_set()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; mlp-digits at the target "
          f"(step {target.step}), {flat.dim} parameters")

    xs, ys = x[: args.examples], y[: args.examples]
    per_example_grads(flat, w.loss, xs[:8], ys[:8])                    # warm up
    t_vmap = t_loop = float("inf")
    for _ in range(args.repeats):         # best of `repeats`, alternating the two
        t0 = time.perf_counter()
        g_vmap = per_example_grads(flat, w.loss, xs, ys)
        t_vmap = min(t_vmap, time.perf_counter() - t0)
        t0 = time.perf_counter()
        g_loop = loop_grads(flat, w.loss, xs, ys)
        t_loop = min(t_loop, time.perf_counter() - t0)
    err = np.abs(g_vmap - g_loop).max() / np.abs(g_loop).max()
    print(f"\nper-example gradients, {xs.shape[0]} examples (float64), best of {args.repeats}:")
    print(f"  vmap(grad) {t_vmap:8.3f} s   loop {t_loop:8.3f} s   ratio {t_loop / t_vmap:6.1f}x"
          f"   (max relative difference {err:.1e})")

    op = CurvatureOperator(flat, w.loss, x, y, kind=args.curvature)
    k, tol = args.top_k, args.tol
    lowest = eigsh(op.as_linear_operator(), k=1, which="SA", tol=1e-3)[0][0]
    op.n_products = 0
    v0 = np.random.default_rng(0).standard_normal(flat.dim)
    lv, lV = eigsh(op.as_linear_operator(), k=k, which="LA", tol=tol, v0=v0)
    order = np.argsort(lv)[::-1]
    lv, lV = lv[order], lV[:, order]
    n_lanczos = op.n_products
    pv, pV, n_power = power_deflation(op, k, tol)
    r_l = residuals(op, lv, lV) / lv[0]
    r_p = residuals(op, pv, pV) / lv[0]
    print(f"\ntop {k} eigenpairs of the {args.curvature} over {x.shape[0]} examples, residual "
          f"<= {tol:g} * lambda_1 (lambda_1 = {lv[0]:.4g}, lambda_{k} = {lv[-1]:.4g}, "
          f"lowest eigenvalue {lowest:.3g}):")
    if abs(lowest) > lv[-1]:
        print(f"  warning: |lowest eigenvalue| > lambda_{k}; power iteration may find it first")
    print(f"  Lanczos (eigsh) {n_lanczos:6d} products   max residual/lambda_1 {r_l.max():.1e}")
    print(f"  power+deflation {n_power:6d} products   max residual/lambda_1 {r_p.max():.1e}")
    print(f"  eigenvalues agree to {np.abs(pv - lv).max() / lv[0]:.1e} (relative to lambda_1)")
    print(f"  ratio Lanczos / power = {n_lanczos / n_power:.3f}  (goal <= 1/3)")


if __name__ == "__main__":
    main()
