"""Where real training and measurement run: `cpu`, `cuda`, or `auto` (CUDA when available).

Everything is device-correct by construction: batches are drawn with a CPU generator (the same
draws on every device) and moved to the device, data and models are built there
(`empirical.workloads.get(..., device=)`), checkpoints are saved from and loaded to the CPU
and moved.  Results can differ between devices in the last bits (other kernels and summation
orders), so a device other than the CPU is part of the resume keys.  On CUDA, float32 matrix
products and convolutions run in full float32 (TF32 off), as on the CPU: curvature products
and per-example gradients lose three decimal digits in TF32.
"""

from __future__ import annotations

CHOICES = ("cpu", "cuda", "auto")


def resolve_device(name: str) -> str:
    """`cpu` or `cuda` for the requested `name` (ValueError naming the problem)."""
    import torch

    if name not in CHOICES:
        raise ValueError(f"--device must be one of {', '.join(CHOICES)}, got '{name}'")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA is not available (--device cuda); use --device cpu or auto")
    full_float32(name)
    return name


def full_float32(device) -> None:
    """On CUDA, turn TF32 off for matrix products and convolutions (torch enables it for
    cuDNN convolutions by default), so that a GPU computes in float32 as the CPU does.  Called
    wherever a workload or a device is set up (`resolve_device`, `empirical.workloads.get`)."""
    import torch

    if str(device).startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
