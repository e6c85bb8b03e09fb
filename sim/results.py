"""What both sweeps share: the resumable JSONL of results and the quality-vs-loss plots."""

from __future__ import annotations

import json
from pathlib import Path


def read_results(path: Path) -> dict[str, dict]:
    """Rows already in a results file, by case key: a sweep resumes with the rest."""
    done: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                done[row["key"]] = row
    return done


def plot_vs_loss(
    summary: list[dict],
    metrics: tuple[str, ...],
    methods: tuple[str, ...],
    path: Path,
    dashed: tuple[str, ...] = (),
) -> None:
    """One row of panels per loss model, one panel per metric, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({s["loss_model"] for s in summary})
    fig, axes = plt.subplots(
        len(models), len(metrics), figsize=(5 * len(metrics), 4.3 * len(models)), squeeze=False
    )
    for row_axes, model in zip(axes, models, strict=True):
        for ax, metric in zip(row_axes, metrics, strict=True):
            for method in methods:
                pts = sorted(
                    (s["loss_rate"], s[metric])
                    for s in summary
                    if s["method"] == method and s["loss_model"] == model
                )
                if pts:
                    style = ".--" if method in dashed else "o-"
                    ax.plot([100 * p[0] for p in pts], [p[1] for p in pts], style, label=method)
            ax.set_xlabel(f"{model} loss (%)")
            ax.set_title(metric)
            ax.grid(alpha=0.3)
        row_axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
