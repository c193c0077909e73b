"""The `nqm figures` pipeline: five optimizers tuned on one spectrum, each at every batch size.

SGD, heavy-ball momentum, Nesterov, SGD preconditioned by H^-0.5 and SGD with an iterate EMA,
as in Zhang et al. 2019 (arXiv 1907.04164, figures 4-6); each is `nqm.predict.predict`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nqm.checks import check_batch_sizes, check_target
from nqm.predict import PredictConfig, predict
from nqm.spectrum import Spectrum
from nqm.threads import check_threads

OPTIMIZER_SET = {
    "sgd": {"optimizer": "sgd"},
    "momentum": {"optimizer": "momentum"},
    "nesterov": {"optimizer": "nesterov"},
    "sgd+precond(p=0.5)": {"optimizer": "sgd", "precond": 0.5},
    "sgd+ema": {"optimizer": "sgd", "ema": True},
}


@dataclass(frozen=True)
class CompareConfig:
    """Options of `compare_optimizers`: the target loss, batch sizes and tuning threads."""

    target: float = 0.01
    batch_sizes: tuple[int, ...] = tuple(2**i for i in range(21))
    threads: int | None = None   # None: `nqm.threads.choose_threads`

    def __post_init__(self):
        check_target(self.target)
        check_batch_sizes(self.batch_sizes)
        check_threads(self.threads)

    def configs(self) -> dict[str, PredictConfig]:
        """One `PredictConfig` per optimizer of OPTIMIZER_SET."""
        return {name: PredictConfig(target=self.target, batch_sizes=self.batch_sizes,
                                    threads=self.threads, **kw)
                for name, kw in OPTIMIZER_SET.items()}


def slug(name: str) -> str:
    """A file name for an optimizer's name: 'sgd+precond(p=0.5)' -> 'sgd_precond_p0.5'."""
    return name.replace("+", "_").replace("(", "_").replace(")", "").replace("=", "")


def compare_optimizers(spectrum: Spectrum, config: CompareConfig,
                       progress: Callable[[int], None] | None = None) -> dict[str, dict]:
    """The `predict` record of every optimizer in OPTIMIZER_SET, by name (`progress(1)` after
    each batch size of each optimizer)."""
    return {name: predict(spectrum, cfg, progress=progress)
            for name, cfg in config.configs().items()}
