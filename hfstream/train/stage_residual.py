"""Stage ``residual``: train the continuous stream that codes residual predicted frames.

A residual frame's coded patches carry ``codec.temporal.residual_picture``: the frame
minus its reference moved by the patch's motion, halved and centred on mid-grey. The
picture stream was trained on photos, and such a picture is mostly flat grey with
sparse edges, so it spends bytes on it badly (docs/notebook/video.md). This stage trains
a stream of the same architecture on differences alone, on the shards of
``temporal-data`` (each sample keeps the frame and its moved reference, as the stream
coded them). It starts from the residual stream of ``--source`` (the shipped model)
where that has one, so training goes on from the shipped weights, and else from its
picture stream.

Recipe, as stage ``continuous`` but on differences:

- each sample is a 512 px difference at the full size (thumbnail 4x down) or a 256 px
  one at ``FINE`` (thumbnail 2x down), both a 128 px thumbnail (``--thumb``), cut on
  the coded patch grid;
- a random rung per sample, scored with that rung's λ on the error of the *frame*
  (twice the difference, so four times its squared error): a residual rung and a picture
  rung then trade bytes for error at the same slope, which is what the planner compares;
- the thumbnail is brought back bicubic (and 2x box down at ``FINE``), as the decoder
  shows a residual frame: the learned up-sampler is the picture stream's and is not used.

Adam with a cosine decay; resumable from ``OUT/residual.ckpt``.
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
from hfstream.codec.temporal import RESIDUAL_GAIN, RESIDUAL_INTERPOLATION
from hfstream.train.common import Checkpoint, JsonLog, entropy_step, optimizer_step, setup_runtime
from hfstream.train.temporal_data import SHARD_DIR

KEYS = ("image", "moved")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--thumb", type=int, default=128, help="thumbnail side of a sample, px")
    p.add_argument("--fine-share", type=float, default=0.5, help="share of FINE samples")
    p.add_argument("--shards", nargs="*", help=f"shard folders (default: OUT/{SHARD_DIR})")
    p.add_argument("--source", default=str(DEFAULT_MODEL_DIR), help="model to start from")
    p.add_argument("--lmbda-lowest", type=float, default=0.0016, help="as stage continuous")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")


def load_pairs(folders: list[Path], side: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(frame, moved reference) of every predicted frame of at least ``side`` px in the
    shards (plain arrays: no pickle)."""
    pairs = []
    for folder in folders:
        for shard in sorted(folder.glob("*.npz")):
            with np.load(shard, allow_pickle=False) as data:
                count = sum(1 for k in data.files if k.startswith("mask"))
                pairs += [(data[f"image{i}"], data[f"moved{i}"]) for i in range(count)]
    return [p for p in pairs if min(p[0].shape[:2]) >= side]


class Differences:
    """Random differences (float, [0, 1], mid-grey for none) at either scale."""

    def __init__(self, pairs: list[tuple[np.ndarray, np.ndarray]], thumb: int, seed: int) -> None:
        if not pairs:
            raise SystemExit(f"no predicted frame of at least {4 * thumb} px in the shards")
        self.pairs = pairs
        self.thumb = thumb
        self.rng = np.random.default_rng(seed)

    def sample(self, fine: bool) -> torch.Tensor:
        """(3, side, side): 4 thumbnails' side at the full size, 2 at ``FINE``, on the
        coded patch grid of either (the patch's side as shown: 256 px, or 128 px)."""
        image, moved = self.pairs[int(self.rng.integers(len(self.pairs)))]
        side = (2 if fine else 4) * self.thumb
        step = 128 if fine else 256
        h, w = image.shape[:2]
        y = step * int(self.rng.integers(max(h - side, 0) // step + 1))
        x = step * int(self.rng.integers(max(w - side, 0) // step + 1))
        a = torch.from_numpy(image[y : y + side, x : x + side]).float()
        b = torch.from_numpy(moved[y : y + side, x : x + side]).float()
        return ((a - b) / (RESIDUAL_GAIN * 255) + 0.5).clamp(0, 1).permute(2, 0, 1)


def source_stream(folder: str) -> ContinuousCodec:
    """The stream to start from: the residual stream of a model folder that has one
    (training goes on from it), else its picture stream."""
    bundle = load_model(folder)
    which = "residual" if "residual" in bundle.config else "continuous"
    model = ContinuousCodec(ContinuousConfig(**bundle.config[which]))
    model.load_state_dict(split_prefix(bundle.tensors, which))
    return model


def shown_error(
    model: torch.nn.Module, diff: torch.Tensor, rung: torch.Tensor, *, fine: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(bits (B,), squared error of the frame (B,)) of coding ``diff`` (B,3,S,S) at
    ``rung``, at ``FINE`` or else at the full size."""
    res = model(F.avg_pool2d(diff, 2 if fine else 4), rung)
    # Scored as the decoder shows a difference.
    seen = ContinuousCodec.upsample(res["x_hat"], RESIDUAL_INTERPOLATION)
    if fine:
        seen = F.avg_pool2d(seen, 2)
    return res["bits"], ((seen - diff) ** 2).flatten(1).mean(1) * RESIDUAL_GAIN**2


def run(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    rt = setup_runtime(args.seed, args.device)
    out = Path(args.out)
    folders = [Path(f) for f in args.shards] if args.shards else [out / SHARD_DIR]
    model = source_stream(args.source).to(rt.device).train()
    lmbdas = torch.tensor(ladder_lmbdas(model.rungs, args.lmbda_lowest), device=rt.device)
    main_params = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux_params = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    opt = torch.optim.Adam(main_params, lr=args.lr)
    aux_opt = torch.optim.Adam(aux_params, lr=1e-3)
    ckpt = Checkpoint(out / "residual.ckpt")
    step = ckpt.resume(model=model, opt=opt, aux_opt=aux_opt)
    pairs = load_pairs(folders, 4 * args.thumb)
    print(f"{len(pairs)} predicted frames from {', '.join(map(str, folders))}")
    data = Differences(pairs, args.thumb, seed=args.seed + 5000 + step)
    rng = np.random.default_rng(args.seed + 11 * step)
    log = JsonLog(out / "residual.jsonl", rt.is_main)
    bar = tqdm(total=args.steps, initial=step, desc="residual")
    stats: list[list[tuple[float, float]]] = [[] for _ in range(model.rungs)]
    while step < args.steps:
        lr = args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        fine = bool(rng.random() < args.fine_share)  # one scale per batch: one size
        diff = torch.stack([data.sample(fine) for _ in range(args.batch)]).to(rt.device)
        rung = torch.from_numpy(rng.integers(model.rungs, size=args.batch)).to(rt.device)
        bits, mse = shown_error(model, diff, rung, fine=fine)
        bpp_low = bits / args.thumb**2
        loss = (lmbdas[rung] * 255**2 * mse + bpp_low).mean()
        optimizer_step(opt, loss, main_params)
        entropy_step(model, aux_opt)
        step += 1
        bar.update(1)
        with torch.no_grad():
            psnr = (-10 * torch.log10(mse.clamp(min=1e-10))).tolist()
        for r, b, p in zip(rung.tolist(), bits.tolist(), psnr, strict=True):
            stats[r].append((b / 8, p))
        if step % 50 == 0:
            ladder = [np.mean(st, axis=0).round(2).tolist() if st else None for st in stats]
            bar.set_postfix_str(" ".join(f"{r[0]:.0f}B/{r[1]:.1f}" for r in ladder if r))
            log.write(step=step, lr=lr, loss=loss.item(), ladder=ladder)
            stats = [[] for _ in range(model.rungs)]
        if step % 100 == 0 or step == args.steps:
            ckpt.save(
                step,
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "aux_opt": aux_opt.state_dict(),
                },
                {"config": asdict(model.config)},
            )
    bar.close()
