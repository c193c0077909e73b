"""A small 1-D convolutional network on generated signals, written only against the
workload contract of `nqm sweep --workload FILE.py` / `nqm measure --workload FILE.py`.

Each example is a window of 64 samples of a sinusoid with a random phase and amplitude in
white noise; the class is its frequency (4, 5, 6 or 7 cycles per window).  The data are
generated in data() from a fixed seed: nothing is downloaded.

    nqm sweep --workload examples/conv1d_signal.py --optimizer momentum --batch-sizes 4,16,64,256
    nqm measure --workload examples/conv1d_signal.py --at-target
"""

import math

import torch
from torch import nn

TARGET = 0.10          # validation error to beat
BUDGET = 3000          # steps
LR_RANGE = (1e-3, 3.0)

LENGTH = 64
FREQUENCIES = (4, 5, 6, 7)
NOISE = 1.0
N_TRAIN, N_VAL = 2048, 512


def _signals(n: int, gen: torch.Generator):
    """n noisy sinusoids (n, 1, LENGTH) and their class (index into FREQUENCIES)."""
    y = torch.randint(0, len(FREQUENCIES), (n,), generator=gen)
    freq = torch.tensor(FREQUENCIES, dtype=torch.float32)[y]
    phase = 2 * math.pi * torch.rand(n, generator=gen)
    amp = 0.5 + torch.rand(n, generator=gen)
    t = torch.arange(LENGTH, dtype=torch.float32) / LENGTH
    x = amp[:, None] * torch.sin(2 * math.pi * freq[:, None] * t + phase[:, None])
    x = x + NOISE * torch.randn(n, LENGTH, generator=gen)
    return x[:, None, :], y


def data():
    """Training and validation signals from a fixed seed."""
    gen = torch.Generator().manual_seed(1234)
    x_train, y_train = _signals(N_TRAIN, gen)
    x_val, y_val = _signals(N_VAL, gen)
    return {"X_train": x_train, "y_train": y_train, "X_val": x_val, "y_val": y_val}


def model():
    """Two convolutions, global average pooling and a linear classifier."""
    return nn.Sequential(
        nn.Conv1d(1, 8, 7, padding=3), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(8, 16, 5, padding=2), nn.ReLU(),
        nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(16, len(FREQUENCIES)))
