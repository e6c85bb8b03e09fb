"""Stage ``tokenizer``: train the VQ encoder, codebook and decoder on random crops."""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict
from pathlib import Path

import piq
import torch
import torch.nn.functional as F
from tqdm import tqdm

from hfstream.codec.tokenizer import Tokenizer, TokenizerConfig
from hfstream.train.common import Checkpoint, JsonLog, optimizer_step, setup_runtime, wrap_ddp
from hfstream.train.data import PhotoCrops


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--ssim-weight", type=float, default=0.2)
    p.add_argument("--restart-every", type=int, default=100, help="restart unused codes")


def run(args: argparse.Namespace) -> None:
    rt = setup_runtime(args.seed, args.device)
    out = Path(args.out)
    ckpt = Checkpoint(out / "tokenizer.ckpt")
    config = TokenizerConfig()
    model = Tokenizer(config).to(rt.device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.99))
    step = ckpt.resume(model=model, opt=opt)
    net = wrap_ddp(model, rt)
    data = PhotoCrops(args.data, args.crop, seed=args.seed + 1000 * rt.rank + step)
    log = JsonLog(out / "tokenizer.jsonl", rt.is_main)
    usage = torch.zeros(config.codebook_size, device=rt.device)
    bar = tqdm(total=args.steps, initial=step, desc="tokenizer", disable=not rt.is_main)
    while step < args.steps:
        # Warm-up, then cosine decay to 10 %.
        warm = min(1.0, (step + 1) / 200)
        lr = args.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        x = data.batch(args.batch).to(rt.device)
        x_hat, vq_loss, idx = net(x)
        x_hat_c = x_hat.clamp(0, 1)
        l1 = F.l1_loss(x_hat, x)
        ssim = piq.ssim(x_hat_c, x, data_range=1.0)
        loss = l1 + args.ssim_weight * (1 - ssim) + vq_loss
        optimizer_step(opt, loss, model.parameters())
        usage += torch.bincount(idx.flatten(), minlength=config.codebook_size)
        step += 1
        if step % args.restart_every == 0:
            if rt.world > 1:  # every rank must restart the same words the same way
                torch.distributed.all_reduce(usage)
            restart_dead_codes(model, x, usage)
            if rt.world > 1:
                torch.distributed.broadcast(model.codebook.weight.data, 0)
            used = int((usage > 0).sum())
            usage.zero_()
        else:
            used = -1
        bar.update(1)
        if step % 50 == 0:
            mse = F.mse_loss(x_hat_c, x).item()
            psnr = -10 * math.log10(max(mse, 1e-10))
            bar.set_postfix(psnr=f"{psnr:.2f}", ssim=f"{ssim.item():.3f}")
            log.write(step=step, psnr=psnr, ssim=ssim.item(), vq=vq_loss.item(), used=used)
        if rt.is_main and (step % 250 == 0 or step == args.steps):
            ckpt.save(
                step,
                {"model": model.state_dict(), "opt": opt.state_dict()},
                {"config": asdict(config)},
            )
    bar.close()


@torch.no_grad()
def restart_dead_codes(model: Tokenizer, x: torch.Tensor, usage: torch.Tensor) -> None:
    """Move every word unused since the last restart onto a random current encoder output."""
    dead = torch.nonzero(usage == 0).flatten()
    if dead.numel() == 0:
        return
    z = F.normalize(model.encoder(x), dim=1).permute(0, 2, 3, 1).reshape(-1, model.config.code_dim)
    pick = torch.randint(0, z.shape[0], (dead.numel(),), device=z.device)
    noise = 0.01 * torch.randn(dead.numel(), z.shape[1], device=z.device)
    model.codebook.weight.data[dead] = z[pick] + noise
