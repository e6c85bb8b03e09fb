"""``python -m hfstream.train STAGE --data DIR``: train one stage of the default model.

Stages, in order: ``continuous`` and ``tokenizer`` (independent), ``predictor`` (needs
both), ``correction`` (needs both, and learns on the predictor's fills when it is there),
``upsampler`` (needs ``continuous``), ``refiner`` (needs all but ``correction``;
uses ``upsampler`` when it is there), then ``export`` writes the shipped model folder.
Every stage resumes from ``OUT/STAGE.ckpt`` when it exists; ``init`` writes those
checkpoints from a shipped model, to fine-tune it; ``average`` replaces a stage's
checkpoint by the mean of several snapshots; ``pack`` writes a checkpoint as a portable
file to commit and ``unpack`` restores it on another machine; ``extend`` adds rungs
under a model's lowest without retraining. ``temporal-data`` codes clips as a stream
does, ``temporal`` trains the temporal synthesis of predicted frames on them and
``add-temporal`` adds it to a model folder; ``residual`` trains the continuous stream of
residual predicted frames on the same clips and ``add-residual`` adds it to a model folder;
``fine`` trains the continuous stream and up-sampler of ``FINE`` frames and ``add-fine``
adds them to a model folder.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

STAGES = {
    "continuous": "hfstream.train.stage_continuous",
    "tokenizer": "hfstream.train.stage_tokenizer",
    "predictor": "hfstream.train.stage_predictor",
    "correction": "hfstream.train.stage_correction",
    "upsampler": "hfstream.train.stage_upsampler",
    "refiner": "hfstream.train.stage_refiner",
    "export": "hfstream.train.export",
    "init": "hfstream.train.stage_init",
    "average": "hfstream.train.stage_average",
    "pack": "hfstream.train.stage_pack",
    "unpack": "hfstream.train.stage_unpack",
    "extend": "hfstream.train.stage_extend",
    "temporal-data": "hfstream.train.temporal_data",
    "temporal": "hfstream.train.stage_temporal",
    "add-temporal": "hfstream.train.stage_add_temporal",
    "residual": "hfstream.train.stage_residual",
    "add-residual": "hfstream.train.stage_add_residual",
    "fine": "hfstream.train.stage_fine",
    "add-fine": "hfstream.train.stage_add_fine",
}
NEEDS_NO_DATA = {
    "export",
    "init",
    "average",
    "pack",
    "unpack",
    "extend",
    "temporal",
    "add-temporal",
    "residual",
    "add-residual",
    "add-fine",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hfstream.train", description=__doc__)
    sub = parser.add_subparsers(dest="stage", required=True)
    modules = {}
    for name, modname in STAGES.items():
        mod = importlib.import_module(modname)
        modules[name] = mod
        p = sub.add_parser(name, help=(mod.__doc__ or "").strip().splitlines()[0])
        p.add_argument("--data", help="folder of training photos")
        p.add_argument("--out", default="runs/default", help="checkpoint folder")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument(
            "--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if present)"
        )
        mod.add_arguments(p)
    args = parser.parse_args(argv)
    if args.stage not in NEEDS_NO_DATA and not args.data:
        parser.error(f"stage {args.stage} needs --data DIR")
    try:
        if args.data and not Path(args.data).is_dir():
            raise FileNotFoundError(f'Training data folder "{args.data}" does not exist')
        modules[args.stage].run(args)
    except FileNotFoundError as e:  # the data folder, or a photo in it: one line, no traceback
        print(f"{parser.prog} {args.stage}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
