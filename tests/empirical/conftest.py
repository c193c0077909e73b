"""Torch uses the cores free when the tests start (a busy CI machine must not make its parallel
regions wait for descheduled threads)."""

from empirical.executor import use_free_cores

use_free_cores()
