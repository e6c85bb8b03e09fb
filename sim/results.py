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


def markdown_table(summary: list[dict], metric: str, fmt: str = "{:.2f}") -> str:
    """One row per (method, loss model), one column per loss rate: ``metric``'s means."""
    rates = sorted({s["loss_rate"] for s in summary})
    rows: dict[tuple[str, str], dict[float, float]] = {}
    for s in summary:
        rows.setdefault((s["method"], s["loss_model"]), {})[s["loss_rate"]] = s[metric]
    # 0 % loss is run once (under the first loss model) and holds for every model.
    zero = {m: r[0.0] for (m, _), r in rows.items() if 0.0 in r}
    lines = [
        f"| method | loss model | {' | '.join(f'{100 * r:.0f} %' for r in rates)} |",
        "|---|---|" + "---:|" * len(rates),
    ]
    for (method, model), vals in sorted(rows.items()):
        if set(vals) == {0.0} and len(rates) > 1:
            continue  # a 0 %-only row: shown in the other models' rows
        cells = []
        for r in rates:
            v = vals.get(r, zero.get(method) if r == 0.0 else None)
            cells.append("" if v is None else fmt.format(v))
        lines.append(f"| {method} | {model} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def write_markdown(summary: list[dict], sections: list[tuple[str, str, str]], path: Path) -> None:
    """``summary.md``: one table per (metric, title, number format)."""
    parts = [f"### {title}\n\n" + markdown_table(summary, m, fmt) for m, title, fmt in sections]
    path.write_text("\n".join(parts))
