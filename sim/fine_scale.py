"""What the continuous stream would give coded at 2x down instead of 4x (issue 31).

python -m sim.fine_scale PHOTOS [--model DIR] [--upsampler FILE|none] [--limit N]
    [--classic avif,webp]

For each photo (cropped to a multiple of 128 px per side) and each rung, the model's
stream of ``FINE`` frames (its FINE stream, or its picture stream where it has none)
codes the 2x-down picture (a box filter) as the picture stream does the 4x-down one: one
string pair per 64x64 block of the thumbnail, so per 128x128 block of the photo. The
thumbnail it decodes is brought back to full size three ways:

- ``x2``: a learned 2x up-sampler (``train upsampler --scale 2``; ``--upsampler none``
  leaves it out);
- ``bicubic``: bicubic 2x;
- ``via4``: the FINE stream's 4x up-sampler to twice the size, then a 2x box down: what
  the receiver shows of a FINE frame (less the deblocking filter).

Rows of the ordinary (4x) stream at every rung, and AVIF/WebP fitted to each fine
rung's bytes (best down-scale factor, no headers: in their favour), are printed beside
them. Bytes are the strings alone (no packet headers, in both streams). The means are
over photos; bpp per photo.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hfstream.codec.continuous import from_blocks
from hfstream.codec.frames import to_uint8
from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.rates import Fixed
from hfstream.codec.upsampler import LearnedUpsampler, UpsamplerConfig
from hfstream.eval.classic import fit_budget
from hfstream.eval.metrics import psnr
from hfstream.geometry import FINE as FINE_SCALE
from hfstream.media.images import list_images, spread

FINE = 2  # the thumbnail's down-sampling, against the stream's 4
BLOCK_PX = 64 * FINE  # photo pixels per latent block at that scale
DEFAULT_UPSAMPLER = Path("hfstream/train/checkpoints/upsampler_x2.safetensors")


def load_x2(path: Path) -> LearnedUpsampler:
    from hfstream.train.portable import load_portable

    state = (
        load_portable(path)
        if path.suffix == ".safetensors"
        else torch.load(path, map_location="cpu", weights_only=True)
    )
    net = LearnedUpsampler(UpsamplerConfig(**state["args"]["config"]))
    net.load_state_dict(state["states"]["model"])
    return net.eval()


def crop(image: np.ndarray) -> np.ndarray:
    h, w = (s - s % BLOCK_PX for s in image.shape[:2])
    return np.ascontiguousarray(image[:h, :w])


@torch.inference_mode()
def fine_rows(codec: HybridCodec, x2: LearnedUpsampler | None, image: np.ndarray) -> list[dict]:
    coder = codec.coder_for(FINE_SCALE)
    c = coder.continuous
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    low = F.avg_pool2d(x, FINE)
    rows, cols = low.shape[-2] // 64, low.shape[-1] // 64
    y = c.analyse(low)
    out = []
    for rung in range(c.rungs):
        strings = c.compress_frame(low, [rung] * rows * cols, y=y)
        size = sum(len(a) + len(b) for a, b in strings)
        blocks = c.decompress_latent(strings, [rung] * len(strings))
        frame = from_blocks(blocks, rows, cols)
        low_hat = c.synthesize(frame)
        pictures = {
            "bicubic": F.interpolate(low_hat, scale_factor=FINE, mode="bicubic").clamp(0, 1),
        }
        if x2 is not None:
            pictures["x2"] = x2(low_hat, frame).clamp(0, 1)
        if coder.upsampler is not None:
            big = coder.upsampler(low_hat, frame).clamp(0, 1)
            pictures["via4"] = F.avg_pool2d(big, 2)
        row = {"rung": rung, "bytes": size, "bpp": size * 8 / image.shape[0] / image.shape[1]}
        for name, pic in pictures.items():
            row[name] = psnr(image, to_uint8(pic)[0])
        out.append(row)
    return out


def coarse_rows(codec: HybridCodec, image: np.ndarray) -> list[dict]:
    out = []
    for rung in range(codec.continuous.rungs):
        enc = codec.encode_tier0(image, rate=Fixed(rung))
        size = enc.continuous_bytes
        pic = codec.decode(enc, mode="continuous")
        out.append(
            {
                "rung": rung,
                "bytes": size,
                "bpp": size * 8 / image.shape[0] / image.shape[1],
                "psnr": psnr(image, pic),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m sim.fine_scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("photos", type=Path, help="folder of photos")
    p.add_argument("--model", type=Path, help="model folder (default: the shipped one)")
    p.add_argument(
        "--upsampler",
        default=str(DEFAULT_UPSAMPLER),
        help="2x up-sampler (packed .safetensors or a training .ckpt; none: leave it out)",
    )
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--limit", type=int, default=0, help="N photos spread over the folder (0: all)")
    p.add_argument(
        "--classic",
        default="avif,webp",
        help="classic codecs fitted to the fine rungs' bytes ('' for none)",
    )
    args = p.parse_args(argv)
    try:
        files = list_images(args.photos)
    except FileNotFoundError as e:
        p.error(str(e))
    photos = spread(files, args.limit or len(files))
    torch.set_num_threads(args.threads)
    codec = HybridCodec.from_pretrained(args.model)
    x2 = None if args.upsampler == "none" else load_x2(Path(args.upsampler))
    classic = [c for c in args.classic.split(",") if c]
    fine: dict[int, list[dict]] = {}
    coarse: dict[int, list[dict]] = {}
    for i, photo in enumerate(photos):
        image = crop(photo)
        for row in fine_rows(codec, x2, image):
            for name in classic:
                fitted = fit_budget(image, name, row["bytes"])
                row[name] = psnr(image, fitted.image) if fitted else float("nan")
            fine.setdefault(row["rung"], []).append(row)
        for row in coarse_rows(codec, image):
            coarse.setdefault(row["rung"], []).append(row)
        print(f"photo {i}: fine top rung {fine[max(fine)][-1]}", flush=True)

    def mean(rows: list[dict], key: str) -> float:
        return statistics.fmean(r[key] for r in rows if not np.isnan(r[key]))

    print(f"\n{len(photos)} photos (at most 768x512, centre). The 4x stream (continuous picture):")
    print("rung  bpp     dB")
    for rung, rows in sorted(coarse.items()):
        print(f"{rung:4d}  {mean(rows, 'bpp'):.4f}  {mean(rows, 'psnr'):.2f}")
    names = ["x2", "bicubic", "via4", *classic]
    print("\nThe 2x-down thumbnail:")
    print("rung  bpp     " + "  ".join(f"{n:>7}" for n in names))
    for rung, rows in sorted(fine.items()):
        cells = "  ".join(f"{mean(rows, n):7.2f}" if n in rows[0] else "      -" for n in names)
        print(f"{rung:4d}  {mean(rows, 'bpp'):.4f}  {cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
