"""One measurement of curvature and gradient noise at a set of parameters.

At parameters theta (a checkpoint) over the workload's fixed training examples, the loss is
that of the network as it is evaluated: eval mode (dropout off), with its buffers (BatchNorm
running means and variances) fixed at the checkpoint's values, L(theta) = (1/N) sum_n
loss(f(theta, x_n; B), y_n) (`empirical.curvature.FlatModel`).  The curvature and the
per-example gradients below are those of this L; it is the only definition under which a
per-example loss exists for BatchNorm (in train mode an example's output depends on its
batch).
- curvature operator A = H or the Gauss-Newton matrix (`empirical.curvature`), float64;
- top-k eigenpairs (lambda_i, v_i) of A by Lanczos; the bulk density of A restricted to the
  complement of span(v_1..v_k) by stochastic Lanczos quadrature; tr(A) by Hutchinson
  (`empirical.spectral`);
- per-example gradients, c_i = v_i' Sigma v_i, tr(Sigma), |G|^2, tr(A Sigma), G'AG, B_simple,
  B_noise with bootstrap intervals (`empirical.noise`); B_noise uses the same A;
- the displacement d = theta_init - theta_ref to a reference solution (the trained parameters),
  projected on the eigenvectors: s0_i = (v_i' d)^2, and |d|^2;
- the same for the displacement from the measured point itself, d_here = theta - theta_ref:
  s0_here_i = (v_i' d_here)^2 and |d_here|^2 (what a quadratic around theta_ref with this
  checkpoint's curvature starts from here; `empirical.adapter.here_spectrum`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import torch

from empirical.curvature import CurvatureOperator, FlatModel
from empirical.noise import NoiseStats, TwoBatch, noise_stats, per_example_grads, two_batch_b_simple
from empirical.spectral import Quadrature, hutchinson, slq, top_eigenpairs
from empirical.workloads import Workload


@dataclass(frozen=True)
class MeasureConfig:
    """What to measure at each checkpoint: top-k eigenpairs of the Hessian or Gauss-Newton
    matrix, SLQ density, per-example noise and their examples, bootstrap, the two-batch
    estimator; bootstrap and subsets seeded by `seed`."""

    top_k: int = 20
    kind: str = "hessian"            # or "ggn"
    examples: int | None = None      # use a seeded random subset of the training examples
    hessian_examples: int = 128      # examples for the g' A g mean in tr(A Sigma)
    slq_vectors: int = 4
    slq_steps: int = 40
    hutchinson_samples: int = 32
    bootstrap: int = 100
    batch_size: int = 512            # examples per operator batch (memory bound only)
    two_batch: tuple[int, int] | None = None   # also the two-batch B_simple (B_small, B_big)
    two_batch_draws: int = 200
    seed: int = 0

    def __post_init__(self):
        for name in ("top_k", "hessian_examples", "slq_vectors", "slq_steps",
                     "hutchinson_samples", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.bootstrap < 2:
            raise ValueError(f"bootstrap must be >= 2, got {self.bootstrap}")
        if self.two_batch is not None and not 0 < self.two_batch[0] < self.two_batch[1]:
            raise ValueError(f"two-batch sizes need 0 < B_small < B_big, got {self.two_batch}")
        if self.examples is not None and self.examples < 2:
            raise ValueError(f"examples must be >= 2, got {self.examples}")


@dataclass(frozen=True)
class Measurement:
    """Everything measured at one checkpoint (curvature, noise and the noise scales)."""

    label: str
    step: int
    metric: float
    train_loss: float
    n_examples: int
    dim: int
    config: MeasureConfig
    eigenvalues: np.ndarray          # (k,) descending
    eigenvectors: np.ndarray         # (P, k)
    c_top: np.ndarray                # (k,)
    s0_top: np.ndarray               # (k,)
    displacement_sq: float           # |theta_init - theta_ref|^2
    noise: NoiseStats
    trace: float                     # Hutchinson tr(A)
    trace_se: float
    bulk: Quadrature
    products: dict
    two_batch: TwoBatch | None = None
    s0_here_top: np.ndarray | None = None    # (k,) (v_i' (theta - theta_ref))^2
    displacement_here_sq: float | None = None  # |theta - theta_ref|^2

    def summary(self) -> dict:
        """The JSON-ready numbers (no vectors)."""
        n = self.noise
        return {
            "label": self.label, "step": self.step, "metric": self.metric,
            "train_loss": self.train_loss, "curvature": self.config.kind,
            "n_examples": self.n_examples, "n_params": self.dim,
            "b_simple": n.b_simple, "b_simple_ci": _interval(n.b_simple_ci),
            "b_noise": n.b_noise, "b_noise_ci": _interval(n.b_noise_ci),
            "trace_hessian": self.trace, "trace_hessian_se": self.trace_se,
            "trace_hessian_slq": float(self.bulk.trace() + self.eigenvalues.sum()),
            "trace_sigma": n.trace_sigma, "grad_norm_sq": n.grad_norm_sq,
            "trace_h_sigma": n.trace_h_sigma, "g_h_g": n.g_h_g,
            "top_eigenvalues": self.eigenvalues.tolist(), "top_noise": self.c_top.tolist(),
            "top_s0": self.s0_top.tolist(), "displacement_sq": self.displacement_sq,
            "top_s0_here": None if self.s0_here_top is None else self.s0_here_top.tolist(),
            "displacement_here_sq": self.displacement_here_sq,
            "operator_products": self.products,
            "two_batch": None if self.two_batch is None else {
                "b_small": self.config.two_batch[0], "b_big": self.config.two_batch[1],
                "draws": self.two_batch.draws, "b_simple": self.two_batch.b_simple,
                "b_simple_ci": _interval(self.two_batch.ci),
                "note": "estimates the measured examples' own tr(S)/|g|^2 (batches drawn "
                        "from them), not the distribution-level b_simple"},
        }


def _interval(ci) -> list | None:
    """[lo, hi] for JSON; an unbounded end (inf) becomes null."""
    if ci is None:
        return None
    return [float(v) if np.isfinite(v) else None for v in ci]


def check_measurable(model: torch.nn.Module) -> None:
    """ValueError for a model without a per-example loss: a BatchNorm layer without running
    statistics (track_running_stats=False) normalises by its batch even in eval mode, so one
    example's output depends on the others.  BatchNorm with running statistics is measured in
    eval mode with the checkpoint's statistics fixed."""
    bn = next((n for n, m in model.named_modules()
               if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
               and not m.track_running_stats), None)
    if bn is not None:
        raise ValueError(f"measure needs BatchNorm with running statistics (module '{bn}' has "
                         "track_running_stats=False, so its output for one example depends on "
                         "its batch even in eval mode); use LayerNorm or GroupNorm, or keep the "
                         "running statistics")


def training_examples(workload: Workload, examples: int | None, seed: int):
    """The workload's fixed training set, or a seeded random subset of `examples` of it."""
    if workload.train_set is None:
        raise ValueError(f"workload '{workload.name}' has no fixed training set to measure on")
    x, y = workload.train_set()
    if examples is not None and examples < x.shape[0]:
        gen = torch.Generator().manual_seed(seed)
        idx = torch.randperm(x.shape[0], generator=gen)[:examples].sort().values
        x, y = x[idx.to(x.device)], y[idx.to(y.device)]
    return x, y


def training_loss(workload: Workload, params: dict[str, torch.Tensor],
                  config: MeasureConfig = MeasureConfig(),
                  buffers: dict[str, torch.Tensor] | None = None) -> float:
    """The mean training loss at `params` over the examples a measurement uses, in eval mode
    with `buffers` (default: the fresh model's) fixed."""
    x, y = training_examples(workload, config.examples, config.seed)
    flat = FlatModel(workload.make_model(config.seed), params, buffers)
    return CurvatureOperator(flat, workload.loss, x, y, kind=config.kind,
                             batch_size=config.batch_size).loss_value()


def measure(workload: Workload, params: dict[str, torch.Tensor],
            init: dict[str, torch.Tensor], reference: dict[str, torch.Tensor],
            config: MeasureConfig = MeasureConfig(), label: str = "", step: int = 0,
            metric: float = float("nan"), progress=None,
            buffers: dict[str, torch.Tensor] | None = None) -> Measurement:
    """Measure at `params` with the model's `buffers` (a checkpoint's running statistics;
    default: the fresh model's) fixed, in eval mode; `init` and `reference` give the
    displacement for s0.  `progress(message)`, if given, is called after each stage (they can
    take minutes)."""
    t0 = time.perf_counter()
    x, y = training_examples(workload, config.examples, config.seed)
    model = workload.make_model(config.seed)
    flat = FlatModel(model, params, buffers)
    op = CurvatureOperator(flat, workload.loss, x, y, kind=config.kind,
                           batch_size=config.batch_size)
    products = {}
    if config.top_k >= flat.dim:
        # the bulk (SLQ on the complement of the top-k) needs at least one direction
        config = dataclasses.replace(config, top_k=max(flat.dim - 1, 1))
        if progress is not None:
            progress(f"note: --top-k clamped to {config.top_k} (the model has {flat.dim} "
                     f"parameters)")

    def done(stage: str, n0: int) -> None:
        products[stage] = op.n_products - n0
        if progress is not None:
            progress(f"{label}: {stage} done ({products[stage]} products, "
                     f"{time.perf_counter() - t0:.0f} s)")

    top = top_eigenpairs(op, config.top_k, seed=config.seed)
    done("lanczos_top_k", 0)
    n0 = op.n_products
    tr, tr_se = hutchinson(op, config.hutchinson_samples, seed=config.seed + 1)
    done("hutchinson", n0)
    n0 = op.n_products
    bulk = slq(op, config.slq_vectors, config.slq_steps, seed=config.seed + 2,
               deflate=top.vectors)
    done("slq", n0)
    grads = per_example_grads(flat, workload.loss, x, y, warn=progress)
    n0 = op.n_products
    noise = noise_stats(grads, op, top.vectors, config.hessian_examples, config.bootstrap,
                        seed=config.seed + 3)
    done("noise", n0)
    two = None
    if config.two_batch is not None:
        two = two_batch_b_simple(flat, workload.loss, x, y, *config.two_batch,
                                 draws=config.two_batch_draws, seed=config.seed + 4)
    d = (flat.flatten(init) - flat.flatten(reference)).cpu().numpy()
    d_here = (flat.flatten(params) - flat.flatten(reference)).cpu().numpy()
    return Measurement(
        label=label, step=step, metric=metric, train_loss=op.loss_value(),
        n_examples=int(x.shape[0]), dim=flat.dim, config=config,
        eigenvalues=top.values, eigenvectors=top.vectors, c_top=noise.c,
        s0_top=(top.vectors.T @ d) ** 2, displacement_sq=float(d @ d), noise=noise,
        trace=tr, trace_se=tr_se, bulk=bulk, products=products, two_batch=two,
        s0_here_top=(top.vectors.T @ d_here) ** 2, displacement_here_sq=float(d_here @ d_here))
