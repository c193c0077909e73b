"""The `nqm measure` pipeline: the curvature and gradient-noise spectra of a workload's network
at checkpoints, written as the NQM spectrum that `nqm predict --spectrum` reads.

At each checkpoint theta: the top eigenpairs and bulk density of the Hessian (or Gauss-Newton
matrix), the per-example noise covariance Sigma, B_simple = tr(Sigma)/|G|^2 and
B_noise = tr(H Sigma)/(G'HG) (McCandlish et al. 2018, arXiv 1812.06162, eq. 2.8-2.9); see
`empirical.measure`: the network is evaluated in eval mode with its buffers (BatchNorm running
statistics) fixed at the checkpoint's, which the reference run saves with the parameters
(DIR/checkpoints/NAME.pt).  Resumable: DIR/points/NAME.json holds a finished checkpoint's
summary under a key of every option that changes it and the exact parameters and buffers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from empirical.files import make_out_dir, write_csv, write_json, write_json_atomic
from empirical.measure import MeasureConfig
from empirical.sweep import check_target, custom_model_note

CSV_KEYS = ["label", "step", "metric", "train_loss", "b_simple", "b_noise", "trace_hessian",
            "trace_sigma", "grad_norm_sq", "trace_h_sigma", "g_h_g"]
CSV_EXTRA = ["b_simple_lo", "b_simple_hi", "b_noise_lo", "b_noise_hi", "top_eigenvalue"]


@dataclass(frozen=True)
class MeasureRunConfig:
    """Options of `run_measure`: the workload, where to measure (a checkpoint file or steps of
    the reference run and/or its target), the measurement itself and the reference run."""

    workload: str
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    checkpoint: str | None = None        # measure at these parameters, or else train to:
    at_steps: tuple[int, ...] = ()       # these steps (0: the initialisation)
    at_target: bool = False              # and where the reference run reaches the target
    bins: int = 60                       # bulk density bins of the spectrum file
    optimizer: str | None = None         # reference run (None: the workload's)
    lr: float | None = None
    train_batch_size: int | None = None
    budget: int | None = None
    target: float | None = None          # override the workload's target
    data: str | None = None              # custom workload: .npz file
    model: str | None = None             # custom workload: linear | logreg | mlp
    seed: int = 0
    threads: int | None = None           # torch threads (None: the free cores)
    device: str = "cpu"                  # where the reference run and the measurement run

    def __post_init__(self):
        check_target(self.target)
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"--lr must be a finite number > 0, got {self.lr}")
        if any(k < 0 for k in self.at_steps):
            raise ValueError(f"--at-step values must be >= 0, got {self.at_steps}")
        from empirical.protocol import DEVICES

        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got '{self.device}'")
        if self.checkpoint and (self.at_steps or self.at_target):
            raise ValueError("give either --checkpoint or --at-step/--at-target, not both")

    @property
    def plan(self) -> tuple[list[int], bool]:
        """(steps, at_target) to train to; without a checkpoint or steps: init and target."""
        if not self.checkpoint and not self.at_steps and not self.at_target:
            return [0], True
        return list(self.at_steps), self.at_target

    @property
    def n_points(self) -> int:
        """How many checkpoints will be measured."""
        steps, at_target = self.plan
        return 1 if self.checkpoint else len(set(steps)) + at_target

    def resolved_workload(self):
        """The workload, its target overridden by `target`."""
        from empirical.workloads import get

        w = get(self.workload, data=self.data, model=self.model, target=self.target,
                device=self.device)
        return w if self.target is None else dataclasses.replace(w, target=float(self.target))

    def options(self, w) -> dict:
        """Every option that changes a measurement, as measure_config.json holds them."""
        from empirical.protocol import source_options
        from empirical.records import file_sha256

        ref, custom = w.reference, self.workload == "custom"
        options = {("curvature" if k == "kind" else k): v
                   for k, v in self.measure.__dict__.items()}
        options.update({
            "workload": self.workload, "bins": self.bins, "target": float(w.target),
            "data_sha256": file_sha256(self.data) if custom else None,
            "model": (self.model or "logreg") if custom else None,
            "optimizer": self.optimizer or ref["optimizer"],
            "lr": float(self.lr if self.lr is not None else ref["lr"]),
            "train_batch_size": int(self.train_batch_size or ref["batch_size"]),
            "budget": int(self.budget or w.budget),
            **source_options(self.workload, self.device)})
        return json.loads(json.dumps(options, sort_keys=True))


def measure_key(options: dict, params: dict, reference: dict) -> str:
    """Identifies one finished measurement: every option that changes it and the exact
    tensors (the measured parameters and buffers, the reference parameters)."""
    h = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    for p in (params, reference):
        for k in sorted(p):
            h.update(k.encode())
            h.update(p[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def read_point(path: Path) -> dict | None:
    """A finished measurement's DIR/points/*.json, or None when absent or unreadable."""
    try:
        point = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return point if isinstance(point, dict) and "summary" in point else None


def run_measure(config: MeasureRunConfig, out_dir,
                progress: Callable[[int], None] | None = None,
                note: Callable[[str], None] | None = None,
                warn: Callable[[str], None] | None = None) -> dict:
    """Measure at every checkpoint into `out_dir` and return measure.json's record.
    `progress(0)` as the measurements start,
    `progress(1)` after each checkpoint; `note` hears the steps of a measurement; `warn`
    hears about the custom model and an unusable spectrum (s0 = 0)."""
    from empirical.executor import use_free_cores
    from empirical.measure import check_measurable
    from empirical.records import claim_directory, directory_lock

    use_free_cores(config.threads)
    warn = warn or (lambda msg: None)
    w = config.resolved_workload()
    check_measurable(w.make_model(config.seed))
    out = make_out_dir(out_dir)
    with directory_lock(out):
        options = config.options(w)
        claim_directory(out, options, "measurement", "measure_config.json")
        (out / "checkpoints").mkdir(exist_ok=True)
        init = {k: v.detach() for k, v in w.make_model(config.seed).named_parameters()}
        points = _checkpoints(config, w, out)
        msg = custom_model_note(config.workload, config.model)
        if msg:
            warn(msg)
        along, spectra = [], []
        if progress is not None:
            progress(0)                                   # the measurements start
        for c in points:
            summary, sp = _measure_point(config, w, out, options, c, init, points[-1], note)
            along.append(summary)
            spectra.append(sp)
            if progress is not None:
                progress(1)
        spectra[-1].save(out / "spectrum.npz")
        if spectra[-1].initial_loss() == 0:
            warn("warning: s0 = 0 everywhere (the reference solution is the measured point "
                 "itself); measure a later step or --at-target for a usable spectrum")
        record = _record(config, w, along)
        _write(out, record)
    return record


def _checkpoints(config: MeasureRunConfig, w, out: Path) -> list:
    """The given checkpoint, or the reference run's checkpoints (saved under DIR/checkpoints)."""
    from empirical import checkpoints as ckpt

    if config.checkpoint:
        params, buffers = ckpt.load(config.checkpoint, w.make_model(config.seed))
        return [ckpt.Checkpoint(Path(config.checkpoint).stem, 0, params,
                                ckpt.metric(w, params, buffers=buffers), buffers)]
    steps, at_target = config.plan
    points = ckpt.train_checkpoints(w, steps, at_target, seed=config.seed,
                                    optimizer=config.optimizer, lr=config.lr,
                                    batch_size=config.train_batch_size, budget=config.budget)
    for c in points:
        ckpt.save(c.state, out / "checkpoints" / f"{c.label.replace(' ', '_')}.pt")
    return points


def _measure_point(config, w, out: Path, options: dict, c, init: dict, ref, note):
    """(summary, spectrum) at checkpoint `c`: read back when measured before with the same key,
    else measured and saved (DIR/spectrum_NAME.npz, DIR/points/NAME.json)."""
    from empirical.adapter import load_spectrum, to_spectrum
    from empirical.catalog import CATALOG
    from empirical.measure import measure as measure_at
    from empirical.measure import training_loss

    key = measure_key(options, c.state, ref.params)
    name = c.label.replace(" ", "_")
    done, sp_path = out / "points" / f"{name}.json", out / f"spectrum_{name}.npz"
    prior = read_point(done)
    if prior is not None and prior.get("key") == key and sp_path.exists() and \
            "displacement_here_sq" in prior["summary"]:
        return prior["summary"], load_spectrum(sp_path)          # resumed: measured before
    m = measure_at(w, c.params, init, ref.params, config.measure, c.label, c.step, c.metric,
                   progress=None if note is None else (lambda msg: note(f"  {msg}")),
                   buffers=c.buffers)
    meta = {"workload": config.workload, "seed": config.seed, "reference_checkpoint": ref.label}
    info = CATALOG.get(config.workload)
    sp = to_spectrum(m, bins=config.bins, meta=meta,
                     loss_init=training_loss(w, init, config.measure),
                     loss_floor=info.loss_floor if info else 0.0)
    sp.save(sp_path)
    summary = {**m.summary(),
               "nqm_noise_scales": {k: v if math.isfinite(v) else None for k, v in
                                    zip(("b_noise", "b_simple"), sp.noise_scales())},
               "spectrum_rows": sp.n_rows,
               "dropped_directions": sp.meta["dropped_directions"],
               "bulk_noise_exponent": sp.meta["bulk_noise_exponent"]}
    done.parent.mkdir(exist_ok=True)
    write_json_atomic(done, {"key": key, "summary": summary})
    return summary, sp


def _record(config: MeasureRunConfig, w, along: list[dict]) -> dict:
    """measure.json: the last checkpoint's summary, the run's settings, every checkpoint (no
    wall-clock times, so that a rerun writes the same file)."""
    from empirical.versions import versions

    ref_run = {**w.reference, **{k: v for k, v in (("optimizer", config.optimizer),
                                                   ("lr", config.lr),
                                                   ("batch_size", config.train_batch_size))
                                 if v is not None}}
    return {**along[-1], "workload": config.workload, "metric_name": w.metric_name,
            "target": w.target, "seed": config.seed, "config": config.measure.__dict__,
            "reference_run": None if config.checkpoint else ref_run,
            "checkpoint_file": config.checkpoint, "versions": versions(),
            "along_training": along}


def _write(out: Path, record: dict) -> None:
    along = record["along_training"]
    write_json(out / "measure.json", record)
    write_csv(out / "measure.csv", CSV_KEYS + CSV_EXTRA,
              ([a[k] for k in CSV_KEYS] + (a["b_simple_ci"] or [None, None])
               + (a["b_noise_ci"] or [None, None]) + [a["top_eigenvalues"][0]] for a in along))
