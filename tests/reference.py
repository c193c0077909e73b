"""Slow, obviously correct references written from the update rules (no code shared with nqm)."""

import numpy as np


def moment_recurrence(h, c, s0, count, kind, lr, momentum, precond, ema, batch_size, lrs=None,
                      n_steps=None):
    """Expected loss at steps 0..n by propagating the exact second moments step by step.

    State per direction: (theta, v, avg) as needed.  The update is written out literally:
        g = h * (theta + look) + eps,  look = momentum * v for nesterov else 0
        sgd:       theta <- theta - a g
        momentum:  v <- momentum v - a g; theta <- theta + v
        ema:       avg <- ema * avg + (1 - ema) * theta
    with a = lr_t h^-precond.  Second moments of the affine map z <- A z + B eps follow
    Sigma <- A Sigma A' + Var(eps) B B'.
    """
    lrs = np.full(n_steps, lr) if lrs is None else np.asarray(lrs)
    d = len(h)
    names = ["theta"] + (["v"] if kind != "sgd" else []) + (["avg"] if ema is not None else [])
    m = len(names)
    ix = {n: i for i, n in enumerate(names)}
    z0 = np.zeros(m)
    z0[ix["theta"]] = 1.0
    if ema is not None:
        z0[ix["avg"]] = 1.0
    read = ix["avg"] if ema is not None else ix["theta"]
    sig = np.array([s0[i] * np.outer(z0, z0) for i in range(d)])
    out = [0.5 * np.sum(count * h * sig[:, read, read])]
    for lr_t in lrs:
        for i in range(d):
            a = lr_t * h[i] ** (-precond)
            # theta, v, avg as linear functions of (old state, eps): rows = new, cols = old + eps
            M = np.zeros((m, m + 1))
            old = np.eye(m + 1)[:m]           # old state coordinates
            epsv = np.eye(m + 1)[m]
            theta = old[ix["theta"]]
            if kind == "sgd":
                g = h[i] * theta + epsv
                new_theta = theta - a * g
                M[ix["theta"]] = new_theta
            else:
                v = old[ix["v"]]
                look = momentum * v if kind == "nesterov" else 0.0
                g = h[i] * (theta + look) + epsv
                new_v = momentum * v - a * g
                new_theta = theta + new_v
                M[ix["theta"]] = new_theta
                M[ix["v"]] = new_v
            if ema is not None:
                M[ix["avg"]] = ema * old[ix["avg"]] + (1 - ema) * new_theta
            A, Bv = M[:, :m], M[:, m]
            sig[i] = A @ sig[i] @ A.T + (c[i] / batch_size) * np.outer(Bv, Bv)
        out.append(0.5 * np.sum(count * h * sig[:, read, read]))
    return np.array(out)


def forward_scan(losses, target):
    """Index of the first entry <= target, or -1."""
    hit = np.flatnonzero(np.asarray(losses) <= target)
    return int(hit[0]) if hit.size else -1
