"""Stage ``average``: one checkpoint whose weights are the mean of several (weight averaging).

Snapshots of one run taken at a constant learning rate (``correction --constant-lr
--snapshot-every N``) sit around a minimum; their mean usually lies nearer its centre
and decodes better than any one of them. The result is written as ``OUT/STAGE.ckpt``
(the model alone, no optimiser state), ready for ``export``; the one it replaces is kept
as ``STAGE.before-average.ckpt``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from hfstream.train.common import Checkpoint


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoints", nargs="+", help="checkpoints of one stage to average")
    p.add_argument(
        "--into", default="correction", help="the stage whose checkpoint the mean replaces"
    )


def average_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Mean of each floating-point tensor; other tensors (counters) from the last state."""
    keys = set(states[0])
    for i, s in enumerate(states[1:], 1):
        if set(s) != keys:
            raise SystemExit(f"checkpoint {i + 1} holds other tensors than the first")
    out = {}
    for k in states[-1]:
        shapes = {tuple(s[k].shape) for s in states}
        if len(shapes) != 1:
            raise SystemExit(f"tensor {k} has different shapes across checkpoints: {shapes}")
        if states[-1][k].is_floating_point():
            out[k] = torch.stack([s[k].float() for s in states]).mean(0).to(states[-1][k].dtype)
        else:
            out[k] = states[-1][k]
    return out


def run(args: argparse.Namespace) -> None:
    if len(args.checkpoints) < 2:
        raise SystemExit("average needs at least two checkpoints")
    loaded = []
    for path in args.checkpoints:
        ckpt = Checkpoint(Path(path))
        if not ckpt.exists():
            raise SystemExit(f"no checkpoint at {path}")
        loaded.append(ckpt.load())
    mean = average_states([c["states"]["model"] for c in loaded])
    target = Checkpoint(Path(args.out) / f"{args.into}.ckpt")
    if target.exists():
        os.replace(target.path, target.path.with_name(f"{args.into}.before-average.ckpt"))
    step = max(int(c["step"]) for c in loaded)
    target.save(step, {"model": mean}, loaded[-1]["args"])
    print(f"wrote {target.path}: mean of {len(loaded)} checkpoints")
