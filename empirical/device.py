"""Where real training and measurement run: `cpu`, `cuda`, or `auto` (CUDA when available).

Everything is device-correct by construction: batches are drawn with a CPU generator (the same
draws on every device) and moved to the device, data and models are built there
(`empirical.workloads.get(..., device=)`), checkpoints are saved from and loaded to the CPU
and moved.  Results can differ between devices in the last bits (other kernels and summation
orders), so a device other than the CPU is part of the resume keys.
"""

from __future__ import annotations

CHOICES = ("cpu", "cuda", "auto")


def resolve_device(name: str) -> str:
    """`cpu` or `cuda` for the requested `name` (ValueError naming the problem)."""
    import torch

    if name not in CHOICES:
        raise ValueError(f"--device must be one of {', '.join(CHOICES)}, got '{name}'")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA is not available (--device cuda); use --device cpu or auto")
    return name
