"""The `nqm` command's option types and error handling: every bad input is one line on
stderr naming the option or value, exit status 2, no traceback."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click


class InputError(click.ClickException):
    """Bad input: printed as one line, exit status 2."""

    exit_code = 2


class _Group(click.Group):
    """A click group whose errors are one line (no usage block, no traceback), exit status 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        sys.exit(rv if isinstance(rv, int) else 0)


def _first_line(text: str) -> str:
    """The first non-blank line of `text`, stripped ('' if none)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _input_errors(fn):
    """Turn the packages' NQMInputError (a ValueError) and file errors into InputError, whose
    message is one line: a multi-line message is cut to its first line."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as exc:   # NQMInputError subclasses ValueError
            raise InputError(_first_line(str(exc)) or type(exc).__name__) from None
        except OSError as exc:
            what = _first_line(exc.strerror or str(exc)) or type(exc).__name__
            raise InputError(f"{what}: {exc.filename}" if exc.filename else what) from None

    return wrapper


class BatchSizes(click.ParamType):
    """'1,2,4' or 'LO:HI' (every power of two from LO to HI), as a sorted tuple."""

    name = "SIZES"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        text = value.strip()
        try:
            if ":" in text:
                lo, hi = (int(x) for x in text.split(":"))
                if lo < 1 or hi < lo:
                    self.fail(f"batch-size range '{text}' needs 1 <= LO <= HI", param, ctx)
                sizes = [2**i for i in range(0, 63) if lo <= 2**i <= hi]
            else:
                sizes = [int(x) for x in text.split(",") if x.strip()]
        except ValueError:
            self.fail(f"bad --batch-sizes '{text}': give comma-separated integers or LO:HI",
                      param, ctx)
        if not sizes:
            self.fail(f"--batch-sizes '{text}' contains no batch size", param, ctx)
        if any(b < 1 for b in sizes):
            self.fail(f"batch sizes must be >= 1, got {text}", param, ctx)
        return tuple(sorted(set(sizes)))


class IntList(click.ParamType):
    """Comma-separated integers >= 0 (e.g. training steps), as a tuple; `count` fixes how many."""

    name = "INTS"

    def __init__(self, what: str, count: int | None = None):
        self.what, self.count = what, count

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            ints = tuple(int(x) for x in value.split(",") if x.strip())
        except ValueError:
            self.fail(f"bad {param.opts[0]} '{value}': give {self.what}", param, ctx)
        if self.count is not None and len(ints) != self.count:
            self.fail(f"bad {param.opts[0]}: give {self.what}", param, ctx)
        if any(k < 0 for k in ints):
            self.fail(f"{param.opts[0]} values must be >= 0, got {value}", param, ctx)
        return ints


class FloatList(click.ParamType):
    """Comma-separated numbers as a tuple, in the order given (the pipeline checks them)."""

    name = "NUMBERS"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            values = tuple(float(x) for x in value.split(",") if x.strip())
        except ValueError:
            self.fail(f"bad {param.opts[0]} '{value}': give comma-separated numbers", param, ctx)
        if not values:
            self.fail(f"{param.opts[0]} '{value}' contains no number", param, ctx)
        return values


def check_outputs(**paths) -> None:
    """Refuse, before any work, an output file whose directory does not exist; `paths` maps
    an option name (json_path -> --json) to its value or None."""
    for name, value in paths.items():
        if value is not None and not Path(value).resolve().parent.is_dir():
            flag = "--" + name.removesuffix("_path").replace("_", "-")
            raise InputError(f"{flag}: directory {Path(value).parent} does not exist")


def _compile_notice(optimizer: str = "sgd", ema: bool = False) -> None:
    """One line on stderr when the NQM kernels this optimizer uses are about to be compiled
    (first run only)."""
    from nqm._kernels import cache_is_warm

    if not cache_is_warm(1 + (optimizer in ("momentum", "nesterov")) + bool(ema)):
        click.echo("compiling the NQM kernels (once; cached afterwards) ...", err=True)


def _echo(lines) -> None:
    for line in lines:
        click.echo(line)


def _stderr(msg: str) -> None:
    click.echo(msg, err=True)


def _bar(length: int, label: str, quiet: bool):
    return click.progressbar(length=length, label=label, file=sys.stderr, hidden=quiet)


class _LateBar:
    """A progress bar shown from the pipeline's first `update` on (`update(0)`: the work
    starts), so that errors found before the work are the only line on stderr."""

    def __init__(self, length: int, label: str, quiet: bool):
        self.args, self.bar = (length, label, quiet), None

    def update(self, n: int) -> None:
        if self.bar is None:
            self.bar = _bar(*self.args).__enter__()
        self.bar.update(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)


THREADS_HELP = ("Threads for tuning (default: the free cores, one for small spectra; "
                "or $NQM_THREADS).")
SPECTRUM_HELP = ("power:d=..,alpha=..[,noise_scale=..,noise_exponent=..,s0=..,bins=..] "
                 "or a .npz/.json file with arrays h, c, s0[, count].")
OPTIMIZERS = click.Choice(["sgd", "momentum", "nesterov"])
TORCH_OPTIMIZERS = click.Choice(["sgd", "momentum", "nesterov", "adam"])
CUSTOM_MODELS = click.Choice(["linear", "logreg", "mlp"])
FILE = click.Path(dir_okay=False)
DIR = click.Path(file_okay=False)
opt = click.option
DEFAULT_SPECTRUM = "power:d=10000,alpha=1"


def options(*decorators):
    """Several click options as one decorator (in the order given)."""
    def apply(fn):
        for d in reversed(decorators):
            fn = d(fn)
        return fn
    return apply


SPECTRUM = opt("--spectrum", "spec", default=DEFAULT_SPECTRUM, show_default=True,
               help=SPECTRUM_HELP)
OPTIMIZER = opt("--optimizer", type=OPTIMIZERS, default="sgd", show_default=True)
SCHEDULE = options(
    opt("--schedule", default="constant", show_default=True,
        help="constant | linear | cosine | piecewise:FRAC=FACTOR,..."),
    opt("--warmup", type=float, default=0.0, show_default=True,
        help="Linear warm-up as a fraction of the horizon."),
    opt("--final", "final_frac", type=float, default=0.0, show_default=True,
        help="Final learning-rate fraction for linear/cosine decay."))
JSON = opt("--json", "json_path", type=FILE, help="Write JSON here.")
PLOT = opt("--plot", "plot_path", type=FILE, help="Write a PNG here.")
QUIET = opt("--quiet", is_flag=True, help="No progress bar.")
NQM_THREADS = opt("--threads", type=click.IntRange(min=1), default=None, help=THREADS_HELP)
TORCH_THREADS = opt("--threads", type=click.IntRange(min=1), default=None,
                    help="Torch threads of this process (default: the free cores).")
DEVICE = opt("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="auto",
             show_default=True, help="Where to train and measure (auto: CUDA when available).")
WORKLOAD = options(
    opt("--workload", required=True,
        help="See `nqm workloads`; or your own: a .py file or dotted module defining model() "
             "and data() (importing it runs it)."),
    opt("--target", type=float, default=None, help="Override the workload's target."),
    opt("--data", type=FILE, default=None,
        help="custom workload: .npz with X_train, y_train, X_val, y_val."),
    opt("--model", type=CUSTOM_MODELS, default=None, help="custom workload: the model."),
    opt("--seed", type=int, default=0, show_default=True))
