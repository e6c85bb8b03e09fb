"""Stage ``refiner``: learn what the VQ indices add to the continuous picture.

Everything the refiner builds on is frozen: the tokenizer gives each patch's true
indices, the continuous codec (with the synthesis and up-sampler of ``upsampler.ckpt``)
the picture the receiver shows from tier 0 alone, and the predictor the fills. Each
sample is a crop of ``--crop`` px, its patches coded apart as at encode time at a random
rung, its index map made as ``hfstream.train.stage_correction.training_codes`` makes it
(every index, or a schedule's subset with a few of them lost too, filled by the
predictor, softly, or by the nearest kept index), and the refined picture is scored
against the crop by MSE. The log keeps the PSNR of the continuous picture beside the
refined one: the gain is what the indices are worth.
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
from hfstream.codec.model_io import load_upsampler_checkpoint
from hfstream.codec.refiner import VQ_UPS, IndexRefiner, RefinerConfig
from hfstream.codec.tiling import from_tiles, patch_grid, to_tiles
from hfstream.train.common import Checkpoint, JsonLog, optimizer_step, setup_runtime
from hfstream.train.data import PhotoCrops
from hfstream.train.frozen import load_continuous, load_predictor, load_tokenizer
from hfstream.train.stage_correction import FILL_KINDS, training_codes
from hfstream.train.stage_upsampler import psnr_per_sample


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=6)
    p.add_argument("--crop", type=int, default=512, help="crop side in px, a multiple of 256")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--width", type=int, default=RefinerConfig.width)
    p.add_argument("--blocks", type=int, default=RefinerConfig.blocks)
    p.add_argument("--code-blocks", type=int, default=RefinerConfig.code_blocks)
    p.add_argument(
        "--fill-mix",
        type=float,
        nargs=len(FILL_KINDS),
        default=(0.2, 0.5, 0.1, 0.2),
        metavar=tuple(k.upper() for k in FILL_KINDS),
        help="shares of samples coded with each kind of index map",
    )


def run(args: argparse.Namespace) -> None:
    if args.crop % 256 or args.crop <= 0:
        raise SystemExit(f"--crop must be a positive multiple of 256, got {args.crop}")
    mix = np.asarray(args.fill_mix, float)
    if mix.min() < 0 or mix.sum() <= 0:
        raise SystemExit(f"--fill-mix needs non-negative shares, got {args.fill_mix}")
    mix = mix / mix.sum()
    rt = setup_runtime(args.seed, args.device)
    out = Path(args.out)
    tokenizer = load_tokenizer(out).to(rt.device)
    continuous = load_continuous(out)
    ustate = out / "upsampler.ckpt"
    upsampler = (
        load_upsampler_checkpoint(ustate, continuous).to(rt.device) if ustate.exists() else None
    )
    continuous = continuous.to(rt.device)
    predictor = load_predictor(out)
    if predictor is not None:
        predictor = predictor.to(rt.device)
    config = RefinerConfig(
        code_dim=tokenizer.config.code_dim,
        vq_channels=tokenizer.decoder.level_channels[VQ_UPS],
        width=args.width,
        code_blocks=args.code_blocks,
        blocks=args.blocks,
    )
    model = IndexRefiner(config).to(rt.device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    ckpt = Checkpoint(out / "refiner.ckpt")
    step = ckpt.resume(model=model, opt=opt)
    data = PhotoCrops(args.data, args.crop, seed=args.seed + 3000 + step)
    rng = np.random.default_rng(args.seed + 13 * step)
    log = JsonLog(out / "refiner.jsonl", rt.is_main)
    bar = tqdm(total=args.steps, initial=step, desc="refiner", disable=not rt.is_main)
    side = args.crop // 256
    base_psnr: list[float] = []
    refined_psnr: list[float] = []
    while step < args.steps:
        decay = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for g in opt.param_groups:
            g["lr"] = args.lr * decay
        x = data.batch(args.batch).to(rt.device)
        with torch.no_grad():
            idx = tokenizer.encode(to_tiles(x, side, side))
            rung = torch.from_numpy(rng.integers(0, continuous.rungs, size=x.shape[0]))
            blocks = continuous.quantized_latent(ContinuousCodec.downsample(x), rung.to(x.device))
            q, certainty = training_codes(tokenizer, predictor, idx, blocks, rng=rng, mix=mix)
            y_hat = from_blocks(blocks, side, side)
            low = continuous.synthesize(y_hat).clamp(0, 1)
            if upsampler is None:
                picture = ContinuousCodec.upsample(low).clamp(0, 1)
            else:
                picture = upsampler(low, y_hat).clamp(0, 1)
            codes = from_tiles(q, side, side)
            with patch_grid(side, side):
                features = tokenizer.decoder.features(codes, VQ_UPS)
        refined = model(picture, codes, from_tiles(certainty, side, side), features)
        loss = ((refined - x) ** 2).mean()
        optimizer_step(opt, loss, list(model.parameters()))
        step += 1
        bar.update(1)
        with torch.no_grad():
            base_psnr += psnr_per_sample(picture, x).tolist()
            refined_psnr += psnr_per_sample(refined, x).tolist()
        if step % 25 == 0:
            gain = float(np.mean(refined_psnr) - np.mean(base_psnr))
            bar.set_postfix_str(f"gain {gain:+.3f} dB")
            log.write(
                step=step,
                lr=args.lr * decay,
                loss=loss.item(),
                psnr=float(np.mean(refined_psnr)),
                gain=gain,
            )
            base_psnr, refined_psnr = [], []
        if rt.is_main and (step % 100 == 0 or step == args.steps):
            ckpt.save(
                step,
                {"model": model.state_dict(), "opt": opt.state_dict()},
                {"config": asdict(config)},
            )
    bar.close()
