"""Stage ``continuous``: train the mean-scale hyperprior on 4x-downsampled 256x256 crops."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from tqdm import tqdm

from hfstream.codec.continuous import ContinuousCodec, ContinuousConfig
from hfstream.train.common import Checkpoint, JsonLog, optimizer_step, setup_runtime, wrap_ddp
from hfstream.train.data import PhotoCrops

PATCH_PIXELS = 256 * 256


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4 * 3)
    p.add_argument(
        "--lmbda", type=float, default=0.004, help="rate-distortion trade-off (on 0-255 MSE)"
    )
    p.add_argument("--n", type=int, default=ContinuousConfig.n)
    p.add_argument("--m", type=int, default=ContinuousConfig.m)


def run(args: argparse.Namespace) -> None:
    rt = setup_runtime(args.seed, args.device)
    out = Path(args.out)
    ckpt = Checkpoint(out / "continuous.ckpt")
    model = ContinuousCodec(ContinuousConfig(n=args.n, m=args.m)).to(rt.device)
    main_params = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux_params = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    opt = torch.optim.Adam(main_params, lr=args.lr)
    aux_opt = torch.optim.Adam(aux_params, lr=1e-3)
    step = ckpt.resume(model=model, opt=opt, aux_opt=aux_opt)
    net = wrap_ddp(model, rt)
    data = PhotoCrops(args.data, 256, seed=args.seed + 1000 * rt.rank + step)
    log = JsonLog(out / "continuous.jsonl", rt.is_main)
    bar = tqdm(total=args.steps, initial=step, desc="continuous", disable=not rt.is_main)
    while step < args.steps:
        lr = args.lr * (0.1 if step > 0.85 * args.steps else 1.0)
        for g in opt.param_groups:
            g["lr"] = lr
        low = ContinuousCodec.downsample(data.batch(args.batch)).to(rt.device)
        res = net(low)
        bits = sum(-torch.log2(lk).sum() for lk in res["likelihoods"].values())
        bpp = bits / (low.shape[0] * PATCH_PIXELS)  # bits per pixel of the full 256x256 patch
        mse = torch.mean((res["x_hat"] - low) ** 2)
        loss = args.lmbda * 255**2 * mse + bpp * (PATCH_PIXELS / low[0, 0].numel())
        optimizer_step(opt, loss, main_params)
        aux = model.aux_loss()
        aux_opt.zero_grad()
        aux.backward()
        aux_opt.step()
        step += 1
        bar.update(1)
        if step % 50 == 0:
            psnr = -10 * math.log10(max(mse.item(), 1e-10))
            bar.set_postfix(bpp=f"{bpp.item():.4f}", psnr64=f"{psnr:.2f}")
            log.write(step=step, bpp=bpp.item(), psnr64=psnr, loss=loss.item())
        if rt.is_main and (step % 500 == 0 or step == args.steps):
            ckpt.save(
                step,
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "aux_opt": aux_opt.state_dict(),
                },
                {"n": args.n, "m": args.m, "lmbda": args.lmbda},
            )
    bar.close()
