"""The goals of docs/validation.md over one validation run's 15 sweeps.

    python -m figures.validation_goals figures/validation/summary.json [more summary.json ...]
                                       [--workloads a,b]   (only these workloads' sweeps)
                                       [--fill-from OTHER/summary.json] [--bias]
                                       [--transfer]

From a `figures.run_validation` summary.json: how many sweeps the calibrated NQM (ends fit)
is closer than the null hyperbola; the median worst held-out error of both; the largest NQM
error; the sweeps whose fitted kappa sits on its bound; how many one-run B_crit lie within 2x of
the measured; the median worst error of the SGD fit transferred to momentum and Adam; the
median zero-run worst error.  One Markdown row per file.  With --fill-from, each file's sweeps
are completed by OTHER's sweeps of the (workload, optimizer) pairs it lacks: the judgement of
every sweep against its best measurement, e.g. the mean of four seeds where four were swept
and the one reference sweep elsewhere.  With --bias, one more line per file: the geometric
mean of predicted / measured over every held-out point of the ends fits (from the W-OPT.json
records beside the summaries), NQM and null, exp(mean log(pred / meas)): above 1, the models
predict too many steps between the fit points.  With --transfer, instead of the goals: one
table of every transfer's worst error (the SGD fit predicting momentum and Adam, no refit), a
column per file, and their medians.
"""

from __future__ import annotations

import json
import math
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


def filled(rows: list[dict], other: list[dict]) -> list[dict]:
    """`rows` plus the rows of `other` whose (workload, optimizer) `rows` lacks."""
    have = {(r["workload"], r["optimizer"]) for r in rows}
    return rows + [r for r in other if (r["workload"], r["optimizer"]) not in have]


def held_out_bias(folders: list[Path], rows: list[dict]) -> dict:
    """exp(mean log(pred / meas)) over the held-out points of the ends records of the sweeps in
    `rows`, for the NQM and the null model; each sweep's record (W-OPT.json from
    `figures.run_validation`) is read from the first of `folders` that has it.  Only points
    with a measured, an NQM and a null value count; the others are counted in "skipped", the
    sweeps without a record in "no_record"."""
    logs = {"nqm": [], "null": []}
    skipped = no_record = 0
    for r in rows:
        name = f"{r['workload']}-{r['optimizer']}.json"
        path = next((f / name for f in folders if (f / name).exists()), None)
        if path is None:
            no_record += 1
            continue
        for p in json.loads(path.read_text())["ends"]["points"]:
            if p["used_in_fit"]:
                continue
            if not (p["measured"] and p["predicted"] and p["null_model"]):
                skipped += 1
                continue
            logs["nqm"].append(math.log(p["predicted"] / p["measured"]))
            logs["null"].append(math.log(p["null_model"] / p["measured"]))
    return {k: math.exp(sum(v) / len(v)) if v else None for k, v in logs.items()} | \
        {"points": len(logs["nqm"]), "skipped": skipped, "no_record": no_record}


def bias_line(b: dict) -> str:
    """One line of `held_out_bias`."""
    def f(x):
        return "-" if x is None else f"{x:.3f}"
    extra = [f"{b['skipped']} points skipped (no NQM or null value)"] * bool(b["skipped"]) + \
        [f"{b['no_record']} sweeps without a record"] * bool(b["no_record"])
    return (f"  held-out pred/meas, geometric mean over {b['points']} points: NQM {f(b['nqm'])}, "
            f"null {f(b['null'])}" + (f" ({'; '.join(extra)})" if extra else ""))


def transfer_table(names: list[str], summaries: list[list[dict]]) -> str:
    """Markdown: per (workload, optimizer transferred to) the worst error in each summary."""
    cells: dict[tuple[str, str], dict[int, float | None]] = {}
    for i, rows in enumerate(summaries):
        for r in rows:
            for opt, worst in r["transfer"].items():
                cells.setdefault((r["workload"], opt), {})[i] = worst
    lines = ["| workload | SGD's fit transferred to | " + " | ".join(names) + " |",
             "|---|---|" + "---:|" * len(names)]
    for (w, opt), got in sorted(cells.items()):
        values = ["-" if got.get(i) is None else f"{got[i]:.2f}" for i in range(len(names))]
        lines.append(f"| {w} | {opt} | " + " | ".join(values) + " |")
    medians = [[v[i] for v in cells.values() if v.get(i) is not None] for i in range(len(names))]
    lines.append("| median | | " + " | ".join(f"{median(m):.2f}" if m else "-" for m in medians)
                 + " |")
    return "\n".join(lines)


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
    ap.add_argument("--fill-from", default=None, metavar="SUMMARY")
    ap.add_argument("--bias", action="store_true")
    ap.add_argument("--transfer", action="store_true")
    args = ap.parse_args(argv)
    keep = set(args.workloads.split(",")) if args.workloads else None
    other = json.loads(Path(args.fill_from).read_text()) if args.fill_from else []
    runs = []     # (name, rows, folders of their records) per summary
    for p in args.summaries:
        rows = [r for r in filled(json.loads(Path(p).read_text()), other)
                if keep is None or r["workload"] in keep]
        folders = [Path(p).parent] + ([Path(args.fill_from).parent] if other else [])
        runs.append((" + ".join(map(str, folders)), rows, folders))
    if args.transfer:
        print(transfer_table([name for name, _, _ in runs], [rows for _, rows, _ in runs]))
        return
    print(HEADER)
    for name, rows, folders in runs:
        print(row(name, goals(rows)))
        if args.bias:
            print(bias_line(held_out_bias(folders, rows)))

if __name__ == "__main__":
    main(sys.argv[1:])
