"""The Python API of real training: the same pipelines `nqm sweep` and `nqm measure` call,
taking plain arguments and returning the plain records the commands write (summary.json,
measure.json).  The NQM side needs no wrapper: `nqm.predict.predict(spectrum, PredictConfig)`
and `nqm.calibrate.calibrate(spectrum, load_sweep(dir), CalibrateConfig)` return the records
of `nqm predict --json` and `nqm calibrate --json`.

`workload` is a built-in name (`nqm workloads`) or the user's own: a .py file or dotted module
defining model() and data() (`empirical.user_workload`; importing it runs it).  Bad input
raises ValueError with a one-line message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


def sweep(workload: str, out_dir, optimizer: str = "momentum",
          batch_sizes: Sequence[int] = (8, 16, 32, 64, 128, 256, 512), trials: int = 16,
          seed: int = 0, budget: int | None = None, target: float | None = None,
          targets: Sequence[float] | None = None, epoch_budget: float | None = None,
          quality: bool = False, decay: str = "constant", complete_trials: bool = False,
          data: str | None = None, model: str | None = None, device: str = "auto",
          workers: int = 1, threads: int | None = None,
          warn: Callable[[str], None] | None = None) -> dict:
    """Steps to result per batch size (Shallue et al. 2018), resumable in `out_dir`, as
    `nqm sweep` with the same options; returns summary.json's record (`points`,
    `critical_batch_size`, `confidence_95`, `by_target` with `targets`, or `best_metric` with
    `epoch_budget` / `quality`).  It writes records.jsonl, summary.json, summary.csv (and,
    for steps to result, trials.csv), not the plots."""
    from empirical.executor import LocalExecutor
    from empirical.sweep import sweep as run_sweep
    from empirical.sweep import sweep_config

    cfg = sweep_config(workload=workload, optimizer=optimizer,
                       batch_sizes=tuple(sorted(set(int(b) for b in batch_sizes))),
                       n_trials=trials, seed=seed, budget=budget, target=target, decay=decay,
                       data=data, model=model, complete_trials=complete_trials, device=device,
                       targets=None if targets is None else tuple(targets),
                       epoch_budget=epoch_budget, quality=quality)
    return run_sweep(cfg, out_dir, LocalExecutor(workers), None, warn, threads)


def measure(workload: str, out_dir, at_steps: Sequence[int] = (), at_target: bool = False,
            checkpoint: str | None = None, top_k: int = 20, curvature: str = "hessian",
            examples: int | None = None, hessian_examples: int = 128, slq_vectors: int = 4,
            slq_steps: int = 40, bootstrap: int = 100, bins: int = 60,
            two_batch: tuple[int, int] | None = None, optimizer: str | None = None,
            lr: float | None = None, train_batch_size: int | None = None,
            budget: int | None = None, target: float | None = None, data: str | None = None,
            model: str | None = None, seed: int = 0, device: str = "auto",
            threads: int | None = None, warn: Callable[[str], None] | None = None) -> dict:
    """Curvature and gradient-noise spectra at checkpoints of the workload's reference run
    (or at `checkpoint`), as `nqm measure` with the same options (without steps or target:
    the initialisation and the target); returns measure.json's record.  It writes
    OUT/spectrum.npz (what `nqm.spectrum.load` and `calibrate` read), measure.json and
    measure.csv, not the plots."""
    from empirical.device import resolve_device
    from empirical.measure import MeasureConfig
    from empirical.measure_run import MeasureRunConfig, run_measure

    mcfg = MeasureConfig(top_k=top_k, kind=curvature, examples=examples,
                         hessian_examples=hessian_examples, slq_vectors=slq_vectors,
                         slq_steps=slq_steps, bootstrap=bootstrap, two_batch=two_batch,
                         seed=seed)
    config = MeasureRunConfig(workload, mcfg, checkpoint, tuple(at_steps), at_target, bins,
                              optimizer, lr, train_batch_size, budget, target, data, model,
                              seed, threads, resolve_device(device))
    return run_measure(config, out_dir, None, None, warn)
