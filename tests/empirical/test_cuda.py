"""Training and measuring on a CUDA device give the CPU's results to float32 rounding: the same
batches (a CPU generator on every device), the same trials, the same spectra.  Skipped where no
CUDA device is present."""

import numpy as np
import pytest
import torch

from empirical import api
from empirical.population import StopRule, train_population
from empirical.train_config import TrainConfig
from empirical.workloads import get
from tests.helpers import BLOBS

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _trained(name, device, optimizer, lrs, momentum, steps=20):
    """Every trial's parameters after `steps` steps of the population trainer on `device`."""
    w = get(name, device=device)
    captured = {}

    def evaluate(model, params):
        captured.update({k: v.detach().cpu().clone() for k, v in params.items()})
        return torch.ones(len(lrs), device=device)

    w = type(w)(**{**w.__dict__, "evaluate": evaluate, "budget": steps})
    train_population(w, TrainConfig(optimizer, lrs, momentum), batch_size=16, seed=3,
                     stop=StopRule(eval_ratio=1e9, stop_when_done=False))
    return captured


@pytest.mark.parametrize("name,optimizer,lrs,momentum", [
    ("linreg", "sgd", [0.05, 0.5], None),
    ("mlp-digits", "momentum", [0.05, 0.3], 0.9),
    ("cnn-digits", "nesterov", [0.02, 0.1], 0.8),
    ("charlm", "momentum", [0.1, 0.5], 0.9),
])
def test_population_on_cuda_equals_cpu(name, optimizer, lrs, momentum):
    cpu = _trained(name, "cpu", optimizer, lrs, momentum)
    gpu = _trained(name, "cuda", optimizer, lrs, momentum)
    assert cpu.keys() == gpu.keys()
    for k in cpu:
        np.testing.assert_allclose(gpu[k].numpy(), cpu[k].numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=k)


def test_sweep_on_cuda_equals_cpu(tmp_path):
    runs = {d: api.sweep("logreg-digits", tmp_path / d, optimizer="momentum",
                         batch_sizes=(16, 128), trials=4, budget=400, device=d, threads=1)
            for d in ("cpu", "cuda")}
    for p, q in zip(runs["cpu"]["points"], runs["cuda"]["points"]):
        assert (p["batch_size"], p["reached"], p["lr"], p["momentum"]) == \
            (q["batch_size"], q["reached"], q["lr"], q["momentum"])
        # the first evaluated crossing: the same evaluation or a neighbouring one
        assert abs(p["steps"] - q["steps"]) <= max(1, 0.05 * p["steps"])


def test_measure_on_cuda_equals_cpu(tmp_path):
    """At initialisation and step 20 of the reference run (the reference point), so that the
    displacement between them is measured too."""
    rec = {d: api.measure("mlp-digits", tmp_path / d, at_steps=(0, 20), top_k=5,
                          slq_vectors=2, slq_steps=10, hessian_examples=32, bootstrap=10,
                          examples=256, device=d, threads=1)
           for d in ("cpu", "cuda")}
    cpu, gpu = rec["cpu"], rec["cuda"]
    np.testing.assert_allclose(gpu["top_eigenvalues"], cpu["top_eigenvalues"], rtol=1e-3)
    for key in ("train_loss", "trace_sigma", "grad_norm_sq", "displacement_sq"):
        np.testing.assert_allclose(gpu[key], cpu[key], rtol=1e-3, err_msg=key)
    at_init = [r["along_training"][0] for r in (cpu, gpu)]
    assert at_init[0]["displacement_here_sq"] > 0 and cpu["displacement_sq"] > 0
    np.testing.assert_allclose(at_init[1]["displacement_here_sq"],
                               at_init[0]["displacement_here_sq"], rtol=1e-3)


def test_user_workload_sweep_on_cuda(tmp_path):
    workload = tmp_path / "blobs.py"
    workload.write_text(BLOBS)
    summary = api.sweep(str(workload), tmp_path / "out", optimizer="sgd", batch_sizes=(4, 32),
                        trials=4, device="cuda")
    assert [p["batch_size"] for p in summary["points"]] == [4, 32]
    assert all(p["reached"] for p in summary["points"])
