"""Stage ``fine``: train the continuous stream of ``FINE`` frames and its up-sampler.

A ``FINE`` frame is coded at twice its size (each pixel repeated 2x2), so the stream's
4x box down-sampling codes the 2x-down thumbnail, and the receiver brings it back at the
coded size through a 4x up-sampler and takes a 2x box down (``codec.scaling``). The
picture stream and its up-sampler were trained on 4x-down thumbnails; a 2x-down one is
smoother and holds finer detail, and at its bytes the picture stream stays 2-4 dB behind
AVIF (docs/notebook/rate-and-planner.md). This stage trains a stream of the same
architecture and rungs, and a 4x up-sampler, for that scale alone. Both start from the
``fine`` stream and up-sampler of ``--source`` where it has them (training goes on from
the shipped weights), else from its picture stream and up-sampler.

Recipe, as stage ``continuous`` but at ``FINE``:

- crops of ``--crop`` px (default 256: 2x2 coded patches, a 128 px thumbnail);
- a random rung per sample, scored with that rung's λ (the picture stream's ladder, so
  that a FINE rung and a full-size rung trade bytes for error at the same slope, which
  is what the planner compares) on the picture the receiver shows: the decoded thumbnail
  through the up-sampler, 2x box down, against the crop;
- stream and up-sampler trained together (the up-sampler reads ŷc, which the stream
  changes), rate from noisy latents, synthesis from rounded ones (straight-through);
- Adam with a cosine decay to a tenth of the rates over ``--steps``; resumable from
  ``OUT/fine.ckpt``. ``add-fine`` adds the result to a model folder.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from hfstream.codec.continuous import ContinuousCodec, ContinuousConfig, ladder_lmbdas
from hfstream.codec.model_io import DEFAULT_MODEL_DIR, load_model, split_prefix
from hfstream.codec.upsampler import LearnedUpsampler, UpsamplerConfig
from hfstream.train.common import Checkpoint, JsonLog, entropy_step, optimizer_step, setup_runtime
from hfstream.train.data import PhotoCrops

CHECKPOINT = "fine.ckpt"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--graphics-share",
        type=float,
        default=0.0,
        help="share of crops from graphics made in code (media.graphics), not photos",
    )
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=256, help="crop side in px, a multiple of 128")
    p.add_argument("--lr", type=float, default=5e-5, help="the stream's learning rate")
    p.add_argument("--upsampler-lr", type=float, default=1e-4)
    p.add_argument("--source", default=str(DEFAULT_MODEL_DIR), help="model to start from")
    p.add_argument("--lmbda-lowest", type=float, default=0.0016, help="as stage continuous")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")


def source_modules(folder: str) -> tuple[ContinuousCodec, LearnedUpsampler]:
    """The stream and the up-sampler to start from: the ``fine`` ones of a model folder
    that has them, else its picture stream and its up-sampler."""
    bundle = load_model(folder)
    cfg, tensors = bundle.config, bundle.tensors
    if "upsampler" not in cfg:
        raise SystemExit(f"{folder}: the model has no learned up-sampler to start from")
    which = ("fine", "fine_upsampler") if "fine" in cfg else ("continuous", "upsampler")
    stream = ContinuousCodec(ContinuousConfig(**cfg[which[0]]))
    stream.load_state_dict(split_prefix(tensors, which[0]))
    upsampler = LearnedUpsampler(UpsamplerConfig(**cfg[which[1]]))
    upsampler.load_state_dict(split_prefix(tensors, which[1]))
    return stream, upsampler


def shown_picture(
    stream: ContinuousCodec, upsampler: torch.nn.Module, x: torch.Tensor, rung: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(bits (B,), the picture shown (B,3,S,S)) of coding crops ``x`` (B,3,S,S) at
    ``FINE`` at ``rung``: the 2x-down thumbnail coded, brought back at the coded size
    (2S) by the 4x up-sampler, then 2x box down, as the receiver shows it."""
    res = stream(F.avg_pool2d(x, 2), rung)
    coded_size = upsampler(res["x_hat"], res["y_hat"])
    return res["bits"], F.avg_pool2d(coded_size, 2)


def run(args: argparse.Namespace) -> None:
    if args.crop % 128 or args.crop <= 0:
        raise SystemExit(f"--crop must be a positive multiple of 128, got {args.crop}")
    if args.threads:
        torch.set_num_threads(args.threads)
    rt = setup_runtime(args.seed, args.device)
    out = Path(args.out)
    stream, upsampler = source_modules(args.source)
    stream, upsampler = stream.to(rt.device).train(), upsampler.to(rt.device).train()
    lmbdas = torch.tensor(ladder_lmbdas(stream.rungs, args.lmbda_lowest), device=rt.device)
    stream_params = [p for n, p in stream.named_parameters() if not n.endswith(".quantiles")]
    aux_params = [p for n, p in stream.named_parameters() if n.endswith(".quantiles")]
    groups = [
        {"params": stream_params, "base": args.lr},
        {"params": list(upsampler.parameters()), "base": args.upsampler_lr},
    ]
    main_params = [p for g in groups for p in g["params"]]
    opt = torch.optim.Adam([{**g, "lr": g["base"]} for g in groups])
    aux_opt = torch.optim.Adam(aux_params, lr=1e-3)
    ckpt = Checkpoint(out / CHECKPOINT)
    step = ckpt.resume(model=stream, upsampler=upsampler, opt=opt, aux_opt=aux_opt)
    data = PhotoCrops(
        args.data, args.crop, seed=args.seed + 3000 + step, graphics_share=args.graphics_share
    )
    rng = np.random.default_rng(args.seed + 13 * step)
    log = JsonLog(out / "fine.jsonl", rt.is_main)
    bar = tqdm(total=args.steps, initial=step, desc="fine")
    thumb_pixels = (args.crop // 2) ** 2
    stats: list[list[tuple[float, float]]] = [[] for _ in range(stream.rungs)]
    while step < args.steps:
        decay = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for g in opt.param_groups:
            g["lr"] = g["base"] * decay
        x = data.batch(args.batch).to(rt.device)
        rung = torch.from_numpy(rng.integers(stream.rungs, size=args.batch)).to(rt.device)
        bits, picture = shown_picture(stream, upsampler, x, rung)
        mse = ((picture - x) ** 2).flatten(1).mean(1)
        loss = (lmbdas[rung] * 255**2 * mse + bits / thumb_pixels).mean()
        optimizer_step(opt, loss, main_params)
        entropy_step(stream, aux_opt)
        step += 1
        bar.update(1)
        with torch.no_grad():
            bpp = (bits / x[0, 0].numel()).tolist()
            psnr = (-10 * torch.log10(mse.clamp(min=1e-10))).tolist()
        for r, b, p in zip(rung.tolist(), bpp, psnr, strict=True):
            stats[r].append((b, p))
        if step % 50 == 0:
            ladder = [np.mean(st, axis=0).round(4).tolist() if st else None for st in stats]
            bar.set_postfix_str(" ".join(f"{r[0]:.3f}/{r[1]:.1f}" for r in ladder if r))
            log.write(step=step, lr=args.lr * decay, loss=loss.item(), ladder=ladder)
            stats = [[] for _ in range(stream.rungs)]
        if step % 100 == 0 or step == args.steps:
            ckpt.save(
                step,
                {
                    "model": stream.state_dict(),
                    "upsampler": upsampler.state_dict(),
                    "opt": opt.state_dict(),
                    "aux_opt": aux_opt.state_dict(),
                },
                {"config": asdict(stream.config), "upsampler": asdict(upsampler.config)},
            )
    bar.close()
