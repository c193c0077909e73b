"""A figure saved twice is the same file, byte for byte (no creation date in the PDF)."""

import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from figures.save import save_figure  # noqa: E402


def test_saving_twice_gives_the_same_bytes(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [3, 1, 2])
    for suffix in (".pdf", ".png"):
        save_figure(fig, tmp_path / f"a{suffix}")
        time.sleep(1.1)            # a wall-clock date would differ by now
        save_figure(fig, tmp_path / f"b{suffix}")
        assert (tmp_path / f"a{suffix}").read_bytes() == (tmp_path / f"b{suffix}").read_bytes()
    plt.close(fig)
