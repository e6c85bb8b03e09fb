"""Stage ``upsampler``: learn to bring the continuous stream's thumbnail back at full size.

The continuous codec's analysis transform and entropy model stay frozen, so every
stream coded before decodes the same; what learns is the learned up-sampler
(``hfstream.codec.upsampler``) and, at a lower rate (``--synthesis-lr``), the synthesis
transform that feeds it. Both only decode, so no bit on the wire changes.

Each sample is a crop of ``--crop`` px coded at a random rung as the encoder codes it
(rounded latents, per-patch blocks), synthesised frame-wide, up-sampled and scored
against the full-resolution crop by MSE. The log keeps, per rung, the PSNR of the
bicubic picture beside the learned one: the gain is what this stage is for.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hfstream.codec.continuous import ContinuousCodec, from_blocks
from hfstream.codec.upsampler import LearnedUpsampler, UpsamplerConfig
from hfstream.train.common import Checkpoint, JsonLog, optimizer_step, setup_runtime
from hfstream.train.data import PhotoCrops
from hfstream.train.frozen import load_continuous


def add_arguments(p: argparse.ArgumentParser) -> None:
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


def psnr_per_sample(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    mse = ((a.clamp(0, 1) - b) ** 2).flatten(1).mean(1)
    return -10 * torch.log10(mse.clamp(min=1e-10))


def run(args: argparse.Namespace) -> None:
    if args.crop % 256 or args.crop <= 0:
        raise SystemExit(f"--crop must be a positive multiple of 256, got {args.crop}")
    rt = setup_runtime(args.seed, args.device)
    out = Path(args.out)
    continuous = load_continuous(out).to(rt.device)
    config = UpsamplerConfig(
        latent_channels=continuous.config.m, width=args.width, blocks=args.blocks
    )
    model = LearnedUpsampler(config).to(rt.device)
    ckpt = Checkpoint(out / "upsampler.ckpt")
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
    data = PhotoCrops(args.data, args.crop, seed=args.seed + 2000 + step)
    rng = np.random.default_rng(args.seed + 11 * step)
    log = JsonLog(out / "upsampler.jsonl", rt.is_main)
    bar = tqdm(total=args.steps, initial=step, desc="upsampler", disable=not rt.is_main)
    rungs = continuous.rungs
    stats: list[list[tuple[float, float]]] = [[] for _ in range(rungs)]
    while step < args.steps:
        decay = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for g in opt.param_groups:
            g["lr"] = g["base"] * decay
        x = data.batch(args.batch).to(rt.device)
        rung = torch.from_numpy(rng.integers(0, rungs, size=args.batch)).to(rt.device)
        low_true = ContinuousCodec.downsample(x)
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
            bicubic = psnr_per_sample(ContinuousCodec.upsample(low), x).tolist()
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
