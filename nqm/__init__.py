"""Noisy quadratic model: exact expected dynamics, tuned steps-to-target, critical batch size."""

__version__ = "0.1.0"
