"""``python -m sim.video_figure --video CLIP --out FIG``: one frame of a clip side by side.

For one frame (default the last): the original, hfstream with predicted frames, H.264 as
a WebRTC sender runs it (NACK resends and key frames on request) and H.264 without
recovery, all at the same bytes for the clip (``--bpp`` per frame), at each of
``--rates`` (Bernoulli loss, seed 0), as ``sim.video_sweep`` runs them. Each panel is
captioned with its method, loss, the frame's PSNR and the clip's bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import hfstream.arguments as a
from hfstream.eval.metrics import psnr
from sim import cli
from sim.video_sweep import ClipRunner, VideoCase, load_clip

CAPTION = 16  # px of caption strip above each panel
METHODS = ("hfstream-temporal", "h264-webrtc", "h264")


def _panel(img: np.ndarray, text: str) -> Image.Image:
    out = Image.new("RGB", (img.shape[1], CAPTION + img.shape[0]), "white")
    ImageDraw.Draw(out).text((3, 2), text, fill="black")
    out.paste(Image.fromarray(img), (0, CAPTION))
    return out


def _grid(rows: list[list[Image.Image]]) -> Image.Image:
    width = max(sum(p.width for p in r) + 4 * (len(r) - 1) for r in rows)
    height = sum(r[0].height for r in rows) + 4 * (len(rows) - 1)
    out = Image.new("RGB", (width, height), "white")
    y = 0
    for r in rows:
        x = 0
        for p in r:
            out.paste(p, (x, y))
            x += p.width + 4
        y += r[0].height + 4
    return out


def main(argv: list[str] | None = None) -> int:
    p = cli.parser("python -m sim.video_figure", __doc__)
    p.add_argument("--video", help="a video file (default: a pan across the bundled photo)")
    p.add_argument("--out", default="out/video_side_by_side.jpg", help="the figure")
    p.add_argument("--frames", type=a.positive_int, default=30, help="frames of the clip")
    p.add_argument("--frame", type=int, default=-1, help="the frame shown (default: last)")
    p.add_argument("--fps", type=a.positive_int, default=10, help="frame rate of the clip")
    p.add_argument("--bpp", type=a.positive_float, default=0.05, help="budget per frame")
    p.add_argument(
        "--rates", type=float, nargs="+", default=[0.0, 0.2], help="Bernoulli loss rates"
    )
    args = p.parse_args(argv)
    if args.video is not None and not Path(args.video).is_file():
        p.error(f"no file {args.video}")
    frames, source = load_clip(args.video, None, args.frames, 256, 512)
    h, w = frames[0].shape[:2]
    runner = ClipRunner(frames, args.fps, 30, args.bpp, 1200)
    index = args.frame % len(frames)
    rows = []
    for rate in args.rates:
        row = [_panel(frames[index], f"original, frame {index}")]
        for method in METHODS:
            case = VideoCase(
                source, method, "bernoulli", rate, 0, len(frames), h, w, args.fps, 30, args.bpp
            )
            d = runner.deliver(case)
            shown = d.shown[index]
            text = f"{method} {100 * rate:.0f}%: {psnr(frames[index], shown):.2f} dB, "
            row.append(_panel(shown, text + f"{d.bytes_sent} B"))
        rows.append(row)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _grid(rows).save(out, quality=90)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
