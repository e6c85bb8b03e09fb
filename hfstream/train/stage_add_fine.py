"""Stage ``add-fine``: a shipped model folder with the ``FINE`` stream and up-sampler of
a ``fine`` run added (``OUT/fine.ckpt``), written to ``--model-dir``.

Every other weight and setting is copied unchanged, so frames at the full size and
below, and residual frames, code exactly as with the source model; the config gains
``fine`` and ``fine_upsampler`` entries and a new version, hence a new model id. The
weights are rounded to float16 first and the entropy coder's tables built from what the
receiver will load.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hfstream.codec.continuous import ContinuousCodec, ContinuousConfig
from hfstream.codec.model_io import DEFAULT_MODEL_DIR, load_model, save_model
from hfstream.codec.upsampler import LearnedUpsampler, UpsamplerConfig
from hfstream.train.common import Checkpoint
from hfstream.train.export import half_state, round_to_half
from hfstream.train.stage_add_temporal import KEPT_BY_SAVE
from hfstream.train.stage_fine import CHECKPOINT

PREFIXES = ("fine.", "fine_upsampler.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", default=str(DEFAULT_MODEL_DIR), help="model folder to start from")
    p.add_argument("--model-dir", required=True, help="where to write the model")
    p.add_argument("--version", type=int, required=True)
    p.add_argument(
        "--error-bias-db",
        type=float,
        help="what the planner raises FINE rung tables' errors by, as sim.scale_bias "
        "measures it with the new model (default: estimates.SCALED_ERROR_BIAS_DB's)",
    )


def run(args: argparse.Namespace) -> None:
    ckpt = Checkpoint(Path(args.out) / CHECKPOINT)
    if not ckpt.exists():
        raise FileNotFoundError(f"no {ckpt.path}: run the fine stage first")
    state = ckpt.load()
    stream = ContinuousCodec(ContinuousConfig(**state["args"]["config"]))
    stream.load_state_dict(state["states"]["model"])
    upsampler = LearnedUpsampler(UpsamplerConfig(**state["args"]["upsampler"]))
    upsampler.load_state_dict(state["states"]["upsampler"])
    stream.eval()
    upsampler.eval()
    round_to_half(stream)
    round_to_half(upsampler)
    stream.update(force=True)
    bundle = load_model(args.source)
    if stream.rungs != bundle.config["continuous"]["rungs"]:
        raise SystemExit(
            f"the fine run has {stream.rungs} rungs, the model "
            f"{bundle.config['continuous']['rungs']}"
        )
    tensors = {k: v for k, v in bundle.tensors.items() if not k.startswith(PREFIXES)}
    tensors.update(half_state(stream, "fine"))
    tensors.update(half_state(upsampler, "fine_upsampler"))
    config = {k: v for k, v in bundle.config.items() if k not in KEPT_BY_SAVE}
    config["fine"] = state["args"]["config"]
    config["fine_upsampler"] = state["args"]["upsampler"]
    config.pop("fine_error_bias_db", None)
    if args.error_bias_db is not None:
        config["fine_error_bias_db"] = args.error_bias_db
    config["version"] = args.version
    model_id = save_model(Path(args.model_dir), config, tensors)
    print(f"model {model_id:08x} (step {state['step']} of the fine run) in {args.model_dir}")
