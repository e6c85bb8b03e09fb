"""Stage ``predictor``: train the masked-token transformer on precomputed token maps.

The frozen tokenizer and continuous model turn random crops into (16x16 indices, ŷc)
pairs once, cached in ``OUT/tokens.pt``; training then never touches pixels. Each sample
gets one of three masks: a random share (MaskGIT's cosine law), a structured schedule
with extra random losses among the kept positions, or everything masked (the prior that
index coding uses).
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

from hfstream.codec.continuous import ContinuousCodec
from hfstream.codec.predictor import MaskedTokenPredictor, PredictorConfig
from hfstream.codec.schedules import Schedule, kept_mask
from hfstream.train.common import Checkpoint, JsonLog, optimizer_step, setup_runtime, wrap_ddp
from hfstream.train.data import PhotoCrops
from hfstream.train.frozen import load_continuous, load_tokenizer

STRUCTURED = (Schedule.HALF, Schedule.QUARTER, Schedule.NINTH, Schedule.SIXTEENTH)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--samples", type=int, default=8000, help="crops in the token cache")
    p.add_argument("--d-model", type=int, default=PredictorConfig.d_model)
    p.add_argument("--layers", type=int, default=PredictorConfig.layers)
    p.add_argument("--heads", type=int, default=PredictorConfig.heads)


@torch.no_grad()
def build_token_cache(args: argparse.Namespace, out: Path, device: torch.device) -> dict:
    path = out / "tokens.pt"
    if path.exists():
        return torch.load(path, weights_only=True)
    tokenizer = load_tokenizer(out).to(device)
    continuous = load_continuous(out).to(device)
    data = PhotoCrops(args.data, 256, seed=args.seed + 7)
    idx, lat = [], []
    for _ in tqdm(range(0, args.samples, 16), desc="token cache"):
        x = data.batch(16).to(device)
        idx.append(tokenizer.encode(x).flatten(1).short().cpu())
        rung = torch.randint(0, continuous.rungs, (x.shape[0],), device=device)  # every rung
        lat.append(continuous.quantized_latent(ContinuousCodec.downsample(x), rung).cpu())
    cache = {"indices": torch.cat(idx), "latents": torch.cat(lat)}
    torch.save(cache, path)
    return cache


def sample_masks(b: int, rng: np.random.Generator) -> torch.Tensor:
    """(b, 256) bool, True where the index is hidden from the predictor."""
    masks = np.zeros((b, 256), bool)
    for i in range(b):
        kind = rng.random()
        if kind < 0.4:
            ratio = math.cos(rng.random() * math.pi / 2)
            n = max(1, int(round(ratio * 256)))
            masks[i, rng.choice(256, n, replace=False)] = True
        elif kind < 0.85:
            keep = kept_mask(STRUCTURED[rng.integers(len(STRUCTURED))]).ravel().copy()
            lost = rng.random(256) < rng.uniform(0.0, 0.3)
            masks[i] = ~(keep & ~lost)
        else:
            masks[i] = True
    return torch.from_numpy(masks)


def run(args: argparse.Namespace) -> None:
    rt = setup_runtime(args.seed, args.device)
    out = Path(args.out)
    cache = build_token_cache(args, out, rt.device) if rt.is_main or rt.world == 1 else None
    if rt.world > 1:
        torch.distributed.barrier()
        cache = torch.load(out / "tokens.pt", weights_only=True)
    indices = cache["indices"].long()
    latents = cache["latents"]
    config = PredictorConfig(
        memory_dim=latents.shape[1],
        d_model=args.d_model,
        layers=args.layers,
        heads=args.heads,
    )
    model = MaskedTokenPredictor(config).to(rt.device)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "emb" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "emb" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
    )
    ckpt = Checkpoint(out / "predictor.ckpt")
    step = ckpt.resume(model=model, opt=opt)
    net = wrap_ddp(model, rt)
    rng = np.random.default_rng(args.seed + 1000 * rt.rank + step)
    n_val = min(256, len(indices) // 10)
    val_idx, val_lat = indices[:n_val], latents[:n_val]
    train_idx, train_lat = indices[n_val:], latents[n_val:]
    log = JsonLog(out / "predictor.jsonl", rt.is_main)
    bar = tqdm(total=args.steps, initial=step, desc="predictor", disable=not rt.is_main)
    while step < args.steps:
        warm = min(1.0, (step + 1) / 150)
        lr = args.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        pick = torch.from_numpy(rng.integers(0, len(train_idx), args.batch))
        target = train_idx[pick].to(rt.device)
        y_hat = train_lat[pick].to(rt.device)
        mask = sample_masks(args.batch, rng).to(rt.device)
        inp = torch.where(mask, torch.full_like(target, config.vocab), target)
        logits = net(inp, y_hat)
        loss = F.cross_entropy(logits[mask], target[mask])
        optimizer_step(opt, loss, model.parameters())
        step += 1
        bar.update(1)
        if step % 25 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
            record = {"step": step, "loss": loss.item()}
            if step % 250 == 0:
                record.update(evaluate(model, val_idx.to(rt.device), val_lat.to(rt.device)))
            log.write(**record)
        if rt.is_main and (step % 100 == 0 or step == args.steps):
            ckpt.save(
                step,
                {"model": model.state_dict(), "opt": opt.state_dict()},
                {"config": asdict(config)},
            )
    bar.close()


@torch.no_grad()
def evaluate(model: MaskedTokenPredictor, idx: torch.Tensor, lat: torch.Tensor) -> dict:
    """Held-out accuracy at 1_4 and bits/index of the all-masked prior."""
    model.eval()
    keep = torch.from_numpy(kept_mask(Schedule.QUARTER).ravel()).to(idx.device)
    inp = torch.where(keep, idx, torch.full_like(idx, model.mask_id))
    acc = (model(inp, lat).argmax(-1) == idx)[:, ~keep].float().mean().item()
    prior = F.log_softmax(model.prior_logits(lat), dim=-1)
    nll = -prior.gather(-1, idx[..., None]).mean().item() / math.log(2)
    model.train()
    return {"val_acc_1_4": acc, "val_prior_bits": nll}
