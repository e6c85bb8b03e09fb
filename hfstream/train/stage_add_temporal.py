"""Stage ``add-temporal``: a shipped model folder with the temporal synthesis of a
``temporal`` run added (``OUT/temporal.ckpt``), written to ``--model-dir``.

Every other weight and setting is copied unchanged, so intra frames and stills decode
exactly as with the source model; the config gains a ``temporal`` entry, the gain the
network measured on up to ``--gain-frames`` of the run's predicted frames
(``temporal_gain_db``, what the planner counts on) and a new version, hence a new model
id.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from hfstream.codec.model_io import DEFAULT_MODEL_DIR, load_model, save_model
from hfstream.codec.temporal_synthesis import TemporalConfig, TemporalSynthesis, synthesize
from hfstream.train.common import Checkpoint
from hfstream.train.stage_temporal import load_samples
from hfstream.train.temporal_data import SHARD_DIR

KEPT_BY_SAVE = ("format", "format_version", "weights_sha256")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", default=str(DEFAULT_MODEL_DIR), help="model folder to start from")
    p.add_argument("--model-dir", required=True, help="where to write the model")
    p.add_argument("--version", type=int, required=True)
    p.add_argument("--gain-frames", type=int, default=200, help="frames to measure the gain on")


def measured_gain_db(network: TemporalSynthesis, samples: list[dict[str, np.ndarray]]) -> float:
    """dB the network removes from the squared error of the coded pixels of ``samples``
    (pictures rounded to 8 bits, as shown), all pixels pooled."""
    before = after = 0.0
    for s in samples:
        mask = s["mask"].astype(bool)
        image = s["image"][mask].astype(np.float64)
        shown = synthesize(network, s["decoded"], s["moved"], mask)
        before += float(((s["decoded"][mask] - image) ** 2).sum())
        after += float(((shown[mask] - image) ** 2).sum())
    return 10 * float(np.log10(before / after)) if before and after else 0.0


def run(args: argparse.Namespace) -> None:
    ckpt = Checkpoint(Path(args.out) / "temporal.ckpt")
    if not ckpt.exists():
        raise FileNotFoundError(f"no {ckpt.path}: run the temporal stage first")
    state = ckpt.load()
    network = TemporalSynthesis(TemporalConfig(**state["args"]["config"]))
    network.load_state_dict(state["states"]["model"])
    network.eval()
    samples = load_samples(Path(args.out) / SHARD_DIR)
    rng = np.random.default_rng(args.seed)
    picked = rng.permutation(len(samples))[: args.gain_frames]
    gain = measured_gain_db(network, [samples[i] for i in picked])
    bundle = load_model(args.source)
    tensors = {k: v for k, v in bundle.tensors.items() if not k.startswith("temporal.")}
    tensors.update({f"temporal.{k}": v.half() for k, v in network.state_dict().items()})
    config = {k: v for k, v in bundle.config.items() if k not in KEPT_BY_SAVE}
    config["temporal"] = state["args"]["config"]
    config["temporal_gain_db"] = round(gain, 3)
    config["version"] = args.version
    model_id = save_model(Path(args.model_dir), config, tensors)
    print(
        f"model {model_id:08x} (step {state['step']} of the temporal run, "
        f"{gain:+.2f} dB on {len(picked)} frames) in {args.model_dir}"
    )
