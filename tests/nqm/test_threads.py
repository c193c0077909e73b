"""Thread choice and coarse parallel tuning: the answer never depends on the thread count."""

import numpy as np
import pytest

from nqm import threads
from nqm.errors import NQMInputError
from nqm.spectrum import Spectrum
from nqm.tuning import tune


def test_requested_threads_win_over_the_environment(monkeypatch):
    monkeypatch.setenv(threads.ENV, "3")
    assert threads.choose_threads(2, rows=10) == 2
    assert threads.choose_threads(None, rows=10) == 3


def test_small_spectra_use_one_thread_and_large_ones_the_free_cores(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads, "available_cores", lambda: 8)
    monkeypatch.setattr(threads, "busy_elsewhere", lambda: 5)
    assert threads.choose_threads(None, rows=threads.MIN_ROWS_PER_THREAD - 1) == 1
    assert threads.choose_threads(None, rows=threads.MIN_ROWS_PER_THREAD) == 3   # 8 - 5
    monkeypatch.setattr(threads, "busy_elsewhere", lambda: 20)
    assert threads.choose_threads(None, rows=10**7) == 1                         # never 0


def test_busy_elsewhere_counts_a_busy_loop():
    import subprocess
    import sys
    import time

    before = threads.busy_elsewhere()
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        samples = [threads.busy_elsewhere() for _ in range(20)]
    finally:
        hog.kill()
    assert max(samples) >= 1 and max(samples) >= before


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_bad_thread_counts_are_refused(bad, monkeypatch):
    with pytest.raises(NQMInputError, match="threads must be a positive integer"):
        threads.choose_threads(bad, rows=10)
    monkeypatch.setenv(threads.ENV, "many")
    with pytest.raises(NQMInputError, match="NQM_THREADS"):
        threads.choose_threads(None, rows=10)


def test_thread_map_keeps_order():
    assert list(threads.thread_map(lambda x: x * x, range(7), 3)) == [x * x for x in range(7)]


@pytest.mark.parametrize("kind", ["sgd", "momentum"])
def test_tuning_is_identical_with_one_or_two_threads(kind):
    h = 1.0 / np.arange(1, 201)
    spec = Spectrum(h=h, c=h.copy(), s0=np.ones_like(h), count=np.ones_like(h))
    one = tune(spec, kind, [1, 16, 256, 4096], 0.05, threads=1)
    two = tune(spec, kind, [1, 16, 256, 4096], 0.05, threads=2)
    assert one == two


def test_busy_elsewhere_ignores_a_process_missing_from_one_reading(monkeypatch):
    readings = iter([3, 3, 1, 3, 3])
    monkeypatch.setattr(threads, "runnable", lambda: next(readings))
    assert threads.busy_elsewhere() == 0
    monkeypatch.setattr(threads, "runnable", lambda: 3)
    assert threads.busy_elsewhere() == 2          # busy in every reading: counted
