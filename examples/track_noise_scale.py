"""Track the gradient noise scale B_simple inside a plain PyTorch training loop.

The loop is `nqm measure`'s reference run of mlp-digits (scikit-learn's 8x8 digits, a 64-128-10
MLP, Adam lr 3e-3, batches of 64 drawn with replacement, seed 0), written out with torch.optim.
`NoiseScaleTracker.backward` replaces `loss.backward()`: it backpropagates the first b_small
examples of each batch and the rest separately, so every step yields the two-batch estimate
(b_small, 64) for the cost of one backward pass, and leaves the full batch's gradient in .grad.

    python examples/track_noise_scale.py --steps 1000 --out out/track
    nqm figures --noise-log out/track/noise.jsonl --out out/track
    nqm measure --workload mlp-digits --at-step 0,20,60,139,300,600,1000   # per-example values
    nqm calibrate --spectrum figures/measure/mlp-digits/spectrum_target.npz \
        --runs figures/sweeps/mlp-digits-adam --noise-log out/track/noise.jsonl
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout

from empirical.track import NoiseScaleTracker, TrackerConfig  # noqa: E402
from empirical.workloads import digits_workload  # noqa: E402


def _shown(tracker: NoiseScaleTracker) -> str:
    if tracker.b_simple is None:
        return "B_simple -"
    ci = tracker.interval
    return f"B_simple {tracker.b_simple:.4g}" + (f" [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "")


def main(argv=None) -> None:
    """Train, track and write OUT/noise.jsonl; print B_simple every --print-every steps."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--b-small", type=int, default=8)
    ap.add_argument("--ema", type=float, default=0.95)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=10)
    ap.add_argument("--print-every", type=int, default=100)
    ap.add_argument("--out", default="out/track")
    args = ap.parse_args(argv)

    w = digits_workload("mlp-digits")
    model = w.make_model(args.seed)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "noise.jsonl"
    log.unlink(missing_ok=True)
    info = {"workload": "mlp-digits", "optimizer": "adam", "lr": args.lr,
            "batch_size": args.batch_size, "seed": args.seed, "metric": w.metric_name}

    def metric() -> float:
        with torch.no_grad():
            stacked = {k: v.detach()[None] for k, v in model.named_parameters()}
            return float(w.evaluate(model, stacked)[0])

    with NoiseScaleTracker(model, log=log, config=TrackerConfig(ema=args.ema),
                           info=info) as tracker:
        for step in range(args.steps):        # the gradient at `step` is taken at those params
            x, y = w.batch(args.batch_size, gen)
            opt.zero_grad()
            m = metric() if step % args.eval_every == 0 else None
            loss = tracker.backward(step, w.loss, x, y, b_small=args.b_small, metric=m)
            opt.step()
            if step % args.print_every == 0 or step == args.steps - 1:
                print(f"step {step:>6d}  loss {float(loss):.4f}  {_shown(tracker)}"
                      + (f"  {w.metric_name} {m:.4f}" if m is not None else ""))
    print(f"wrote {log}")


if __name__ == "__main__":
    main()
