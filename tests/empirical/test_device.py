"""Device selection: a CUDA workload computes in full float32 (TF32 off), a CPU one leaves
torch's settings alone."""

import torch

from empirical.device import full_float32
from empirical.workloads import get


def test_cuda_turns_tf32_off_and_cpu_leaves_it(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", True)
    get("linreg", device="cpu")
    assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    full_float32("cuda:0")
    assert not torch.backends.cudnn.allow_tf32
    assert not torch.backends.cuda.matmul.allow_tf32


def test_every_cuda_set_up_turns_tf32_off(monkeypatch):
    """The sweep and measure pipelines reach CUDA through `resolve_device` or
    `empirical.workloads.get`; both call `full_float32` with the device."""
    from empirical import device

    seen = []
    monkeypatch.setattr(device, "full_float32", seen.append)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device.resolve_device("auto") == "cuda"
    get("linreg", device="cpu")
    assert seen == ["cuda", "cpu"]
