"""Stage ``continuous``: train the continuous stream and its rate ladder.

Recipe (chosen for a 2-core CPU, where every step counts):

- crops of ``--crop`` px (default 512, i.e. 2x2 patches), so that the frame-wide
  analysis and synthesis learn what lies across patch borders; the hyperprior still
  codes each patch's 4x4 latent block on its own, as at decode time;
- each sample is drawn at a random rung and scored with that rung's λ: one network
  learns every rung (gain vectors, see ``hfstream.codec.continuous``);
- the distortion is measured where the viewer sees it: the synthesised thumbnail,
  up-sampled bicubic, against the full-resolution crop. The codec learns to pre-sharpen
  for the up-sampler instead of matching a box-filtered thumbnail;
- rate from noisy latents, synthesis from rounded ones (straight-through);
- Adam with a cosine decay to a tenth of ``--lr`` over ``--steps``, so a run can be
  resumed with a larger ``--steps`` to go on.

``init`` (weights of a shipped single-rate model) gives a warm start: its transforms are
kept and the rung gains start around them.

``--only-rungs 0 1`` trains those rungs' gain vectors alone, every other weight frozen:
rungs added under a shipped model's lowest (``extend``, then ``init``) learn their own
per-channel gains while every trained rung codes the very same strings as before, and the
up-sampler, predictor and refiner tuned on them stay valid.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hfstream.codec.continuous import ContinuousCodec, ContinuousConfig, ladder_lmbdas
from hfstream.train.common import (
    Checkpoint,
    JsonLog,
    entropy_step,
    optimizer_step,
    setup_runtime,
    wrap_ddp,
)
from hfstream.train.data import PhotoCrops


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--graphics-share",
        type=float,
        default=0.0,
        help="share of crops from graphics made in code (media.graphics), not photos",
    )
    p.add_argument("--steps", type=int, default=12000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=512, help="crop side in px, a multiple of 256")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--rungs", type=int, default=6, help="rungs of the rate ladder")
    p.add_argument(
        "--lmbda-lowest",
        type=float,
        default=0.0016,
        help="λ of the lowest rung (on 0-255 MSE); each rung doubles it",
    )
    p.add_argument("--n", type=int, default=ContinuousConfig.n)
    p.add_argument("--m", type=int, default=ContinuousConfig.m)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument(
        "--only-rungs",
        type=int,
        nargs="+",
        help="train these rungs' gains alone, every other weight frozen",
    )


def _gains_only(model: ContinuousCodec, rungs: list[int]) -> list[torch.Tensor]:
    """Freeze every weight but the gain tables, and mask their gradients to ``rungs``'
    rows: Adam's moments stay zero on the other rows, so those never move."""
    if model.rungs == 1:
        raise SystemExit("--only-rungs needs a model with a rate ladder")
    for p in model.parameters():
        p.requires_grad_(False)
    mask = torch.zeros(model.rungs, 1, device=model.gain.device)
    mask[rungs] = 1.0
    for table in (model.gain, model.inverse_gain):
        table.requires_grad_(True)
        table.register_hook(lambda g: g * mask)
    return [model.gain, model.inverse_gain]


def run(args: argparse.Namespace) -> None:
    if args.crop % 256 or args.crop <= 0:
        raise SystemExit(f"--crop must be a positive multiple of 256, got {args.crop}")
    if args.threads:
        torch.set_num_threads(args.threads)
    rt = setup_runtime(args.seed, args.device)
    out = Path(args.out)
    ckpt = Checkpoint(out / "continuous.ckpt")
    # A run started by ``init`` from a model with rungs added below keeps its default rung.
    default_rung = ckpt.load()["args"].get("default_rung", 1) if ckpt.exists() else 1
    config = ContinuousConfig(n=args.n, m=args.m, rungs=args.rungs, default_rung=default_rung)
    model = ContinuousCodec(config).to(rt.device)
    lmbdas = torch.tensor(ladder_lmbdas(args.rungs, args.lmbda_lowest), device=rt.device)
    main_params = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux_params = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    rungs_trained = list(range(args.rungs))
    if args.only_rungs:
        rungs_trained = sorted({model.check_rung(r) for r in args.only_rungs})
        main_params, aux_params = _gains_only(model, rungs_trained), []
    opt = torch.optim.Adam(main_params, lr=args.lr)
    aux_opt = torch.optim.Adam(aux_params or [torch.zeros(1, requires_grad=True)], lr=1e-3)
    # The optimisers' states resume only a run that trained the same parameters.
    saved = ckpt.load()["args"].get("only_rungs") if ckpt.exists() else None
    same = saved == (rungs_trained if args.only_rungs else None)
    step = ckpt.resume(model=model, **({"opt": opt, "aux_opt": aux_opt} if same else {}))
    net = wrap_ddp(model, rt)
    data = PhotoCrops(
        args.data,
        args.crop,
        seed=args.seed + 1000 * rt.rank + step,
        graphics_share=args.graphics_share,
    )
    rng = np.random.default_rng(args.seed + 7 * step + rt.rank)
    log = JsonLog(out / "continuous.jsonl", rt.is_main)
    bar = tqdm(total=args.steps, initial=step, desc="continuous", disable=not rt.is_main)
    stats: list[list[tuple[float, float]]] = [[] for _ in range(args.rungs)]
    skipped = 0  # steps whose gradients were not finite (``optimizer_step``)
    while step < args.steps:
        lr = args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        x = data.batch(args.batch).to(rt.device)
        rung = torch.from_numpy(rng.choice(rungs_trained, size=args.batch)).to(rt.device)
        low = ContinuousCodec.downsample(x)
        res = net(low, rung)
        seen = ContinuousCodec.upsample(res["x_hat"])
        mse = ((seen - x) ** 2).flatten(1).mean(1)  # (B,)
        bpp_low = res["bits"] / low[0, 0].numel()  # bits per thumbnail pixel
        loss = (lmbdas[rung] * 255**2 * mse + bpp_low).mean()
        skipped += not optimizer_step(opt, loss, main_params)
        if aux_params:
            entropy_step(model, aux_opt)
        step += 1
        bar.update(1)
        with torch.no_grad():
            bpp = (res["bits"] / x[0, 0].numel()).tolist()
            psnr = (-10 * torch.log10(mse.clamp(min=1e-10))).tolist()
        for r, b, p in zip(rung.tolist(), bpp, psnr, strict=True):
            stats[r].append((b, p))
        if step % 100 == 0:
            ladder = [np.mean(st, axis=0).round(4).tolist() if st else None for st in stats]
            bar.set_postfix_str(" ".join(f"{r[0]:.3f}/{r[1]:.1f}" for r in ladder if r))
            log.write(step=step, lr=lr, loss=loss.item(), ladder=ladder, skipped=skipped)
            stats = [[] for _ in range(args.rungs)]
        if rt.is_main and (step % 250 == 0 or step == args.steps):
            ckpt.save(
                step,
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "aux_opt": aux_opt.state_dict(),
                },
                {
                    "n": args.n,
                    "m": args.m,
                    "rungs": args.rungs,
                    "default_rung": default_rung,
                    "lmbda_lowest": args.lmbda_lowest,
                    "only_rungs": rungs_trained if args.only_rungs else None,
                },
            )
    bar.close()
