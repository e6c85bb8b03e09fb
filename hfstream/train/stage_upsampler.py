"""Stage ``upsampler``: learn to bring the continuous stream's thumbnail back at full size.

The continuous codec's analysis transform and entropy model stay frozen, so every
stream coded before decodes the same; what learns is the learned up-sampler
(``hfstream.codec.upsampler``) and, at a lower rate (``--synthesis-lr``), the synthesis
transform that feeds it. Both only decode, so no bit on the wire changes.

Each sample is a crop of ``--crop`` px coded at a random rung as the encoder codes it
(rounded latents, per-patch blocks), synthesised frame-wide, up-sampled and scored
against the full-resolution crop by MSE. The log keeps, per rung, the PSNR of the
bicubic picture beside the learned one: the gain is what this stage is for.

``--scale 2`` trains the up-sampler of the finer scale instead: the same frozen codec
codes the 2x-downsampled crop (so each 64-px block of its thumbnail covers 128 px of the
picture), and the up-sampler brings that thumbnail back 2x. It has its own checkpoint
(``upsampler_x2.ckpt``) and leaves the synthesis transform alone, which the 4x stream
shares.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hfstream.codec.continuous import from_blocks
from hfstream.codec.upsampler import LearnedUpsampler, UpsamplerConfig
from hfstream.train.common import Checkpoint, JsonLog, optimizer_step, setup_runtime
from hfstream.train.data import PhotoCrops
from hfstream.train.frozen import load_continuous


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--graphics-share",
        type=float,
        default=0.0,
        help="share of crops from graphics made in code (media.graphics), not photos",
    )
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--crop", type=int, default=512, help="crop side in px, a multiple of 256")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument(
        "--synthesis-lr",
        type=float,
        default=3e-5,
        help="also fine-tune the continuous synthesis transform at this rate (0: frozen)",
    )
    p.add_argument("--width", type=int, default=UpsamplerConfig.width)
    p.add_argument("--blocks", type=int, default=UpsamplerConfig.blocks)
    p.add_argument(
        "--scale",
        type=int,
        choices=(2, 4),
        default=4,
        help="thumbnail down-sampling the up-sampler undoes (2: the finer scale)",
    )


def checkpoint_name(scale: int) -> str:
    return "upsampler.ckpt" if scale == 4 else f"upsampler_x{scale}.ckpt"


def warm_start_from_x4(model: LearnedUpsampler, out: Path) -> None:
    """Start a 2x up-sampler from the 4x one's features (all but the head, whose output
    differs): both read the same thumbnails and latents, so a fresh run converges sooner.
    """
    x4 = Checkpoint(out / checkpoint_name(4))
    if not x4.exists():
        return
    state = x4.load()["states"]["model"]
    own = model.state_dict()
    shared = {k: v for k, v in state.items() if not k.startswith("head.") and k in own}
    if all(own[k].shape == v.shape for k, v in shared.items()):
        model.load_state_dict(shared, strict=False)
        print(f"started from {x4.path}'s features ({len(shared)} tensors)")


def psnr_per_sample(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    mse = ((a.clamp(0, 1) - b) ** 2).flatten(1).mean(1)
    return -10 * torch.log10(mse.clamp(min=1e-10))


def run(args: argparse.Namespace) -> None:
    if args.crop % 256 or args.crop <= 0:
        raise SystemExit(f"--crop must be a positive multiple of 256, got {args.crop}")
    if args.scale != 4 and args.synthesis_lr > 0:
        raise SystemExit("--scale 2 trains with the synthesis frozen: pass --synthesis-lr 0")
    rt = setup_runtime(args.seed, args.device)
    out = Path(args.out)
    continuous = load_continuous(out).to(rt.device)
    config = UpsamplerConfig(
        latent_channels=continuous.config.m,
        width=args.width,
        blocks=args.blocks,
        scale=args.scale,
    )
    model = LearnedUpsampler(config).to(rt.device)
    ckpt = Checkpoint(out / checkpoint_name(args.scale))
    params = list(model.parameters())
    groups = [{"params": list(params), "lr": args.lr, "base": args.lr}]
    synthesis = continuous.g_s
    if args.synthesis_lr > 0:
        synthesis.train()
        for p in synthesis.parameters():
            p.requires_grad_(True)
        groups.append(
            {
                "params": list(synthesis.parameters()),
                "lr": args.synthesis_lr,
                "base": args.synthesis_lr,
            }
        )
        params += groups[-1]["params"]
    opt = torch.optim.Adam(groups)
    step = ckpt.resume(model=model, opt=opt, synthesis=synthesis)
    if step == 0 and args.scale != 4:
        warm_start_from_x4(model, out)
    data = PhotoCrops(
        args.data, args.crop, seed=args.seed + 2000 + step, graphics_share=args.graphics_share
    )
    rng = np.random.default_rng(args.seed + 11 * step)
    name = checkpoint_name(args.scale).removesuffix(".ckpt")
    log = JsonLog(out / f"{name}.jsonl", rt.is_main)
    bar = tqdm(total=args.steps, initial=step, desc=name, disable=not rt.is_main)
    rungs = continuous.rungs
    stats: list[list[tuple[float, float]]] = [[] for _ in range(rungs)]
    while step < args.steps:
        decay = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for g in opt.param_groups:
            g["lr"] = g["base"] * decay
        x = data.batch(args.batch).to(rt.device)
        rung = torch.from_numpy(rng.integers(0, rungs, size=args.batch)).to(rt.device)
        low_true = torch.nn.functional.avg_pool2d(x, args.scale)
        with torch.no_grad():
            blocks = continuous.quantized_latent(low_true, rung)
        rows, cols = low_true.shape[-2] // 64, low_true.shape[-1] // 64
        y_hat = from_blocks(blocks, rows, cols)
        low = synthesis(y_hat).clamp(0, 1)
        picture = model(low, y_hat)
        loss = ((picture - x) ** 2).mean()
        optimizer_step(opt, loss, params)
        step += 1
        bar.update(1)
        with torch.no_grad():
            learned = psnr_per_sample(picture, x).tolist()
            bicubic_picture = torch.nn.functional.interpolate(
                low, scale_factor=args.scale, mode="bicubic", align_corners=False
            )
            bicubic = psnr_per_sample(bicubic_picture, x).tolist()
        for r, b, p in zip(rung.tolist(), bicubic, learned, strict=True):
            stats[r].append((b, p))
        if step % 50 == 0:
            ladder = [np.mean(st, axis=0).round(3).tolist() if st else None for st in stats]
            gain = np.mean([r[1] - r[0] for r in ladder if r])
            bar.set_postfix_str(f"gain {gain:+.2f} dB")
            log.write(step=step, lr=args.lr * decay, loss=loss.item(), gain=gain, ladder=ladder)
            stats = [[] for _ in range(rungs)]
        if rt.is_main and (step % 100 == 0 or step == args.steps):
            ckpt.save(
                step,
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "synthesis": synthesis.state_dict(),
                },
                {"config": asdict(config), "synthesis_lr": args.synthesis_lr},
            )
    bar.close()
