"""`nqm demo`: the whole loop on a small built-in workload, theory against experiment.

1. sweep: steps to the target per batch size, lr (and momentum) tuned per batch size
   (Shallue et al. protocol, `empirical.sweep`), for each optimizer;
2. measure: the curvature and gradient-noise spectra where the workload's reference run meets
   the sweep's target (`empirical.measure_run`), as an NQM spectrum (`empirical.adapter`);
3. calibrate: the NQM's two scalars (target fraction f, noise scale kappa) fitted on the first
   optimizer's smallest and largest batch size, every other batch size and the other optimizers
   predicted, beside the null hyperbola through the same two points (`nqm.calibrate`).

The default is linreg (online linear regression, the case the NQM models nearly exactly) with
SGD and heavy-ball momentum, B = 1 ... 1024, 16 trials per batch size, target 0.005: a minute
or two on two cores (86 s measured on a busy machine).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs (defaults: the module docstring)."""

    workload: str = "linreg"
    target: float = 0.005
    optimizers: tuple[str, ...] = ("sgd", "momentum")
    batch_sizes: tuple[int, ...] = (1, 4, 16, 64, 256, 1024)
    trials: int = 16
    budget: int | None = None
    seed: int = 0
    threads: int | None = None

    def __post_init__(self):
        if not self.optimizers:
            raise ValueError("optimizers: give at least one")
        if len(self.batch_sizes) < 3:
            raise ValueError("batch_sizes: give three or more (two to fit, one to judge)")
        if self.trials < 2:
            raise ValueError(f"trials must be >= 2, got {self.trials}")

    @property
    def units(self) -> int:
        """Progress units: every batch size of every sweep, two checkpoints, the calibration."""
        return len(self.optimizers) * len(self.batch_sizes) + 2 + 1


def demo(config: DemoConfig, out_dir, progress: Callable[[int], None] | None = None,
         stage: Callable[[str], None] | None = None) -> dict:
    """Run the three stages into `out_dir` (resumable: the sweeps and the measurement resume)
    and return {"sweeps": {optimizer: summary}, "measure": record, "calibration": record}.
    `progress(n)` counts `config.units`; `stage(message)` hears what starts."""
    from empirical.executor import LocalExecutor
    from empirical.measure import MeasureConfig
    from empirical.measure_run import MeasureRunConfig, run_measure
    from empirical.protocol import SweepConfig
    from empirical.sweep import sweep

    progress = progress or (lambda n: None)
    stage = stage or (lambda msg: None)
    out = Path(out_dir)
    summaries = {}
    for opt in config.optimizers:
        stage(f"sweep: {config.workload}, {opt}, B = {', '.join(map(str, config.batch_sizes))}, "
              f"{config.trials} trials each, target {config.target:g}")
        cfg = SweepConfig(workload=config.workload, optimizer=opt,
                          batch_sizes=tuple(config.batch_sizes), n_trials=config.trials,
                          seed=config.seed, budget=config.budget, target=config.target)
        summaries[opt] = sweep(cfg, out / f"sweep-{opt}", LocalExecutor(1),
                               progress=lambda n: progress(n), threads=config.threads)
    stage(f"measure: spectra at the initialisation and where the reference run reaches "
          f"{config.target:g}")
    measured = run_measure(MeasureRunConfig(workload=config.workload, at_steps=(0,),
                                            at_target=True, target=config.target,
                                            measure=MeasureConfig(seed=config.seed),
                                            seed=config.seed, threads=config.threads),
                           out / "measure", progress=lambda n: progress(n))
    stage("calibrate: f and kappa on the first optimizer's ends; the rest predicted")
    record = _calibrate(config, out)
    progress(1)
    return {"sweeps": summaries, "measure": measured, "calibration": record}


def _calibrate(config: DemoConfig, out: Path) -> dict:
    """nqm.calibrate on the demo's own files (the spectrum read through the adapter)."""
    from empirical.adapter import load_spectrum
    from nqm.calibrate import calibrate
    from nqm.sweep_data import load_sweep

    first, *others = config.optimizers
    return calibrate(load_spectrum(out / "measure" / "spectrum.npz"),
                     load_sweep(out / f"sweep-{first}"),
                     transfer=tuple(load_sweep(out / f"sweep-{o}") for o in others))


def summary_lines(result: dict) -> list[str]:
    """The closing summary: measured vs predicted vs null B_crit, worst errors of each."""
    rec = result["calibration"]
    crit, err = rec["critical_batch_size"], rec["error"]

    def g(x):
        return "-" if x is None else f"{x:.3g}"

    lines = [f"{rec['workload']}, {rec['optimizer']}: B_crit (mccandlish) measured "
             f"{g(crit['measured']['mccandlish'])}, NQM {g(crit['predicted']['mccandlish'])}, "
             f"null {g((crit['null_model'] or {}).get('mccandlish'))}; worst held-out error "
             f"NQM {g(err['nqm_worst'])}x, null {g(err['null_worst'])}x"]
    for t in rec["transfer"]:
        c = t["critical_batch_size"]
        lines.append(f"{rec['workload']}, {t['optimizer']} (no refit): B_crit measured "
                     f"{g(c['measured']['mccandlish'])}, NQM {g(c['predicted']['mccandlish'])};"
                     f" worst error NQM {g(t['error']['nqm_worst'])}x")
    return lines
