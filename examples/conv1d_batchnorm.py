"""The network of conv1d_signal.py with BatchNorm after each convolution, on the same data,
target and budget: a workload whose model has buffers (BatchNorm running statistics).

`nqm sweep` trains it trial by trial (BatchNorm cannot be vmapped over trials) in train mode;
`nqm measure` measures the network as it is evaluated: eval mode, with the running statistics
of each checkpoint of the reference run fixed.  The data are generated in data() from the same
fixed seed as conv1d_signal.py (the code is repeated so that this file alone identifies the
workload: its sha256 is the resume key).

    nqm measure --workload examples/conv1d_batchnorm.py --at-step 0 --at-target
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
    """Training and validation signals from a fixed seed (those of conv1d_signal.py)."""
    gen = torch.Generator().manual_seed(1234)
    x_train, y_train = _signals(N_TRAIN, gen)
    x_val, y_val = _signals(N_VAL, gen)
    return {"X_train": x_train, "y_train": y_train, "X_val": x_val, "y_val": y_val}


def model():
    """Two convolutions, each followed by BatchNorm, global average pooling and a linear
    classifier."""
    return nn.Sequential(
        nn.Conv1d(1, 8, 7, padding=3), nn.BatchNorm1d(8), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(8, 16, 5, padding=2), nn.BatchNorm1d(16), nn.ReLU(),
        nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(16, len(FREQUENCIES)))
