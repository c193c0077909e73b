"""How many threads the tuner uses: the cores this process may run on that other work leaves free.

The kernels are serial; parallelism is coarse (independent batch sizes and grid points run in a
thread pool, the kernels releasing the GIL), so a thread never waits at a barrier for a peer
that the operating system has descheduled — the failure mode of fine-grained parallel loops on
a busy machine.  It only pays when one kernel call is long against the Python work around it,
i.e. on large spectra: below `MIN_ROWS_PER_THREAD` rows a single thread is used.

    threads = requested                                      if given (--threads, NQM_THREADS)
            = 1                                              if rows < MIN_ROWS_PER_THREAD
            = max(1, min(cores, floor(cores - load + 0.5)))  otherwise

with `cores` the CPUs in this process's affinity mask and `load` the one-minute load average
(processes running or waiting to run, system-wide).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator

from nqm.errors import NQMInputError

MIN_ROWS_PER_THREAD = 50_000
ENV = "NQM_THREADS"


def available_cores() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def free_cores() -> int:
    """Available cores minus the one-minute load average, at least 1."""
    cores = available_cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    return max(1, min(cores, math.floor(cores - load + 0.5)))


def check_threads(threads: int | None) -> int | None:
    if threads is None:
        return None
    if int(threads) != threads or threads < 1:
        raise NQMInputError(f"threads must be a positive integer, got {threads}")
    return int(threads)


def choose_threads(requested: int | None, rows: int) -> int:
    """The thread count of the module docstring (`requested` wins, then $NQM_THREADS)."""
    if requested is None and os.environ.get(ENV):
        try:
            requested = int(os.environ[ENV])
        except ValueError:
            raise NQMInputError(f"${ENV} must be a positive integer, "
                                f"got {os.environ[ENV]!r}") from None
    requested = check_threads(requested)
    if requested is not None:
        return requested
    if rows < MIN_ROWS_PER_THREAD:
        return 1
    return free_cores()


def thread_map(fn: Callable, items: Iterable, threads: int) -> Iterator:
    """fn over items, in order; in a pool of `threads` threads when threads > 1."""
    items = list(items)
    if threads <= 1 or len(items) <= 1:
        yield from map(fn, items)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(threads, len(items))) as pool:
        yield from pool.map(fn, items)
