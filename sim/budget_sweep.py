"""hfstream across a range of byte budgets, photo by photo: what issue 31's budget rules
ask (the budget used on every photo, no picture worse when its budget grows) and the
classic codecs at the same bytes.

python -m sim.budget_sweep PHOTOS [--budgets 0.05 0.1 0.2 0.3] [--count 16] [--model DIR]
    [--classic avif,webp] [--out DIR]

Each photo (spread over the folder, centre-cropped to at most 768x512) is planned at each
budget on a clean channel as ``hfstream.eval.budget.at_budget`` does (no refinement,
joined strings; bytes on the wire with headers and tags) and decoded by the receiver.
Writes ``OUT/budget_rows.csv`` (one row per photo and budget) and prints, per budget, the
mean PSNR, the mean and lowest budget use, how many photos were coded at ``FINE``, the
classic codecs' mean PSNR at hfstream's bytes (no headers: in their favour) and how many
photos got worse than at the budget below.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

from tqdm import tqdm

from hfstream.codec.hybrid import HybridCodec
from hfstream.eval.budget import at_budget
from hfstream.eval.classic import fit_budget
from hfstream.eval.metrics import psnr
from hfstream.geometry import FINE
from hfstream.media.images import list_images, spread


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m sim.budget_sweep",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("photos", type=Path, help="folder of photos")
    p.add_argument("--budgets", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.3])
    p.add_argument("--count", type=int, default=16, help="photos spread over the folder")
    p.add_argument("--model", type=Path, help="model folder (default: the shipped one)")
    p.add_argument("--classic", default="", help="classic codecs at hfstream's bytes (avif,webp)")
    p.add_argument("--out", type=Path, default=Path("out/budget_sweep"))
    args = p.parse_args(argv)
    if any(not 0 < b <= 8 for b in args.budgets):
        p.error("--budgets must lie in (0, 8] bpp")
    try:
        photos = spread(list_images(args.photos), args.count)
    except FileNotFoundError as e:
        p.error(str(e))
    codec = HybridCodec.from_pretrained(args.model)
    classic = [c for c in args.classic.split(",") if c]
    budgets = sorted(args.budgets)
    rows: list[dict] = []
    with tqdm(total=len(photos) * len(budgets), desc="budgets") as bar:
        for i, image in enumerate(photos):
            for bpp in budgets:
                planned, sent, shown = at_budget(codec, image, bpp)
                pixels = image.shape[0] * image.shape[1]
                row = {
                    "photo": i,
                    "budget_bpp": bpp,
                    "bytes": sent,
                    "use": sent / (bpp * pixels / 8),
                    "scale": "FINE"
                    if planned.encoded.scale == FINE
                    else str(planned.encoded.scale),
                    "psnr": psnr(image, shown),
                }
                for name in classic:
                    fitted = fit_budget(image, name, sent)
                    row[name] = psnr(image, fitted.image) if fitted else float("nan")
                rows.append(row)
                bar.update(1)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "budget_rows.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(summary(rows, budgets, classic))
    return 0


def summary(rows: list[dict], budgets: list[float], classic: list[str]) -> str:
    """The per-budget table that ``main`` prints."""
    head = "budget  mean use  lowest use  FINE   PSNR  " + "  ".join(f"{c:>6}" for c in classic)
    lines = [head + "  worse than the budget below"]
    by = {(r["photo"], r["budget_bpp"]): r for r in rows}
    photos = sorted({r["photo"] for r in rows})
    for k, bpp in enumerate(budgets):
        these = [by[i, bpp] for i in photos]
        worse = (
            0 if k == 0 else sum(by[i, bpp]["psnr"] < by[i, budgets[k - 1]]["psnr"] for i in photos)
        )
        cells = "  ".join(f"{statistics.fmean(r[c] for r in these):6.2f}" for c in classic)
        lines.append(
            f"{bpp:6g}  {statistics.fmean(r['use'] for r in these):8.3f}"
            f"  {min(r['use'] for r in these):10.3f}"
            f"  {sum(r['scale'] == 'FINE' for r in these):2d}/{len(these):<2d}"
            f"  {statistics.fmean(r['psnr'] for r in these):5.2f}  {cells}  {worse}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
