"""``python -m hfstream.eval.ladder DIR``: the continuous stream alone, rung by rung.

Codes every image of ``DIR`` with the continuous stream only (what a receiver shows as
the preview) at each rung of the ladder, frame-wide synthesis included, and prints the
bytes, bpp, PSNR and seam ratio of each rung. ``--checkpoint`` scores a training
checkpoint (``runs/.../continuous.ckpt``) instead of the shipped model, and
``--upsampler`` a learned up-sampler's (``runs/.../upsampler.ckpt``, with the synthesis
tuned beside it), which is how a run in progress is followed. ``--refine-steps``
refines each latent at encode time (``hfstream.codec.refinement``). ``--extend-below F ...``
scores the ladder with rungs added under the lowest (``ContinuousCodec.extended_below``),
and ``--classic`` fits WebP and AVIF files to each photo's bytes at every rung beside it.
``--rungs R ...`` scores only those rungs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from hfstream.codec.continuous import ContinuousCodec, ContinuousConfig, from_blocks
from hfstream.codec.deblocking import deblock
from hfstream.codec.model_io import load_upsampler_checkpoint
from hfstream.codec.refinement import refine_latent
from hfstream.codec.upsampler import LearnedUpsampler
from hfstream.eval.classic import fit_budget
from hfstream.eval.metrics import psnr, seam_ratio
from hfstream.media.images import list_images

PATCH = 256


def load_checkpoint(path: Path) -> ContinuousCodec:
    state = torch.load(path, map_location="cpu", weights_only=True)
    a = state["args"]
    model = ContinuousCodec(ContinuousConfig(n=a["n"], m=a["m"], rungs=a.get("rungs", 1)))
    model.load_state_dict(state["states"]["model"])
    model.eval().update(force=True)
    return model


@torch.inference_mode()
def code_frame(
    model: ContinuousCodec,
    image: np.ndarray,
    rung: int,
    *,
    upsampler: LearnedUpsampler | None = None,
    refine_steps: int = 0,
) -> tuple[int, np.ndarray]:
    """Code one HxWx3 uint8 image at one rung (its latent refined for ``refine_steps``);
    return (bytes, decoded HxWx3 uint8, deblocked as ``HybridCodec.decode`` does)."""
    h, w = image.shape[:2]
    rows, cols = -(-h // PATCH), -(-w // PATCH)
    padded = np.pad(image, ((0, rows * PATCH - h), (0, cols * PATCH - w), (0, 0)), mode="edge")
    x = torch.from_numpy(padded).permute(2, 0, 1)[None].float() / 255.0
    low = ContinuousCodec.downsample(x)
    y = refine_latent(
        model,
        upsampler,
        x,
        low,
        y=model.analyse(low),
        rungs=[rung] * (rows * cols),
        steps=refine_steps,
        valid=(h, w),
    )
    strings = model.compress_frame(low, [rung] * (rows * cols), y=y)
    nbytes = sum(len(y) + len(z) for y, z in strings)
    blocks = model.decompress_latent(strings, [rung] * len(strings))
    thumb = model.synthesize_frame(blocks, torch.ones(len(strings), dtype=torch.bool), rows, cols)
    if upsampler is None:
        full = ContinuousCodec.upsample(thumb).clamp(0, 1)[0, :, :h, :w]
    else:
        full = upsampler(thumb, from_blocks(blocks, rows, cols)).clamp(0, 1)[0, :, :h, :w]
    return nbytes, deblock((full * 255).round().byte().permute(1, 2, 0).numpy())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hfstream.eval.ladder", description=__doc__)
    p.add_argument("images", help="folder of images")
    p.add_argument("--checkpoint", type=Path, help="a continuous-stage checkpoint")
    p.add_argument("--upsampler", type=Path, help="an upsampler-stage checkpoint")
    p.add_argument("--bicubic", action="store_true", help="up-sample bicubic, not learned")
    p.add_argument("--limit", type=int, default=0, help="score only the first N images")
    p.add_argument(
        "--refine-steps", type=int, default=0, help="the encoder's refinement of the latent"
    )
    p.add_argument(
        "--extend-below",
        type=float,
        nargs="+",
        metavar="F",
        help="add rungs under the lowest, gains scaled by each F in (0, 1), ascending",
    )
    p.add_argument("--classic", action="store_true", help="WebP and AVIF at each rung's bytes")
    p.add_argument("--rungs", type=int, nargs="+", metavar="R", help="score only these rungs")
    args = p.parse_args(argv)
    if args.extend_below and not all(0 < f < 1 for f in args.extend_below):
        p.error(f"--extend-below factors must be in (0, 1), got {args.extend_below}")
    upsampler = None
    if args.checkpoint is not None:
        model = load_checkpoint(args.checkpoint)
    else:
        from hfstream.codec.hybrid import HybridCodec

        codec = HybridCodec.from_pretrained()
        model, upsampler = codec.continuous, codec.upsampler
    if args.upsampler is not None:
        upsampler = load_upsampler_checkpoint(args.upsampler, model)
    if args.bicubic:
        upsampler = None
    if args.extend_below:
        model = model.extended_below(sorted(args.extend_below)).eval()
        model.update(force=True)
    files = list_images(args.images)
    if args.limit:
        files = files[: args.limit]
    from PIL import Image

    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    print(f"{len(images)} images; mean bytes, bpp, PSNR and seam ratio over the original's")
    ref_seams = [seam_ratio(im) for im in images]
    chosen = range(model.rungs) if args.rungs is None else sorted(set(args.rungs))
    bad = [r for r in chosen if not 0 <= r < model.rungs]
    if bad:
        p.error(f"--rungs {bad}: this model has rungs 0..{model.rungs - 1}")
    for rung in chosen:
        rows = []
        classic: dict[str, list[float]] = {"webp": [], "avif": []}
        for im, ref_seam in zip(images, ref_seams, strict=True):
            nbytes, out = code_frame(
                model, im, rung, upsampler=upsampler, refine_steps=args.refine_steps
            )
            bpp = 8 * nbytes / (im.shape[0] * im.shape[1])
            rows.append((nbytes, bpp, psnr(im, out), seam_ratio(out) / ref_seam))
            if args.classic:
                for name, scores in classic.items():
                    fit = fit_budget(im, name, nbytes)
                    # No file that small (AVIF's container): scored as the mid-grey a
                    # receiver shows for a picture it cannot decode.
                    scores.append(psnr(im, fit.image) if fit else psnr(im, np.full_like(im, 128)))
        b, bpp, q, s = np.mean(rows, axis=0)
        worst = max(r[3] for r in rows)
        extra = "".join(f"  {k} {np.mean(v):6.2f} dB" for k, v in classic.items() if v)
        print(
            f"rung {rung}: {b:6.0f} B {bpp:.4f} bpp {q:6.2f} dB  seams {s:.2f} (worst {worst:.2f})"
            + extra
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
