"""``python -m hfstream.eval.side_by_side IMAGE... --out FIG``: pictures side by side.

For each image: the original, hfstream at a byte budget (the frame planner on a clean
channel, tiers 0 and 1 as the receiver decodes them) and AVIF and WebP files of as many
bytes, each captioned with its bytes and PSNR. Each row shows the whole frame at half
size and, below it, a crop at full size. hfstream's encoder refines its latent
(``--refine-steps``, default as ``hfstream encode``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from hfstream.codec.frames import to_uint8_image
from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.refinement import DEFAULT_REFINE_STEPS
from hfstream.eval.budget import at_budget
from hfstream.eval.classic import fit_budget
from hfstream.eval.metrics import psnr

CAPTION = 18  # px of caption strip above each panel


def _panel(img: np.ndarray, text: str, scale: float, crop: tuple[int, int, int, int]):
    h, w = img.shape[:2]
    whole = Image.fromarray(img).resize((round(w * scale), round(h * scale)), Image.LANCZOS)
    top, left, ch, cw = crop
    detail = Image.fromarray(img[top : top + ch, left : left + cw])
    out = Image.new("RGB", (max(whole.width, cw), CAPTION + whole.height + ch), "white")
    ImageDraw.Draw(out).text((4, 3), text, fill="black")
    out.paste(whole, (0, CAPTION))
    out.paste(detail, (0, CAPTION + whole.height))
    return out


def figure_row(
    codec: HybridCodec, ref: np.ndarray, bpp: float, name: str, *, refine_steps: int = 0
) -> Image.Image:
    _, sent, ours = at_budget(codec, ref, bpp, refine_steps)
    h, w = ref.shape[:2]
    ch, cw = min(256, h), min(384, w)
    crop = ((h - ch) // 2, (w - cw) // 2, ch, cw)
    panels = [_panel(ref, f"{name}: original", 0.5, crop)]
    panels.append(_panel(ours, f"hfstream {sent} B, {psnr(ref, ours):.2f} dB", 0.5, crop))
    for codec_name in ("avif", "webp"):
        res = fit_budget(ref, codec_name, sent)
        if res is None:
            blank = np.full_like(ref, 255)
            panels.append(_panel(blank, f"{codec_name}: does not fit {sent} B", 0.5, crop))
        else:
            text = f"{codec_name} {res.bytes} B, {psnr(ref, res.image):.2f} dB"
            panels.append(_panel(res.image, text, 0.5, crop))
    row = Image.new("RGB", (sum(p.width for p in panels) + 4 * len(panels), panels[0].height))
    row.paste((255, 255, 255), (0, 0, row.width, row.height))
    x = 0
    for p in panels:
        row.paste(p, (x, 0))
        x += p.width + 4
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hfstream.eval.side_by_side", description=__doc__)
    p.add_argument("images", nargs="+")
    p.add_argument("--bpp", type=float, default=0.05, help="budget, bits per pixel")
    p.add_argument("--out", default="out/side_by_side.png")
    p.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    p.add_argument(
        "--refine-steps",
        type=int,
        default=DEFAULT_REFINE_STEPS,
        help="the encoder's refinement of the continuous latent (0: none)",
    )
    args = p.parse_args(argv)
    codec = HybridCodec.from_pretrained(args.model)
    rows = [
        figure_row(codec, to_uint8_image(f), args.bpp, Path(f).stem, refine_steps=args.refine_steps)
        for f in args.images
    ]
    fig = Image.new("RGB", (max(r.width for r in rows), sum(r.height + 8 for r in rows)), "white")
    y = 0
    for r in rows:
        fig.paste(r, (0, y))
        y += r.height + 8
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.save(args.out)
    print(f"wrote {args.out} ({fig.width}x{fig.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
