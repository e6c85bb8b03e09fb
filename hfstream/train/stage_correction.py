"""Stage ``correction``: train the correction decoder with the VQ decoder frozen.

The correction decoder meets, at decode time, index maps that are partly guessed: the
withheld indices filled by the predictor (or by the naive fill, or as soft expected
code vectors) and, for a preview, nothing sent at all. It is trained on the same mix, so
that it learns how far to trust the indices and when to lean on ŷc instead:

- ``truth``: every index as the tokenizer gives it;
- ``predicted``: a structured schedule (or nothing) kept, a few kept indices lost too,
  the rest filled by the frozen predictor's arg-max — what ``decode()`` does by default;
- ``soft``: the same, the withheld positions given the predictor's expected code vector;
- ``nearest``: the same, filled with the nearest kept index.

With ``--crop 512`` (or any multiple of 256) a sample is several patches, coded apart as
at encode time (indices, ŷc blocks and fills per patch) and decoded frame-wide as
``decode()`` does: the decoders run over the whole map with per-patch normalisation
(``hfstream.codec.tiling``), so they learn to join patches without seams.
``--vq-decoder-lr`` also fine-tunes the VQ decoder on that frame-wide pass; part of each
batch (``--plain-share``) is then decoded without the correction branch, so the VQ-only
mode keeps its quality.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import piq
import torch
import torch.nn.functional as F
from tqdm import tqdm

from hfstream.codec.continuous import ContinuousCodec, from_blocks
from hfstream.codec.correction import CorrectionDecoder, certainty_planes
from hfstream.codec.fills import nearest_fill
from hfstream.codec.predictor import MaskedTokenPredictor
from hfstream.codec.schedules import Schedule, kept_mask
from hfstream.codec.tiling import from_tiles, patch_grid, to_tiles
from hfstream.codec.tokenizer import Tokenizer
from hfstream.train.common import Checkpoint, JsonLog, optimizer_step, setup_runtime, wrap_ddp
from hfstream.train.data import PhotoCrops
from hfstream.train.frozen import load_continuous, load_predictor, load_tokenizer

FILL_SCHEDULES = (Schedule.HALF, Schedule.QUARTER, Schedule.NINTH, Schedule.SIXTEENTH, None)
FILL_KINDS = ("truth", "predicted", "soft", "nearest")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=6)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument(
        "--constant-lr",
        action="store_true",
        help="keep --lr instead of the cosine decay (for snapshots to average, see 'average')",
    )
    p.add_argument(
        "--snapshot-every",
        type=int,
        default=0,
        metavar="N",
        help="also keep correction.stepN.ckpt every N steps (0: never)",
    )
    p.add_argument("--crop", type=int, default=256, help="crop side in px, a multiple of 256")
    p.add_argument(
        "--vq-decoder-lr",
        type=float,
        default=0.0,
        help="also fine-tune the VQ decoder at this rate (0: frozen)",
    )
    p.add_argument(
        "--plain-share",
        type=float,
        default=0.25,
        help="with --vq-decoder-lr, the share of samples decoded without the correction",
    )
    p.add_argument("--msssim-weight", type=float, default=0.5)
    p.add_argument(
        "--fill-mix",
        type=float,
        nargs=4,
        default=(0.25, 0.45, 0.15, 0.15),
        metavar=("TRUTH", "PREDICTED", "SOFT", "NEAREST"),
        help="shares of samples coded with each kind of index map (see the module doc)",
    )


def run(args: argparse.Namespace) -> None:
    rt = setup_runtime(args.seed, args.device)
    out = Path(args.out)
    tokenizer = load_tokenizer(out).to(rt.device)
    continuous = load_continuous(out).to(rt.device)
    predictor = load_predictor(out)
    if predictor is None:
        print("no predictor checkpoint: predicted and soft fills fall back to the nearest fill")
    else:
        predictor = predictor.to(rt.device)
    mix = np.asarray(args.fill_mix, float)
    if mix.min() < 0 or mix.sum() <= 0:
        raise SystemExit(f"--fill-mix needs non-negative shares, got {args.fill_mix}")
    mix = mix / mix.sum()
    if args.crop % 256 or args.crop <= 0:
        raise SystemExit(f"--crop must be a positive multiple of 256, got {args.crop}")
    side = args.crop // 256
    model = CorrectionDecoder(tokenizer.decoder, continuous.config.m).to(rt.device)
    groups = [{"params": list(model.parameters()), "lr": args.lr, "base": args.lr}]
    vq_decoder = tokenizer.decoder
    if args.vq_decoder_lr > 0:
        vq_decoder.train()
        for prm in vq_decoder.parameters():
            prm.requires_grad_(True)
        base = args.vq_decoder_lr
        groups.append({"params": list(vq_decoder.parameters()), "lr": base, "base": base})
    opt = torch.optim.Adam(groups)
    ckpt = Checkpoint(out / "correction.ckpt")
    step = ckpt.resume(model=model, opt=opt, vq_decoder=vq_decoder)
    net = wrap_ddp(model, rt)
    data = PhotoCrops(args.data, args.crop, seed=args.seed + 1000 * rt.rank + step)
    rng = np.random.default_rng(args.seed + step)
    log = JsonLog(out / "correction.jsonl", rt.is_main)
    bar = tqdm(total=args.steps, initial=step, desc="correction", disable=not rt.is_main)
    trained = list(model.parameters()) + (
        list(vq_decoder.parameters()) if args.vq_decoder_lr > 0 else []
    )
    while step < args.steps:
        scale = 1.0
        if not args.constant_lr:
            scale = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for g in opt.param_groups:
            g["lr"] = g["base"] * scale
        x = data.batch(args.batch).to(rt.device)
        with torch.no_grad():
            q, certainty, y_hat, low = frame_inputs(
                tokenizer, continuous, predictor, x, rng=rng, mix=mix
            )
        with patch_grid(side, side):
            if args.vq_decoder_lr > 0:
                plain_rows = torch.from_numpy(rng.random(x.shape[0]) < args.plain_share)
            else:
                plain_rows = torch.zeros(x.shape[0], dtype=torch.bool)
            feats = net(y_hat, low, q, certainty)
            keep = (~plain_rows).float().to(rt.device).reshape(-1, 1, 1, 1)
            feats = [f * keep for f in feats]
            x_hat = vq_decoder(q, feats)
            with torch.no_grad():
                plain = vq_decoder(q).clamp(0, 1)
        l1 = F.l1_loss(x_hat, x)
        msssim = piq.multi_scale_ssim(x_hat.clamp(0, 1), x, data_range=1.0)
        loss = l1 + args.msssim_weight * (1 - msssim)
        optimizer_step(opt, loss, trained)
        step += 1
        bar.update(1)
        if step % 25 == 0:
            psnr = -10 * math.log10(max(F.mse_loss(x_hat.clamp(0, 1), x).item(), 1e-10))
            psnr_vq = -10 * math.log10(max(F.mse_loss(plain, x).item(), 1e-10))
            bar.set_postfix(psnr=f"{psnr:.2f}", vq=f"{psnr_vq:.2f}")
            log.write(step=step, psnr=psnr, psnr_vq=psnr_vq, msssim=msssim.item())
        states = {"model": model.state_dict(), "opt": opt.state_dict()}
        if args.vq_decoder_lr > 0:
            states["vq_decoder"] = vq_decoder.state_dict()
        if rt.is_main and (step % 100 == 0 or step == args.steps):
            ckpt.save(step, states, {"crop": args.crop})
        if rt.is_main and args.snapshot_every and step % args.snapshot_every == 0:
            snap = {k: v for k, v in states.items() if k != "opt"}
            Checkpoint(out / f"correction.step{step}.ckpt").save(step, snap, {})
    bar.close()


@torch.no_grad()
def frame_inputs(
    tokenizer: Tokenizer,
    continuous: ContinuousCodec,
    predictor: MaskedTokenPredictor | None,
    x: torch.Tensor,
    *,
    rng: np.random.Generator,
    mix: np.ndarray,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The decoder inputs of a batch of crops (B,3,256R,256R), each patch coded apart
    as at encode time, at a random rung per crop: code vectors (B,D,16R,16R), certainty
    (B,2,16R,16R), ŷc (B,M,4R,4R) and its frame-wide picture (B,3,64R,64R)."""
    side = x.shape[-1] // 256
    patches = to_tiles(x, side, side)  # (B*R*R, 3, 256, 256)
    idx = tokenizer.encode(patches)
    rung = torch.from_numpy(rng.integers(0, continuous.rungs, size=x.shape[0]))
    blocks = continuous.quantized_latent(ContinuousCodec.downsample(x), rung.to(x.device))
    q, certainty = training_codes(tokenizer, predictor, idx, blocks, rng=rng, mix=mix)
    y_hat = from_blocks(blocks, side, side)
    low = continuous.synthesize(y_hat)
    return from_tiles(q, side, side), from_tiles(certainty, side, side), y_hat, low


@torch.no_grad()
def training_codes(
    tokenizer: Tokenizer,
    predictor: MaskedTokenPredictor | None,
    idx: torch.Tensor,
    y_hat: torch.Tensor,
    *,
    rng: np.random.Generator,
    mix: np.ndarray,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Code vectors (B, D, 16, 16) for a batch, each sample's map made by a kind drawn
    from ``mix`` (shares of ``FILL_KINDS``), and their certainty planes (B, 2, 16, 16)
    as ``decode()`` computes them."""
    b = idx.shape[0]
    flat = idx.flatten(1)
    kinds = rng.choice(len(FILL_KINDS), size=b, p=mix)
    known = torch.ones_like(flat, dtype=torch.bool)
    for i in range(b):
        if FILL_KINDS[kinds[i]] != "truth":
            sched = FILL_SCHEDULES[rng.integers(len(FILL_SCHEDULES))]
            keep = np.zeros(256, bool) if sched is None else kept_mask(sched).ravel().copy()
            keep &= rng.random(256) >= rng.uniform(0.0, 0.2)  # some kept indices lost too
            known[i] = torch.from_numpy(keep)
    filled = flat.clone()
    confidence = torch.zeros(flat.shape, device=flat.device)
    probs = None
    if predictor is not None and (kinds > 0).any():
        logits = predictor(torch.where(known, flat, predictor.mask_id), y_hat)
        probs = torch.softmax(logits.float(), dim=-1)
    for i in range(b):
        kind = FILL_KINDS[kinds[i]]
        if kind == "truth":
            continue
        if kind == "nearest" or probs is None:
            kept = np.where(known[i].cpu().numpy(), flat[i].cpu().numpy(), -1)
            if (kept >= 0).any():
                filled[i] = torch.from_numpy(nearest_fill(kept)).to(flat.device)
            elif probs is not None:
                confidence[i], filled[i] = probs[i].max(-1)
        else:
            confidence[i], best = probs[i].max(-1)
            filled[i] = torch.where(known[i], flat[i], best)
    q = tokenizer.codebook.embed(filled.reshape(idx.shape))
    if probs is not None:
        soft = [i for i in range(b) if FILL_KINDS[kinds[i]] == "soft"]
        if soft:
            sel = torch.tensor(soft, device=idx.device)
            expected = (probs[sel] @ tokenizer.codebook.normalized()).transpose(1, 2)
            expected = expected.reshape(len(soft), -1, *idx.shape[1:])
            keep4 = known[sel].reshape(len(soft), 1, *idx.shape[1:])
            q[sel] = torch.where(keep4, q[sel], expected)
    return q, certainty_planes(known, confidence)
