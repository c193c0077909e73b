"""The one executor seam: run one function over tasks, locally or on a Dask cluster.

`LocalExecutor(workers)` runs tasks in this process when workers == 1 and in a process pool
otherwise, each worker limited to `threads` torch / BLAS threads so that workers x threads
does not exceed the cores (no over-subscription).  Results are yielded as tasks finish.
`DaskExecutor` needs the optional extra `dask` (`pip install nqm-batchsize[dask]`); without it
its construction raises a one-line ValueError saying so.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed

DASK_MISSING = "the dask executor needs `pip install nqm-batchsize[dask]`"


def _limit_threads(threads: int) -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch
    torch.set_num_threads(threads)


def use_free_cores(threads: int | None = None) -> int:
    """Limit this process's torch / BLAS threads to `threads`, by default to the cores free now
    (`nqm.threads.free_cores`): torch's parallel regions wait at barriers for every thread, and
    on a busy machine a thread more than the free cores makes them wait for a descheduled one
    (measured: the population tests 198 s with 2 threads against 34 s with 1, beside two busy
    loops on 2 cores)."""
    from nqm.threads import check_threads, free_cores

    n = check_threads(threads) or free_cores()
    _limit_threads(n)
    return n


class LocalExecutor:
    """Runs tasks in this process (workers = 1) or a process pool, each worker limited to
    `threads` torch threads (default: the free cores shared among the workers)."""

    def __init__(self, workers: int = 1, threads: int | None = None):
        from nqm.threads import free_cores

        self.workers = max(1, workers)
        self.threads = threads or max(1, free_cores() // self.workers)

    def map(self, fn: Callable, tasks: Iterable) -> Iterator:
        """Yield (task, fn(task)) for every task, in the order they finish."""
        tasks = list(tasks)
        if self.workers == 1:
            for t in tasks:
                yield t, fn(t)
            return
        with ProcessPoolExecutor(self.workers, initializer=_limit_threads,
                                 initargs=(self.threads,)) as pool:
            futures = {pool.submit(fn, t): t for t in tasks}
            for fut in as_completed(futures):
                yield futures[fut], fut.result()


class DaskExecutor:
    """Runs tasks on an existing Dask distributed cluster (`scheduler` = its address, e.g.
    tcp://host:8786).  Each task limits its torch threads to `threads` (default 1) so that a
    worker's threads are not over-subscribed.  Records are appended by the tasks themselves
    under a file lock, so the output directory must be on storage the workers share."""

    def __init__(self, scheduler: str, threads: int = 1):
        from importlib.util import find_spec

        if find_spec("distributed") is None:
            raise ValueError(DASK_MISSING)
        self.scheduler = scheduler
        self.threads = threads

    def map(self, fn: Callable, tasks: Iterable) -> Iterator:
        """Yield (task, fn(task)) for every task as the cluster finishes it."""
        from distributed import Client
        from distributed import as_completed as dask_completed

        tasks = list(tasks)
        with Client(self.scheduler, timeout="20s") as client:
            futures = {client.submit(_with_threads, fn, t, self.threads, pure=False): t
                       for t in tasks}
            for fut in dask_completed(list(futures)):
                yield futures[fut], fut.result()


def _with_threads(fn: Callable, task, threads: int):
    _limit_threads(threads)
    return fn(task)
