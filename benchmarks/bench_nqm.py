"""Benchmark: `nqm` tuning against Zhang et al.'s (2019) search written the obvious way in numpy.

Reference, per batch size B, on the same spectrum (h, c, s0, count):
- sgd: a log grid of `--grid` (100) learning rates up to 1.9 / h_max; for each, the closed form
      L(k) = sum_i 1/2 count_i h_i [ s*_i + (1 - lr h_i)^(2k) (s0_i - s*_i) ],
      s*_i = lr c_i / (B h_i (2 - lr h_i)),
  and bisection on k for the first step with L(k) <= target (assuming L decreases);
- momentum: a grid of `--grid` learning rates (up to the stability limit 2 (1 + beta) / h_max)
  times `--betas` (20) momenta with 1 - beta log-spaced in [1e-5, 1) (2,000 points); per point
  the 3x3 second-moment map T_i of (E theta^2, E theta v, E v^2) of every direction,
  eigendecomposed as one batch (numpy.linalg.eig), m(k) = m* + V diag(lam^k) V^-1 (m0 - m*)
  with m* = (I - T)^-1 n, and bisection on k.  The decomposition is done once per grid point
  and shared by the batch sizes (which only flattens the reference's cost).
The best grid point is the answer.  Spectra: `binned` (d = 10^4, h_i = 1/i in 100 log-spaced
bins, 84 non-empty rows: `power_law(d, bins=100)`) or `exact` (10^4 rows).

    python benchmarks/bench_nqm.py --optimizer momentum --spectrum binned
    python benchmarks/bench_nqm.py --optimizer sgd --spectrum exact
(PYTHONPATH=. makes this checkout's `nqm` the one imported.)
Prints per-batch-size steps, and the time and steps ratios (reference / ours); each side's time
is the fastest of `--repeats` (3) alternating rounds (a side shorter than 0.25 s runs several
times per round and counts the median of those runs: `fastest`).
"""

import argparse
import time

import numpy as np

from nqm.spectrum import power_law
from nqm.tuning import tune


def _bisect(loss, target, k_max):
    """Smallest k in [0, k_max] with loss(k) <= target, assuming loss decreases (None: none)."""
    if loss(k_max) > target:
        return None
    lo, hi = 0, k_max
    if loss(0) <= target:
        return 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if loss(mid) <= target:
            hi = mid
        else:
            lo = mid
    return hi


def sgd_reference(spec, bs, target, n_lr, k_max):
    h, c, s0, w = spec.h, spec.c, spec.s0, 0.5 * spec.count * spec.h
    best = [(None, None)] * len(bs)
    for lr in np.geomspace(1e-6, 1.0, n_lr) * 1.9 / h.max():
        x = lr * h
        r = (1.0 - x) ** 2
        for j, b in enumerate(bs):
            s_star = lr * c / (b * h * (2.0 - x))
            k = _bisect(lambda k, s_star=s_star, r=r: np.sum(w * (s_star + r**k * (s0 - s_star))),
                        target, k_max)
            if k is not None and (best[j][0] is None or k < best[j][0]):
                best[j] = (k, (lr, 0.0))
    return best


def momentum_reference(spec, bs, target, n_lr, n_beta, k_max):
    h, c, s0, w = spec.h, spec.c, spec.s0, 0.5 * spec.count * spec.h
    d = h.size
    best = [(None, None)] * len(bs)
    m0 = np.stack([s0, np.zeros(d), np.zeros(d)], axis=1)
    for beta in 1.0 - np.geomspace(1e-5, 1.0, n_beta, endpoint=False):
        for lr in np.geomspace(1e-6, 1.0, n_lr) * 2.0 * (1.0 + beta) / h.max() * (1 - 1e-9):
            x = lr * h
            a, bb = 1.0 - x, beta
            # (E th^2, E th v, E v^2)' = T (E th^2, E th v, E v^2) + lr^2 c / B (1, 1, 1)
            T = np.empty((d, 3, 3))
            T[:, 0] = np.stack([a * a, 2 * a * bb * np.ones(d), bb * bb * np.ones(d)], 1)
            T[:, 1] = np.stack([-a * x, bb * (a - x), bb * bb * np.ones(d)], 1)
            T[:, 2] = np.stack([x * x, -2 * x * bb, bb * bb * np.ones(d)], 1)
            lam, V = np.linalg.eig(T)
            if np.abs(lam).max() >= 1.0:
                continue
            Vinv = np.linalg.inv(V)
            I_T = np.eye(3) - T
            for j, b in enumerate(bs):
                n = np.outer(lr * lr * c / b, np.ones(3))
                m_star = np.linalg.solve(I_T, n[..., None])[..., 0]
                coef = np.einsum("dij,dj->di", Vinv, m0 - m_star)

                def loss(k, m_star=m_star, coef=coef, V=V, lam=lam):
                    mk = m_star[:, 0] + np.einsum("dj,dj->d", V[:, 0, :], lam**k * coef).real
                    return np.sum(w * mk)

                k = _bisect(loss, target, k_max)
                if k is not None and (best[j][0] is None or k < best[j][0]):
                    best[j] = (k, (lr, beta))
    return best


def fastest(runs, repeats: int, min_round: float = 0.25):
    """[(the smallest over rounds of the median wall time of run() within a round, a result)
    for each run of `runs`]: on a shared machine other jobs only ever add time, so the fastest
    round is the estimate of the work itself.  The runs take turns for `repeats` rounds, so
    that a slower hour of the host slows both sides; a run shorter than `min_round` is called
    as often as fills that time within its round (at most 21 times), and the median of those
    calls is its round's time, so that a short run is not favoured by taking the least of
    more samples than the other side."""
    best = [None] * len(runs)
    calls = [1] * len(runs)
    for _ in range(repeats):
        for i, run in enumerate(runs):
            times = []
            for _ in range(calls[i]):
                t0 = time.perf_counter()
                out = run()
                times.append(time.perf_counter() - t0)
            t = float(np.median(times))
            best[i] = (t, out) if best[i] is None or t < best[i][0] else best[i]
            # an odd count, so that the median is one run's time
            calls[i] = max(calls[i], min(21, int(min_round / max(t, 1e-6))) | 1)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--optimizer", choices=("sgd", "momentum"), default="sgd")
    ap.add_argument("--spectrum", choices=("binned", "exact"), default="binned")
    ap.add_argument("--d", type=int, default=10_000)
    ap.add_argument("--target", type=float, default=0.01)
    ap.add_argument("--grid", type=int, default=100, help="reference learning rates")
    ap.add_argument("--betas", type=int, default=20, help="reference momenta")
    ap.add_argument("--max-steps", type=int, default=10**8)
    ap.add_argument("--batch-sizes", default="0:20", help="log2 range LO:HI, or B1,B2,...")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=3,
                    help="alternating rounds of timing; each side keeps its fastest round")
    args = ap.parse_args()
    if ":" in args.batch_sizes:
        lo, hi = (int(v) for v in args.batch_sizes.split(":"))
        bs = [2**i for i in range(lo, hi + 1)]
    else:
        bs = [int(v) for v in args.batch_sizes.split(",")]
    spec = power_law(d=args.d, bins=100 if args.spectrum == "binned" else None)

    tune(spec, args.optimizer, bs[:1], args.target, max_steps=args.max_steps)   # compile

    def ours_run():
        return tune(spec, args.optimizer, bs, args.target, max_steps=args.max_steps,
                    threads=args.threads)

    def ref_run():
        if args.optimizer == "sgd":
            return sgd_reference(spec, bs, args.target, args.grid, args.max_steps)
        return momentum_reference(spec, bs, args.target, args.grid, args.betas, args.max_steps)

    (t_ours, ours), (t_ref, ref) = fastest([ours_run, ref_run], args.repeats)

    print(f"{args.optimizer}, spectrum {args.spectrum} ({spec.n_rows} rows, d = {args.d}), "
          f"target {args.target}, {len(bs)} batch sizes")
    print(f"{'batch':>9} {'ours':>10} {'reference':>10} {'ref/ours':>9} {'lr ours':>10} "
          f"{'beta ours':>10} {'lr ref':>10} {'beta ref':>10}")
    ratios = []
    for b, p, (rs, arg) in zip(bs, ours, ref):
        ratio = rs / p.steps if (p.steps and rs) else float("nan")
        ratios.append(ratio)
        lr_r, beta_r = arg if arg else (float("nan"), float("nan"))
        print(f"{b:>9d} {p.steps!s:>10} {rs!s:>10} {ratio:>9.4f} {p.lr:>10.4g} "
              f"{p.momentum:>10.6g} {lr_r:>10.4g} {beta_r:>10.6g}")
    ratios = np.array(ratios)
    print(f"\ntime (fastest, {args.repeats} alternating rounds): ours {t_ours:.3f} s, "
          f"reference {t_ref:.3f} s, reference / ours {t_ref / t_ours:.1f}x")
    verdict = ("ours <= reference at every batch size" if np.all(ratios >= 1)
               else "ours > reference somewhere")
    print(f"steps reference/ours: min {np.nanmin(ratios):.4f}, mean {np.nanmean(ratios):.4f} "
          f"({verdict})")


if __name__ == "__main__":
    main()
