"""Draw the package import graph (docs/layers.png) from the code itself.

    python docs/import_graph.py --out docs/layers.png

Each box is a layer of tests/test_layers.py (a package, or a module at the bottom), one
row per rank, lowest at the bottom; each arrow is "imports", thicker for more imported
names. The same parse drives the test that fails on an import that
points up, so the picture and the rule cannot disagree."""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_layers import RANKS, imports, layer, modules  # noqa: E402


def edges() -> dict[tuple[str, str], int]:
    known = modules()
    count: collections.Counter[tuple[str, str]] = collections.Counter()
    for module, path in known.items():
        for target, _ in imports(path):
            if target not in known and target.rsplit(".", 1)[0] not in known:
                continue
            a, b = layer(module), layer(target)
            if a != b:
                count[a, b] += 1
    return dict(count)


def draw(out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: dict[float, list[str]] = collections.defaultdict(list)
    for name, rank in RANKS.items():
        rows[rank].append(name)
    levels = sorted(rows)
    where = {}
    for y, rank in enumerate(levels):
        names = sorted(rows[rank])
        for i, name in enumerate(names):
            where[name] = ((i + 1) / (len(names) + 1), y)
    fig, ax = plt.subplots(figsize=(11, 1.25 * len(levels) + 1))
    for (a, b), n in sorted(edges().items()):
        (xa, ya), (xb, yb) = where[a], where[b]
        ax.annotate(
            "",
            xy=(xb, yb + 0.18),
            xytext=(xa, ya - 0.18),
            arrowprops={"arrowstyle": "->", "color": "0.55", "lw": 0.6 + 0.15 * min(n, 12)},
        )
    for name, (x, y) in where.items():
        label = name.removeprefix("hfstream.") if name != "hfstream" else "hfstream (API)"
        ax.text(
            x,
            y,
            label,
            ha="center",
            va="center",
            fontsize=10,
            bbox={"boxstyle": "round,pad=0.35", "fc": "#e8f0fb", "ec": "#3a6ea5"},
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.6, len(levels) - 0.4)
    ax.axis("off")
    ax.set_title("hfstream: package imports (arrows point down only; tests/test_layers.py)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "layers.png")
    args = p.parse_args(argv)
    for (a, b), n in sorted(edges().items(), key=lambda e: (-RANKS[e[0][0]], e[0])):
        print(f"{a} -> {b}: {n}")
    draw(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
