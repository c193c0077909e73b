"""Print a Markdown table of the reference measurements under figures/measure/ (measure.json)."""

import json
from pathlib import Path


def _ci(value, ci, spec=".3g"):
    if value is None:
        return "-"
    lo, hi = ci or (None, None)
    hi_s = "inf" if hi is None else format(hi, spec)
    return f"{value:{spec}} [{lo:{spec}}, {hi_s}]"


def main():
    """Print the reference measurements' table (markdown) from figures/measure/*/measure.json."""
    print("| workload | params | examples | checkpoint | step | metric | train loss | "
          "B_simple [95%] | B_noise [95%] | tr(H) | top eigenvalues |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for f in sorted(Path(__file__).parent.glob("measure/*/measure.json")):
        m = json.loads(f.read_text())
        for p in m["along_training"]:
            top = ", ".join(f"{v:.3g}" for v in p["top_eigenvalues"][:5])
            print(f"| {m['workload']} | {p['n_params']} | {p['n_examples']} | {p['label']} | "
                  f"{p['step']} | {p['metric']:.4g} | {p['train_loss']:.3g} | "
                  f"{_ci(p['b_simple'], p['b_simple_ci'])} | {_ci(p['b_noise'], p['b_noise_ci'])} "
                  f"| {p['trace_hessian']:.3g} | {top}, ... |")


if __name__ == "__main__":
    main()
