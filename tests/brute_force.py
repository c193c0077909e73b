"""Brute-force optimum of steps-to-target over a fine log grid of the whole metaparameter box,
with the exact first crossings of `Modes.first_crossings` (the obvious, slow reference for
`nqm.tuning`)."""

import numpy as np

from nqm.closed_form import Modes
from nqm.optimizer import OptimizerConfig, lr_limit


def brute_force(spec, kind, batch_sizes, target, max_steps, precond=0.0, ema=False,
                lr_ratios=None, one_minus_betas=None, one_minus_gammas=None, zoom=True):
    """Best exact steps per batch size (None: not reached) over every grid combination of
    lr = ratio * lr_limit(beta), beta = 1 - one_minus_beta, gamma = 1 - one_minus_gamma; with
    `zoom`, then a 3x finer grid around each batch size's best point, twice."""
    lr_ratios = np.geomspace(1e-12, 1 - 1e-6, 241) if lr_ratios is None else lr_ratios
    if kind == "sgd":
        one_minus_betas = np.array([1.0])
    elif one_minus_betas is None:
        one_minus_betas = np.geomspace(1e-7, 1.0, 43)
    if not ema:
        one_minus_gammas = np.array([None])
    elif one_minus_gammas is None:
        one_minus_gammas = np.geomspace(1e-7, 1.0, 29)
    bs = np.asarray(batch_sizes, dtype=np.float64)
    best = np.full(bs.size, max_steps + 1, dtype=np.int64)
    arg = [None] * bs.size

    def scan(ratios, mbetas, mgammas, only=None):
        for mb in mbetas:
            beta = 0.0 if kind == "sgd" else 1.0 - mb
            lim = lr_limit(spec.h, kind, beta, precond)
            for mg in mgammas:
                gamma = None if mg is None else 1.0 - mg
                for r in ratios:
                    cfg = OptimizerConfig(kind, lr=r * lim, momentum=beta, precond=precond,
                                          ema=gamma)
                    modes = Modes.build(spec, cfg)
                    if not modes.stable:
                        continue
                    # a crossing later than every batch size's best so far cannot win
                    cap = int(best.max() if only is None else best[only]) - 1
                    ks = modes.first_crossings(bs, target, cap)
                    for j, k in enumerate(ks):
                        if (only is None or j == only) and 0 <= k < best[j]:
                            best[j], arg[j] = k, (r, mb, mg)

    scan(lr_ratios, one_minus_betas, one_minus_gammas)
    if zoom:
        for j in range(bs.size):
            if arg[j] is None:
                continue
            for level in (1, 2):
                r, mb, mg = arg[j]
                step = np.log(lr_ratios[1] / lr_ratios[0]) / 3**level
                fine = r * np.exp(step * np.arange(-4, 5))
                fine = fine[fine < 1.0]
                mbs = _around(mb, one_minus_betas, level) if kind != "sgd" else [1.0]
                mgs = _around(mg, one_minus_gammas, level) if ema else [None]
                scan(fine, mbs, mgs, only=j)
    return [int(k) if a is not None else None for k, a in zip(best, arg)], arg


def _around(v, axis, level):
    if axis.size < 2:
        return [v]
    step = np.log(axis[1] / axis[0]) / 3**level
    out = v * np.exp(step * np.arange(-4, 5))
    return out[out <= 1.0]
