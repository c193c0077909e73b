"""The fixed-budget figures and table (`figures.budgets`, `figures.budget_report`) from small
hand-made summaries."""

import json

from empirical.budgets import large_batch_verdict


def _summary(mode, epochs, steps_budget, metrics):
    points = [{"batch_size": b, "steps": steps_budget or -(-10 * 100 // b), "epochs": None,
               "best_metric": m, "interval": [m, m + 0.01], "best_step": 3, "lr": 0.1}
              for b, m in metrics]
    return {"workload": "w", "optimizer": "sgd", "mode": mode, "metric": "validation error",
            "epoch_budget": epochs, "step_budget": steps_budget, "n_trials": 4,
            "best_metric": points, "largest_batch_size": large_batch_verdict(points)}


def test_budget_report_draws_each_run_and_prints_the_table(tmp_path, capsys):
    from figures import budget_report

    root, sweeps = tmp_path / "shallue", tmp_path / "sweeps"
    runs = {"w-sgd-epochs10": _summary("epochs", 10, None, [(4, 0.02), (64, 0.2)]),
            "w-sgd-quality": _summary("quality", None, 300, [(4, 0.02), (64, 0.021)])}
    for name, s in runs.items():
        (root / name).mkdir(parents=True)
        (root / name / "summary.json").write_text(json.dumps(s))
    (sweeps / "w-sgd").mkdir(parents=True)
    (sweeps / "w-sgd" / "summary.json").write_text(json.dumps(
        {"target": 0.05, "points": [{"batch_size": 4, "steps": 100},
                                    {"batch_size": 64, "steps": None}]}))
    budget_report.main(root, sweeps)
    out = capsys.readouterr().out
    assert (root / "w-sgd.png").stat().st_size > 10_000
    assert "| w | sgd | 10 epochs | 64 | 16 | 0.2 [0.2, 0.21] | 0.1 |" in out
    assert "| w | sgd | 300 steps | 4 | 300 |" in out
    assert "w-sgd, 10 epochs: largest batch size worse" in out
    assert "w-sgd, 300 steps: largest batch size not clearly worse" in out


def test_best_metric_figure_of_one_sweep(tmp_path):
    from figures.budgets import best_metric_vs_batch

    best_metric_vs_batch(_summary("quality", None, 300, [(4, 0.02), (64, 0.03)]),
                         tmp_path / "b.png")
    assert (tmp_path / "b.png").stat().st_size > 10_000
