"""What a channel-wise context model would save over the continuous stream's hyperprior
(issue 31, "a stronger entropy model, if it pays").

python -m sim.context_model PHOTOS [--model DIR] [--steps 4000] [--train-batches 400]
    [--slices 4] [--out FILE]

The stream stays frozen. Crops of 512 px of ``PHOTOS/train`` at random rungs give each
patch's symbols ``round(y - μ)`` and the hyperprior's (μ, σ); a ``ChannelContext``
(``hfstream.codec.channel_context``) learns to give the same symbols fewer bits. Every
patch of the validation photos (``PHOTOS/val``, at most 768x512, centre) at every rung
scores it: the y bits per patch under the hyperprior and under the context model, and
what that saves of the patch's strings (y and z). Estimated bits (the likelihoods), the
same estimator on both sides; the pictures are the same bit for bit by construction.
``--out`` keeps the trained context model's state.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hfstream.codec.channel_context import ChannelContext, ChannelContextConfig, symbol_bits
from hfstream.codec.continuous import ContinuousCodec, to_blocks
from hfstream.codec.hybrid import HybridCodec
from hfstream.media.images import list_images, spread
from hfstream.train.data import PhotoCrops


@torch.inference_mode()
def patch_terms(
    stream: ContinuousCodec, pictures: torch.Tensor, rungs: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Per patch of ``pictures`` (B,3,H,W) in [0, 1] coded at ``rungs`` (B,): its symbols,
    the hyperprior's means and scales (P, M, 4, 4) and its z bits (P,)."""
    low = ContinuousCodec.downsample(pictures)
    y = stream.g_a(low)
    per = (y.shape[-2] // 4) * (y.shape[-1] // 4)
    gains = stream._gains(rungs, inverse=False)
    if gains is not None:
        y = y * gains
    blocks = to_blocks(y)
    z = stream.h_a(blocks)
    medians = stream.entropy_bottleneck._get_medians().detach()
    z_hat = stream.entropy_bottleneck.quantize(z, "dequantize", medians)
    _, z_lik = stream.entropy_bottleneck(z_hat, training=False)
    scales, means = stream.h_s(z_hat).chunk(2, 1)
    symbols = torch.round(blocks - means)
    z_bits = -torch.log2(z_lik).flatten(1).sum(1)
    return {
        "symbols": symbols,
        "means": means,
        "scales": scales,
        "z_bits": z_bits,
        "rung": rungs.repeat_interleave(per),
    }


def gather_training(stream: ContinuousCodec, folder: Path, batches: int, seed: int) -> dict:
    crops = PhotoCrops(folder, 512, seed=seed)
    rng = np.random.default_rng(seed)
    parts: list[dict[str, torch.Tensor]] = []
    for _ in tqdm(range(batches), desc="training patches"):
        rungs = torch.from_numpy(rng.integers(stream.rungs, size=8))
        parts.append(patch_terms(stream, crops.batch(8), rungs))
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def gather_validation(stream: ContinuousCodec, folder: Path, count: int) -> dict:
    parts = []
    for photo in tqdm(spread(list_images(folder), count), desc="validation patches"):
        h, w = photo.shape[0] // 256 * 256, photo.shape[1] // 256 * 256
        x = torch.from_numpy(photo[:h, :w].copy()).permute(2, 0, 1)[None] / 255.0
        for rung in range(stream.rungs):
            parts.append(patch_terms(stream, x.float(), torch.tensor([rung])))
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def scored(context: ChannelContext, data: dict, *, whole_offsets: bool = False) -> torch.Tensor:
    """Bits (P,) of each patch's y symbols under ``context``; ``whole_offsets``: its mean
    offsets rounded, as a coder whose CDFs are centred tables (compressai's) can use
    them (it codes ``symbol - round(offset)``)."""
    with torch.inference_mode():
        offsets, scales = context(data["symbols"], data["means"], data["scales"])
        if whole_offsets:
            offsets = torch.round(offsets)
        return symbol_bits(data["symbols"], offsets, scales)


def report(context: ChannelContext, val: dict) -> list[str]:
    plain = symbol_bits(val["symbols"], torch.zeros_like(val["means"]), val["scales"])
    ours = scored(context, val)
    whole = scored(context, val, whole_offsets=True)
    lines = ["rung  y bits: hyperprior  context  saved of y  of y+z  of y+z, whole offsets"]
    for rung in sorted(set(val["rung"].tolist())):
        at = val["rung"] == rung
        y0, y1, y2 = float(plain[at].mean()), float(ours[at].mean()), float(whole[at].mean())
        z = float(val["z_bits"][at].mean())
        lines.append(
            f"{rung:4d}  {y0:16.1f}  {y1:7.1f}  {1 - y1 / y0:10.1%}  {(y0 - y1) / (y0 + z):6.1%}"
            f"  {(y0 - y2) / (y0 + z):21.1%}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m sim.context_model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("photos", type=Path, help="folder holding train/ and val/")
    p.add_argument("--model", type=Path, help="model folder (default: the shipped one)")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch", type=int, default=512, help="patches a step")
    p.add_argument("--train-batches", type=int, default=400, help="batches of 8 crops")
    p.add_argument("--val-count", type=int, default=16)
    p.add_argument("--slices", type=int, default=4)
    p.add_argument("--width", type=int, default=96)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="where to save the context model's state")
    args = p.parse_args(argv)
    for sub in ("train", "val"):
        if not (args.photos / sub).is_dir():
            p.error(f"no folder {args.photos / sub}")
    torch.manual_seed(args.seed)
    stream = HybridCodec.from_pretrained(args.model).continuous
    train = gather_training(stream, args.photos / "train", args.train_batches, args.seed)
    val = gather_validation(stream, args.photos / "val", args.val_count)
    print(f"{len(train['symbols'])} training patches, {len(val['symbols'])} validation ones")
    config = ChannelContextConfig(m=stream.config.m, slices=args.slices, width=args.width)
    context = ChannelContext(config)
    opt = torch.optim.Adam(context.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    count = len(train["symbols"])
    for step in tqdm(range(args.steps), desc="context"):
        lr = args.lr * 0.5 * (1 + np.cos(np.pi * step / args.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        pick = torch.from_numpy(rng.integers(count, size=args.batch))
        batch = {k: v[pick] for k, v in train.items()}
        offsets, scales = context(batch["symbols"], batch["means"], batch["scales"])
        loss = symbol_bits(batch["symbols"], offsets, scales).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % max(args.steps // 4, 1) == 0:
            val_bits = statistics.fmean(scored(context, val).tolist())
            tqdm.write(f"step {step + 1}: train {loss.item():.1f} bits, val {val_bits:.1f} bits")
    print("\n".join(report(context, val)))
    if args.out is not None:
        torch.save({"config": asdict(config), "state": context.state_dict()}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
