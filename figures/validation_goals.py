"""The goals of docs/validation.md over one validation run's 15 sweeps.

    python -m figures.validation_goals figures/validation/summary.json [more summary.json ...]
                                       [--workloads a,b]   (only these workloads' sweeps)

From a `figures.run_validation` summary.json: how many sweeps the calibrated NQM (ends fit)
is closer than the null hyperbola; the median worst held-out error of both; the largest NQM
error; the sweeps whose fitted kappa sits on its bound; how many one-run B_crit lie within 2x of
the measured; the median worst error of the SGD fit transferred to momentum and Adam; the
median zero-run worst error.  One Markdown row per file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from statistics import median

HEADER = ("| run | NQM closer | median worst NQM (null) | largest NQM | kappa on bound | "
          "one-run B_crit within 2x | transfer median worst | zero-run median worst |\n"
          "|---|---:|---|---|---|---:|---:|---:|")


def goals(summary: list[dict]) -> dict:
    """The aggregate numbers of the module docstring from summary rows."""
    largest = max(summary, key=lambda r: r["nqm_worst"])
    transfer = [v for r in summary for v in r["transfer"].values() if v is not None]
    zero = [r["zero_run_worst"] for r in summary if r["zero_run_worst"] is not None]
    one = [r["bcrit_ratio_one_run"] for r in summary]
    return {"sweeps": len(summary),
            "closer": sum(r["closer"] == "nqm" for r in summary),
            "median_worst": median(r["nqm_worst"] for r in summary),
            "median_null": median(r["null_worst"] for r in summary),
            "largest": (largest["nqm_worst"], f"{largest['workload']} {largest['optimizer']}"),
            "at_bound": [f"{r['workload']} {r['optimizer']}" for r in summary if r["at_bound"]],
            "one_run_within_2x": sum(x is not None and x <= 2.0 for x in one),
            "transfer_median": median(transfer) if transfer else None,
            "zero_run_median": median(zero) if zero else None}


def row(name: str, g: dict) -> str:
    """One Markdown row of `goals`."""
    def f(x):
        return "-" if x is None else f"{x:.2f}"
    return (f"| {name} | {g['closer']} of {g['sweeps']} | {f(g['median_worst'])} "
            f"({f(g['median_null'])}) | {g['largest'][0]:.2f} ({g['largest'][1]}) | "
            f"{', '.join(g['at_bound']) or 'none'} | {g['one_run_within_2x']} of {g['sweeps']} | "
            f"{f(g['transfer_median'])} | {f(g['zero_run_median'])} |")


def main(argv: list[str]) -> None:
    """Print the table for every summary.json given (with --workloads, over those only)."""
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("summaries", nargs="+")
    ap.add_argument("--workloads", default=None)
    args = ap.parse_args(argv)
    keep = set(args.workloads.split(",")) if args.workloads else None
    print(HEADER)
    for p in args.summaries:
        rows = [r for r in json.loads(Path(p).read_text())
                if keep is None or r["workload"] in keep]
        print(row(str(Path(p).parent), goals(rows)))


if __name__ == "__main__":
    main(sys.argv[1:])
