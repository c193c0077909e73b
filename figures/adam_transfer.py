"""Adam's sweeps predicted from the SGD fit, with no refit, by its two NQM stand-ins.

    python -m figures.adam_transfer [--reference figures/validation]
                                    [--mean-field figures/validation/adam-mean-field]
                                    [--out figures/validation/adam-mean-field/adam_transfer]

Reads the `ends` records W-sgd.json of two `figures.run_validation` runs (the reference, whose
Adam stand-in is SGD preconditioned by H^-0.25, and `--adam mean-field`) and draws, per
workload, the measured steps of the SGD and Adam sweeps and both stand-ins' transferred Adam
predictions against the batch size; prints each stand-in's worst error per workload and writes
OUT.png, OUT.pdf and OUT.json (the errors).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def transfer_points(record_path: Path, optimizer: str = "adam") -> list[dict]:
    """The transferred `optimizer` points of an SGD record's ends fit."""
    ends = json.loads(record_path.read_text())["ends"]
    for t in ends["transfer"]:
        if t["optimizer"] == optimizer:
            return t["points"]
    raise SystemExit(f"{record_path}: no transfer to {optimizer}")


def worst(points: list[dict]) -> float | None:
    """The largest max(pred/meas, meas/pred) over the points with both."""
    errs = [p["error_nqm"] for p in points if p["error_nqm"] is not None]
    return max(errs) if errs else None


def workloads(reference: Path, mean_field: Path) -> list[str]:
    """The workloads with an SGD record in both runs."""
    return sorted(p.name[:-len("-sgd.json")] for p in mean_field.glob("*-sgd.json")
                  if (reference / p.name).exists())


def figure(names: list[str], reference: Path, mean_field: Path, out: Path) -> dict:
    """Draw the panels of the module docstring; return {workload: {stand-in: worst error}}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from figures.save import save_figure

    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.8), squeeze=False)
    errors = {}
    for ax, w in zip(axes[0], names):
        ref = transfer_points(reference / f"{w}-sgd.json")
        mf = transfer_points(mean_field / f"{w}-sgd.json")
        sgd = json.loads((reference / f"{w}-sgd.json").read_text())["ends"]["points"]
        b = [p["batch_size"] for p in ref]
        ax.plot([p["batch_size"] for p in sgd], [p["measured"] for p in sgd], "s",
                color="0.6", label="SGD, measured (fit on its ends)")
        ax.plot(b, [p["measured"] for p in ref], "o", color="k", label="Adam, measured")
        ax.plot(b, [p["predicted"] for p in ref], "--", color="tab:orange",
                label="Adam predicted: SGD with H^-0.25")
        ax.plot(b, [p["predicted"] for p in mf], "-", color="tab:blue",
                label="Adam predicted: mean-field Adam")
        errors[w] = {"precond_0.25": worst(ref), "mean_field": worst(mf)}
        ax.set(xscale="log", yscale="log", xlabel="batch size B", title=f"{w}\nworst "
               f"{errors[w]['precond_0.25']:.2f}x (H^-0.25), {errors[w]['mean_field']:.2f}x "
               "(mean field)")
        ax.title.set_fontsize(8)
    axes[0][0].set_ylabel("steps to the target")
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=8)
    fig.suptitle("Adam transferred from the SGD fit, no refit", fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".png", ".pdf"):
        save_figure(fig, out.with_suffix(suffix))
    plt.close(fig)
    out.with_suffix(".json").write_text(json.dumps(errors, indent=1, sort_keys=True) + "\n")
    return errors


def main(argv=None) -> None:
    """Command line of the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", default=str(ROOT / "validation"))
    ap.add_argument("--mean-field", default=str(ROOT / "validation" / "adam-mean-field"))
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    reference, mean_field = Path(args.reference), Path(args.mean_field)
    names = workloads(reference, mean_field)
    if not names:
        ap.error(f"no W-sgd.json records in both {reference} and {mean_field}")
    out = Path(args.out) if args.out else mean_field / "adam_transfer"
    for w, e in figure(names, reference, mean_field, out).items():
        print(f"{w:>14}: H^-0.25 {e['precond_0.25']:.2f}x, mean-field Adam {e['mean_field']:.2f}x")


if __name__ == "__main__":
    main()
