"""Stage ``pack``: write a stage's checkpoint as a portable safetensors file to commit.

``pack --of continuous --out runs/x`` writes ``hfstream/train/checkpoints/continuous
.safetensors`` (or ``--to FILE``): float16 weights, bfloat16 optimiser moments, the step
and the stage's arguments. ``unpack`` turns it back into ``OUT/STAGE.ckpt`` on another
machine, and training resumes from there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hfstream.train.common import Checkpoint
from hfstream.train.portable import save_portable

PACKED_DIR = Path(__file__).resolve().parent / "checkpoints"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--of", default="continuous", metavar="STAGE", help="the stage to pack")
    p.add_argument("--to", type=Path, help="output file (default: hfstream/train/checkpoints/)")


def run(args: argparse.Namespace) -> None:
    ckpt = Checkpoint(Path(args.out) / f"{args.of}.ckpt")
    if not ckpt.exists():
        raise SystemExit(f"{ckpt.path} not found: nothing to pack")
    state = ckpt.load()
    target = args.to or PACKED_DIR / f"{args.of}.safetensors"
    save_portable(state, target)
    size = target.stat().st_size / 1e6
    print(f"packed {ckpt.path} (step {state['step']}) into {target}, {size:.1f} MB")
