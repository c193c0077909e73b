"""Benchmark: `nqm` tuning against a plain reference written the obvious way.

Reference (as in Zhang et al.'s notebook): for every batch size, a log grid of learning rates;
for each, the SGD closed form of the expected loss in numpy,
    L(k) = sum_i 1/2 h_i [ s*_i + (1 - lr h_i)^(2k) (s0_i - s*_i) ],
    s*_i = lr c_i / (B h_i (2 - lr h_i)),
and bisection on k for the first step with L(k) <= target (assuming L decreases); the best
grid point is the answer.  Both run on the same spectrum and batch sizes in one process.

    python benchmarks/bench_nqm.py                 # default model, 21 batch sizes
    python benchmarks/bench_nqm.py --grid 300      # coarser reference grid
Prints per-batch-size steps, the speed ratio and the ratio of steps found (ours / grid).
"""

import argparse
import time

import numpy as np

from nqm.spectrum import power_law
from nqm.tuning import tune


def reference_steps(h, c, s0, batch_size, target, lrs, max_steps):
    """Plain numpy: min over the lr grid of the bisection-found first step below target."""
    best, best_lr = None, None
    for lr in lrs:
        x = lr * h
        r = (1.0 - x) ** 2
        s_star = lr * c / (batch_size * h * (2.0 - x))

        def loss(k, r=r, s_star=s_star):
            return 0.5 * np.sum(h * (s_star + r**k * (s0 - s_star)))

        if loss(max_steps) > target:
            continue
        lo, hi = 0, max_steps            # loss(lo) > target >= loss(hi)
        if loss(0) <= target:
            hi = 0
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if loss(mid) <= target:
                hi = mid
            else:
                lo = mid
        if best is None or hi < best:
            best, best_lr = hi, lr
    return best, best_lr


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--d", type=int, default=10_000)
    ap.add_argument("--target", type=float, default=0.01)
    ap.add_argument("--grid", type=int, default=1000, help="reference learning rates")
    ap.add_argument("--max-steps", type=int, default=10**8)
    ap.add_argument("--batch-sizes", default="0:20", help="log2 range LO:HI")
    ap.add_argument("--repeats", type=int, default=3, help="ours: best of N timings")
    args = ap.parse_args()
    lo, hi = (int(v) for v in args.batch_sizes.split(":"))
    bs = [2**i for i in range(lo, hi + 1)]
    spec = power_law(d=args.d)
    h, c, s0 = spec.h, spec.c, spec.s0

    tune(spec, "sgd", bs[:2], args.target, max_steps=args.max_steps)   # compile (cached)
    t_ours = float("inf")
    for _ in range(args.repeats):            # best of N: the machine is shared and noisy
        t0 = time.perf_counter()
        ours = tune(spec, "sgd", bs, args.target, max_steps=args.max_steps)
        t_ours = min(t_ours, time.perf_counter() - t0)

    lrs = np.geomspace(1e-6, 1.0, args.grid) * 2.0 / h.max() * (1 - 1e-9)
    t0 = time.perf_counter()
    ref = [reference_steps(h, c, s0, b, args.target, lrs, args.max_steps) for b in bs]
    t_ref = time.perf_counter() - t0

    print(f"spectrum d={args.d}, target {args.target}, {len(bs)} batch sizes, "
          f"reference grid {args.grid} learning rates (spacing "
          f"{(lrs[1] / lrs[0] - 1) * 100:.2f}%)")
    print(f"{'batch':>9} {'ours':>10} {'grid':>10} {'ratio':>8} {'lr ours':>10} {'lr grid':>10}")
    ratios = []
    for b, p, (rs, rlr) in zip(bs, ours, ref):
        ratio = p.steps / rs if (p.steps and rs) else float("nan")
        ratios.append(ratio)
        print(f"{b:>9d} {p.steps!s:>10} {rs!s:>10} {ratio:>8.4f} {p.lr:>10.4g} "
              f"{rlr if rlr is None else format(rlr, '.4g'):>10}")
    ratios = np.array(ratios)
    print(f"\ntime: ours {t_ours:.2f} s (best of {args.repeats}), reference {t_ref:.2f} s, "
          f"speed ratio {t_ref / t_ours:.0f}x")
    verdict = ("ours <= grid at every batch size" if np.all(ratios <= 1)
               else "ours > grid somewhere")
    print(f"steps ours/grid: max {np.nanmax(ratios):.4f}, mean {np.nanmean(ratios):.4f} "
          f"({verdict})")


if __name__ == "__main__":
    main()
