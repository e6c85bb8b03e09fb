"""Stage ``temporal``: train the temporal synthesis (``hfstream.codec.temporal_synthesis``)
on the shards of ``temporal-data``.

Each step cuts random crops around the coded pixels of random predicted frames and
scores the network's output against the frame with the squared error over those coded
pixels alone (the only ones it changes). The decoder, the motion and the plan are those
the stream used, so the network learns on what it will meet. Adam with a cosine decay to
a tenth of ``--lr`` over ``--steps``; resumable from ``OUT/temporal.ckpt``. The log
gives the gain in dB over the decoded picture on the crops of each logging interval.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hfstream.codec.temporal_synthesis import TemporalConfig, TemporalSynthesis
from hfstream.train.common import Checkpoint, JsonLog, optimizer_step, setup_runtime
from hfstream.train.temporal_data import SHARD_DIR

KEYS = ("image", "decoded", "moved", "mask")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--width", type=int, default=TemporalConfig.width)
    p.add_argument("--blocks", type=int, default=TemporalConfig.blocks)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")


def load_samples(folder: Path) -> list[dict[str, np.ndarray]]:
    """Every sample of every shard under ``folder`` (plain arrays: no pickle)."""
    samples = []
    for shard in sorted(folder.glob("*.npz")):
        with np.load(shard, allow_pickle=False) as data:
            count = sum(1 for k in data.files if k.startswith("mask"))
            samples += [{k: data[f"{k}{i}"] for k in KEYS} for i in range(count)]
    return samples


class CodedCrops:
    """Random crops of ``crop`` px centred near a coded pixel of a random sample."""

    def __init__(self, samples: list[dict[str, np.ndarray]], crop: int, seed: int) -> None:
        self.samples = [s for s in samples if min(s["mask"].shape) >= crop and s["mask"].any()]
        if not self.samples:
            raise SystemExit(f"no sample is {crop} px on its short side with a coded pixel")
        self.coded = [np.flatnonzero(s["mask"]) for s in self.samples]
        self.crop = crop
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> tuple[torch.Tensor, ...]:
        """(image, decoded, moved, mask) (n,C,crop,crop) floats in [0,1]."""
        out: list[list[np.ndarray]] = [[] for _ in KEYS]
        for _ in range(n):
            k = int(self.rng.integers(len(self.samples)))
            s = self.samples[k]
            h, w = s["mask"].shape
            y, x = divmod(int(self.rng.choice(self.coded[k])), w)
            y0 = int(np.clip(y - self.crop // 2, 0, h - self.crop))
            x0 = int(np.clip(x - self.crop // 2, 0, w - self.crop))
            for j, key in enumerate(KEYS):
                a = s[key][y0 : y0 + self.crop, x0 : x0 + self.crop]
                out[j].append(a[..., None] if a.ndim == 2 else a)
        return tuple(
            torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).float().div_(255 if i < 3 else 1)
            for i, a in enumerate(out)
        )


def run(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    rt = setup_runtime(args.seed, args.device)
    out = Path(args.out)
    samples = load_samples(out / SHARD_DIR)
    print(f"{len(samples)} predicted frames from {out / SHARD_DIR}")
    config = TemporalConfig(width=args.width, blocks=args.blocks)
    model = TemporalSynthesis(config).to(rt.device).train()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    ckpt = Checkpoint(out / "temporal.ckpt")
    step = ckpt.resume(model=model, opt=opt)
    data = CodedCrops(samples, args.crop, seed=args.seed + 3000 + step)
    log = JsonLog(out / "temporal.jsonl", rt.is_main)
    bar = tqdm(total=args.steps, initial=step, desc="temporal")
    gains: list[float] = []
    while step < args.steps:
        decay = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for g in opt.param_groups:
            g["lr"] = args.lr * decay
        image, decoded, moved, mask = (t.to(rt.device) for t in data.batch(args.batch))
        picture = model(decoded, moved)
        weight = mask.sum().clamp(min=1)
        loss = (((picture - image) ** 2) * mask).sum() / (3 * weight)
        optimizer_step(opt, loss, list(model.parameters()))
        step += 1
        bar.update(1)
        with torch.no_grad():
            before = (((decoded - image) ** 2) * mask).sum() / (3 * weight)
            after = (((picture.clamp(0, 1) - image) ** 2) * mask).sum() / (3 * weight)
            gains.append(10 * math.log10(before.item() / max(after.item(), 1e-12)))
        if step % 50 == 0:
            gain = float(np.mean(gains))
            bar.set_postfix_str(f"gain {gain:+.2f} dB")
            log.write(step=step, lr=args.lr * decay, loss=loss.item(), gain_db=gain)
            gains = []
        if step % 100 == 0 or step == args.steps:
            ckpt.save(
                step,
                {"model": model.state_dict(), "opt": opt.state_dict()},
                {"config": asdict(config)},
            )
    bar.close()
