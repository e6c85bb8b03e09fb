"""Stage ``init``: start a training folder from a shipped model's weights.

Writes one checkpoint per stage (step 0, the model's weights, no optimiser state), so
that any stage run afterwards fine-tunes the shipped model instead of starting from
scratch: ``init --model DIR --out runs/ft`` then e.g. ``correction --out runs/ft``.
Existing checkpoints in ``--out`` are never overwritten.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.legacy import load_correction
from hfstream.codec.model_io import DEFAULT_MODEL_DIR, load_model
from hfstream.train.common import Checkpoint


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="shipped model folder")


def run(args: argparse.Namespace) -> None:
    bundle = load_model(args.model)
    codec = HybridCodec.from_bundle(bundle)
    # A model with an index refiner does not decode through it, but training starts there.
    correction = codec.correction or load_correction(
        bundle, codec.tokenizer, codec.continuous.config.m
    )
    out = Path(args.out)
    tok_cfg = {
        k: list(v) if isinstance(v, tuple) else v for k, v in asdict(codec.tokenizer.config).items()
    }
    stages = {
        "tokenizer": (codec.tokenizer, {"config": tok_cfg}),
        "continuous": (
            codec.continuous,
            asdict(codec.continuous.config),
        ),
        "predictor": (codec.predictor, {"config": asdict(codec.predictor.config)}),
        "correction": (correction, {}),
    }
    for name, extra in (("upsampler", codec.upsampler), ("refiner", codec.refiner)):
        if extra is not None:
            stages[name] = (extra, {"config": asdict(extra.config)})
    for stage, (module, stage_args) in stages.items():
        ckpt = Checkpoint(out / f"{stage}.ckpt")
        if ckpt.exists():
            print(f"{ckpt.path} exists, kept")
            continue
        states = {"model": module.state_dict()}
        if stage == "upsampler":  # the synthesis it was tuned with, as export expects
            states["synthesis"] = codec.continuous.g_s.state_dict()
        ckpt.save(0, states, stage_args)
        print(f"wrote {ckpt.path} from model {codec.model_id:08x}")
