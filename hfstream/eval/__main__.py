"""``python -m hfstream.eval DIR``: benchmark the codec on a folder of images.

Writes ``OUT/per_image.csv``, ``OUT/summary.csv`` (means over images) and ``OUT/rd.png``
(PSNR and HaarPSI against bpp), and prints the summary table.
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hfstream.arguments import OneLineParser, fail
from hfstream.codec.frames import to_uint8_image
from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.refinement import DEFAULT_REFINE_STEPS
from hfstream.eval.budget import BUDGETS_BPP
from hfstream.eval.rd import evaluate_image
from hfstream.media.images import list_images

NUMERIC = ("bytes", "bpp", "psnr", "ms_ssim", "haarpsi", "vmaf")


def summarize(rows: list[dict]) -> list[dict]:
    by: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by[r["method"]].append(r)
    out = []
    for method, rs in by.items():
        s: dict = {"method": method, "images": len(rs)}
        extra = (
            "bytes_fixed",
            "index_bits_prior",
            "kept_share",
            "factor",
            "budget_use",
            "mean_rung",
        )
        for key in NUMERIC + extra:
            vals = [r[key] for r in rs if r.get(key) is not None]
            if vals:
                s[key] = float(np.mean(vals))
        s["fit_budget"] = sum(r.get("bytes") is not None for r in rs)
        out.append(s)
    return out


def write_csv(path: Path, rows: list[dict]) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def plot(summary: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, metric in zip(axes, ("psnr", "haarpsi"), strict=True):
        groups = {
            "hybrid schedules": [
                s
                for s in summary
                if s["method"]
                in ("hybrid 1_16", "hybrid 1_9", "hybrid 1_4", "hybrid 1_2", "hybrid (all indices)")
            ],
            "codebook ladder (1_4)": [s for s in summary if "codebook" in s["method"]],
        }
        for codec in ("hfstream", "jpeg", "webp", "avif"):  # at budgets 0.01-0.3 bpp
            groups[f"{codec} at a budget"] = [
                s for s in summary if s["method"].startswith(f"{codec} ") and "bpp" in s["method"]
            ]
        for label, pts in groups.items():
            pts = sorted((p for p in pts if "bpp" in p), key=lambda p: p["bpp"])
            ax.plot([p["bpp"] for p in pts], [p[metric] for p in pts], "o-", label=label)
        for s in summary:
            if (
                s["method"]
                in ("continuous", "vq (all indices)", "hybrid auto", "jpeg", "webp", "avif")
                and metric in s
            ):
                ax.plot(s["bpp"], s[metric], "s", label=s["method"])
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(metric.upper() if metric == "psnr" else "HaarPSI")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m hfstream.eval", description=__doc__)
    p.add_argument("folder", help="folder of images (PNG, JPEG, WebP...; searched recursively)")
    p.add_argument("--out", default="out/eval", help="where the CSVs and the plot go")
    p.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    p.add_argument("--limit", type=int, default=None, help="only the first N images")
    p.add_argument("--iterative-steps", type=int, default=8)
    p.add_argument("--no-classic", action="store_true", help="skip JPEG/WebP/AVIF")
    p.add_argument(
        "--vmaf",
        action="store_true",
        help="also score every picture with VMAF (libvmaf's built-in model through "
        "imageio-ffmpeg's FFmpeg; about 0.3 s a picture)",
    )
    p.add_argument(
        "--refine-steps",
        type=int,
        default=DEFAULT_REFINE_STEPS,
        help="the encoder's refinement of the continuous latent (0: none; about 0.1 s a "
        "step for 768x512 on 2 cores)",
    )
    p.add_argument(
        "--budgets",
        type=float,
        nargs="+",
        default=list(BUDGETS_BPP),
        help=f"the planner's budgets in bpp (default: {' '.join(map(str, BUDGETS_BPP))})",
    )
    try:
        args = p.parse_args(argv)
        if any(not 0 < b <= 8 for b in args.budgets):
            p.error(f"--budgets must lie in (0, 8] bpp, got {args.budgets}")
        files = list_images(args.folder)[: args.limit]  # before the model loads
    except SystemExit as e:  # --help, or a bad argument already said in one line
        return e.code if isinstance(e.code, int) else 0
    except FileNotFoundError as e:
        return fail(p.prog, str(e))
    codec = HybridCodec.from_pretrained(args.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for f in tqdm(files, desc="images"):
        for r in evaluate_image(
            codec,
            to_uint8_image(f),
            iterative_steps=args.iterative_steps,
            classic=not args.no_classic,
            refine_steps=args.refine_steps,
            vmaf=args.vmaf,
            budgets_bpp=tuple(sorted(args.budgets)),
        ):
            rows.append({"image": f.name, **r})
    summary = summarize(rows)
    write_csv(out / "per_image.csv", rows)
    write_csv(out / "summary.csv", summary)
    plot(summary, out / "rd.png")
    enc_ms = 1000 * np.mean([r["encode_s"] / r["patches"] for r in rows])
    dec_ms = 1000 * np.mean([r["decode_1_4_s"] / r["patches"] for r in rows])
    img_enc = 1000 * np.mean([r["encode_s"] for r in rows])
    img_dec = 1000 * np.mean([r["decode_1_4_s"] for r in rows])
    print(
        f"model {codec.name} ({codec.model_id:08x}), {len(files)} images, "
        f"refine steps {args.refine_steps}"
    )
    vmaf_head = f" {'VMAF':>6s}" if args.vmaf else ""
    print(
        f"{'method':40s} {'bytes':>8s} {'bpp':>7s} {'PSNR':>7s} {'MS-SSIM':>8s} {'HaarPSI':>8s}"
        + vmaf_head
    )
    for s in summary:
        if "bpp" not in s:
            print(f"{s['method']:40s} does not fit the budget")
            continue
        score = f" {s['vmaf']:6.2f}" if "vmaf" in s else ""
        print(
            f"{s['method']:40s} {s['bytes']:8.0f} {s['bpp']:7.4f} {s['psnr']:7.2f} "
            f"{s['ms_ssim']:8.4f} {s['haarpsi']:8.4f}" + score
        )
    print(
        f"encode {enc_ms:.0f} ms/patch, {img_enc:.0f} ms/image; "
        f"decode (hybrid 1_4) {dec_ms:.0f} ms/patch, {img_dec:.0f} ms/image"
    )
    print(f"wrote {out}/per_image.csv, summary.csv, rd.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
