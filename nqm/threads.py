"""How many threads the tuner uses: the cores this process may run on that other work leaves free.

The kernels are serial; parallelism is coarse (independent batch sizes and grid points run in a
thread pool, the kernels releasing the GIL), so a thread never waits at a barrier for a peer
that the operating system has descheduled — the failure mode of fine-grained parallel loops on
a busy machine.  It only pays when one kernel call is long against the Python work around it.
The tuner's local searches and exact descents make one kernel call per evaluated point, so
threads pay from a few hundred rows (momentum, 21 batch sizes, 2 cores with one other busy
process: 84 rows 0.66-0.96 s with one thread against 0.75-0.86 s with two; 226 rows 1.24-1.53 s
against 1.05-1.12 s; 563 rows 3.3-3.9 s against 2.1-2.2 s; 1,000 rows 1.7-2.0 s against
1.0-1.1 s): below `MIN_ROWS_PER_THREAD` rows a single thread is used.  Since the local search
makes one compiled call per point, a two-coordinate search pays from fewer rows (84 rows, 21
batch sizes, idle machine: momentum 0.42 s with one thread against 0.30-0.32 s with two,
Nesterov 0.34 s against 0.25-0.32 s; SGD's one-dimensional search 0.022 s against 0.030 s), so
`nqm.tuning` counts such a search's rows `SEARCH_WORK` (3) times.

    threads = requested                            if given (--threads, NQM_THREADS)
            = 1                                    if rows < MIN_ROWS_PER_THREAD
            = max(1, min(cores, cores - busy))     otherwise

with `cores` the CPUs in this process's affinity mask and `busy` the other processes running
or waiting to run (Linux: the smallest of five readings of /proc/loadavg's runnable count,
2 ms apart, less this process, so that a process that runs only now and then does not halve
the pool; elsewhere the one-minute load average, rounded).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Iterator

from nqm.errors import NQMInputError

MIN_ROWS_PER_THREAD = 200
ENV = "NQM_THREADS"
BUSY_SAMPLES = 5        # readings of the runnable count ...
BUSY_INTERVAL = 0.002   # ... this many seconds apart (`busy_elsewhere`)


def available_cores() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def runnable() -> int:
    """Processes running or waiting to run now, this one included (Linux /proc/loadavg)."""
    with open("/proc/loadavg") as fh:
        return int(fh.read().split()[3].split("/")[0])


def busy_elsewhere() -> float:
    """Processes other than this one running or waiting to run: the fewest of BUSY_SAMPLES
    readings BUSY_INTERVAL seconds apart.  A process that runs only part of the time (a shell,
    a monitor) leaves a core free most of the time and is not counted; one that keeps a core
    busy is in every reading.  Stops at a reading of this process alone."""
    try:
        fewest = runnable()
        for _ in range(BUSY_SAMPLES - 1):
            if fewest <= 1:               # nothing else runnable: no reading can be lower
                break
            time.sleep(BUSY_INTERVAL)
            fewest = min(fewest, runnable())
        return max(fewest - 1, 0)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def free_cores() -> int:
    """Available cores minus the processes busy elsewhere, at least 1."""
    cores = available_cores()
    return max(1, min(cores, math.floor(cores - busy_elsewhere() + 0.5)))


def check_threads(threads: int | None) -> int | None:
    """The requested thread count (None: choose automatically); NQMInputError unless a
    positive integer."""
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
