"""Stage ``add-residual``: a shipped model folder with the residual stream of a
``residual`` run added (``OUT/residual.ckpt``), written to ``--model-dir``.

Every other weight and setting is copied unchanged, so intra frames, stills and picture
predicted frames code exactly as with the source model; the config gains a ``residual``
entry and a new version, hence a new model id. The stream's weights are rounded to
float16 first and its entropy coder's tables built from what the receiver will load.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hfstream.codec.continuous import ContinuousCodec, ContinuousConfig
from hfstream.codec.model_io import DEFAULT_MODEL_DIR, load_model, save_model
from hfstream.train.common import Checkpoint
from hfstream.train.export import half_state, round_to_half
from hfstream.train.stage_add_temporal import KEPT_BY_SAVE


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", default=str(DEFAULT_MODEL_DIR), help="model folder to start from")
    p.add_argument("--model-dir", required=True, help="where to write the model")
    p.add_argument("--version", type=int, required=True)


def run(args: argparse.Namespace) -> None:
    ckpt = Checkpoint(Path(args.out) / "residual.ckpt")
    if not ckpt.exists():
        raise FileNotFoundError(f"no {ckpt.path}: run the residual stage first")
    state = ckpt.load()
    stream = ContinuousCodec(ContinuousConfig(**state["args"]["config"]))
    stream.load_state_dict(state["states"]["model"])
    stream.eval()
    round_to_half(stream)
    stream.update(force=True)
    bundle = load_model(args.source)
    if stream.rungs != bundle.config["continuous"]["rungs"]:
        raise SystemExit(
            f"the residual run has {stream.rungs} rungs, the model "
            f"{bundle.config['continuous']['rungs']}"
        )
    tensors = {k: v for k, v in bundle.tensors.items() if not k.startswith("residual.")}
    tensors.update(half_state(stream, "residual"))
    config = {k: v for k, v in bundle.config.items() if k not in KEPT_BY_SAVE}
    config["residual"] = state["args"]["config"]
    config["version"] = args.version
    model_id = save_model(Path(args.model_dir), config, tensors)
    print(f"model {model_id:08x} (step {state['step']} of the residual run) in {args.model_dir}")
