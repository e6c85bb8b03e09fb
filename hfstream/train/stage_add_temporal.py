"""Stage ``add-temporal``: a shipped model folder with the temporal synthesis of a
``temporal`` run added (``OUT/temporal.ckpt``), written to ``--model-dir``.

Every other weight and setting is copied unchanged, so intra frames and stills decode
exactly as with the source model; the config gains a ``temporal`` entry and a new
version, hence a new model id.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hfstream.codec.model_io import DEFAULT_MODEL_DIR, load_model, save_model
from hfstream.codec.temporal_synthesis import TemporalConfig, TemporalSynthesis
from hfstream.train.common import Checkpoint

KEPT_BY_SAVE = ("format", "format_version", "weights_sha256")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", default=str(DEFAULT_MODEL_DIR), help="model folder to start from")
    p.add_argument("--model-dir", required=True, help="where to write the model")
    p.add_argument("--version", type=int, required=True)


def run(args: argparse.Namespace) -> None:
    ckpt = Checkpoint(Path(args.out) / "temporal.ckpt")
    if not ckpt.exists():
        raise FileNotFoundError(f"no {ckpt.path}: run the temporal stage first")
    state = ckpt.load()
    network = TemporalSynthesis(TemporalConfig(**state["args"]["config"]))
    network.load_state_dict(state["states"]["model"])
    bundle = load_model(args.source)
    tensors = {k: v for k, v in bundle.tensors.items() if not k.startswith("temporal.")}
    tensors.update({f"temporal.{k}": v.half() for k, v in network.state_dict().items()})
    config = {k: v for k, v in bundle.config.items() if k not in KEPT_BY_SAVE}
    config["temporal"] = state["args"]["config"]
    config["version"] = args.version
    model_id = save_model(Path(args.model_dir), config, tensors)
    print(f"model {model_id:08x} (step {state['step']} of the temporal run) in {args.model_dir}")
