"""Stage ``unpack``: restore ``OUT/STAGE.ckpt`` from a file written by ``pack``.

A checkpoint already in ``OUT`` at the same step or a later one is kept (pass ``--force``
to replace it), so unpacking never throws away training done since the pack.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hfstream.train.common import Checkpoint
from hfstream.train.portable import load_portable
from hfstream.train.stage_pack import PACKED_DIR


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--of", default="continuous", metavar="STAGE", help="the stage to restore")
    p.add_argument("--source", type=Path, help="packed file (default: the committed one)")
    p.add_argument("--force", action="store_true", help="replace a newer checkpoint")


def run(args: argparse.Namespace) -> None:
    source = args.source or PACKED_DIR / f"{args.of}.safetensors"
    try:
        state = load_portable(source)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(str(e)) from e
    ckpt = Checkpoint(Path(args.out) / f"{args.of}.ckpt")
    if ckpt.exists() and not args.force:
        have = int(ckpt.load()["step"])
        if have >= state["step"]:
            print(f"{ckpt.path} is at step {have} >= {state['step']}: kept (--force replaces it)")
            return
    ckpt.save(state["step"], state["states"], state["args"])
    print(f"restored {ckpt.path} at step {state['step']} from {source}")
