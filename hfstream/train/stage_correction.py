"""Stage ``correction``: train the correction decoder with the VQ decoder frozen."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import piq
import torch
import torch.nn.functional as F
from tqdm import tqdm

from hfstream.codec.continuous import ContinuousCodec
from hfstream.codec.correction import CorrectionDecoder
from hfstream.codec.hybrid import nearest_fill
from hfstream.codec.schedules import Schedule, kept_mask
from hfstream.train.common import Checkpoint, JsonLog, setup_runtime, wrap_ddp
from hfstream.train.data import PhotoCrops
from hfstream.train.frozen import load_continuous, load_tokenizer

FILL_SCHEDULES = (Schedule.HALF, Schedule.QUARTER, Schedule.NINTH)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=6)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--msssim-weight", type=float, default=0.5)
    p.add_argument(
        "--filled-share",
        type=float,
        default=0.3,
        help="share of samples whose withheld indices are replaced by a naive fill",
    )


def run(args: argparse.Namespace) -> None:
    rt = setup_runtime(args.seed, args.device)
    out = Path(args.out)
    tokenizer = load_tokenizer(out).to(rt.device)
    continuous = load_continuous(out).to(rt.device)
    model = CorrectionDecoder(tokenizer.decoder, continuous.config.m).to(rt.device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    ckpt = Checkpoint(out / "correction.ckpt")
    step = 0
    if ckpt.exists():
        state = ckpt.load()
        model.load_state_dict(state["states"]["model"])
        opt.load_state_dict(state["states"]["opt"])
        step = state["step"]
    net = wrap_ddp(model, rt)
    data = PhotoCrops(args.data, 256, seed=args.seed + 1000 * rt.rank + step)
    rng = np.random.default_rng(args.seed + step)
    log = JsonLog(out / "correction.jsonl", rt.is_main)
    bar = tqdm(total=args.steps, initial=step, desc="correction", disable=not rt.is_main)
    while step < args.steps:
        lr = args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        x = data.batch(args.batch).to(rt.device)
        with torch.no_grad():
            idx = tokenizer.encode(x)
            if args.filled_share > 0:
                idx = _naive_fill_some(idx, rng, args.filled_share)
            q = tokenizer.codebook.embed(idx)
            low_in = ContinuousCodec.downsample(x)
            y_hat = continuous.quantized_latent(low_in)
            low = continuous.synthesize(y_hat)
            plain = tokenizer.decoder(q).clamp(0, 1)
        x_hat = tokenizer.decoder(q, net(y_hat, low))
        l1 = F.l1_loss(x_hat, x)
        msssim = piq.multi_scale_ssim(x_hat.clamp(0, 1), x, data_range=1.0)
        loss = l1 + args.msssim_weight * (1 - msssim)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        bar.update(1)
        if step % 25 == 0:
            psnr = -10 * math.log10(max(F.mse_loss(x_hat.clamp(0, 1), x).item(), 1e-10))
            psnr_vq = -10 * math.log10(max(F.mse_loss(plain, x).item(), 1e-10))
            bar.set_postfix(psnr=f"{psnr:.2f}", vq=f"{psnr_vq:.2f}")
            log.write(step=step, psnr=psnr, psnr_vq=psnr_vq, msssim=msssim.item())
        if rt.is_main and (step % 100 == 0 or step == args.steps):
            ckpt.save(step, {"model": model.state_dict(), "opt": opt.state_dict()}, {})
    bar.close()


def _naive_fill_some(idx: torch.Tensor, rng: np.random.Generator, share: float) -> torch.Tensor:
    """Replace the withheld indices of some samples by a nearest-neighbour fill, so the
    correction also learns to repair indices that were guessed rather than sent."""
    out = idx.clone()
    for b in range(idx.shape[0]):
        if rng.random() < share:
            sched = FILL_SCHEDULES[rng.integers(len(FILL_SCHEDULES))]
            flat = idx[b].flatten().cpu().numpy()
            kept = np.where(kept_mask(sched).ravel(), flat, -1)
            out[b] = torch.from_numpy(nearest_fill(kept)).reshape(idx.shape[1:])
    return out
