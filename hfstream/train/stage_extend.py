"""Stage ``extend``: a model folder with rungs added under its lowest, nothing retrained.

``extend --factors 0.3 0.5 0.7 --model-dir DST`` copies the shipped model (or
``--from FOLDER``) and gives its continuous stream one rung more under the lowest per
factor: the lowest rung's gains scaled by it (``ContinuousCodec.extended_below``), so
the latent is quantised more coarsely and costs fewer bytes. Only the two gain tables
change; every other tensor, the entropy coder's tables included, is copied as it is, so
the trained rungs code exactly as before, under new numbers (each moves up by the count
of factors, and so does the default rung). A residual stream gets the same new rungs,
so that a rung number means the same in both. The new folder has its own model id.

``--gains-from RUN/continuous.ckpt`` then takes the new rungs' gains from a run that
trained them (``init`` from the extended folder, then ``continuous --only-rungs``; the
residual stream keeps the scaled ones): the
checkpoint's ladder must be the extended one, its trained rungs' gains unchanged. A
``.safetensors`` file holding just ``gain`` and ``inverse_gain`` does as well (how
trained gains are committed: a few kilobytes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from hfstream.codec.model_io import CONFIG_NAME, DEFAULT_MODEL_DIR, WEIGHTS_NAME, save_model
from hfstream.train.common import Checkpoint


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="source", type=Path, help="model folder (default: shipped)")
    p.add_argument("--model-dir", type=Path, required=True, help="folder to write")
    p.add_argument(
        "--factors", type=float, nargs="+", required=True, help="ascending, each in (0, 1)"
    )
    p.add_argument("--version", type=int, help="the new model's version (default: unchanged)")
    p.add_argument(
        "--gains-from",
        type=Path,
        help="a continuous checkpoint (or .safetensors of its gain tables) whose new rungs'"
        " gains were trained (--only-rungs)",
    )


STREAMS = ("continuous", "residual")  # a model's ladders: every rung number is shared


def extend_tensors(
    tensors: dict[str, torch.Tensor], factors: list[float]
) -> dict[str, torch.Tensor]:
    """The weights with the gain tables of the continuous stream, and of the residual
    stream where the model has one, extended below (a rung means the same in both); the
    rest shared, untouched."""
    if not factors or factors != sorted(factors) or not 0 < factors[0] <= factors[-1] < 1:
        raise ValueError(f"Invalid factors {factors}, should ascend within (0, 1)")
    if "continuous.gain" not in tensors:
        raise ValueError("this model's continuous stream has one rate: no gains to extend")
    f = torch.tensor(factors, dtype=torch.float32)[:, None]
    out = dict(tensors)
    for stream in STREAMS:
        if f"{stream}.gain" not in tensors:
            continue
        gain, inverse = tensors[f"{stream}.gain"], tensors[f"{stream}.inverse_gain"]
        out[f"{stream}.gain"] = torch.cat([f * gain[:1].float(), gain.float()]).to(gain.dtype)
        out[f"{stream}.inverse_gain"] = torch.cat([inverse[:1].float() / f, inverse.float()]).to(
            inverse.dtype
        )
    return out


def trained_gains(
    tensors: dict[str, torch.Tensor], state: dict[str, torch.Tensor], new: int
) -> dict[str, torch.Tensor]:
    """The extended weights with the ``new`` lowest rungs' gain tables taken from a
    continuous-stage ``state``, which must hold the same ladder with the trained rungs'
    gains as they are."""
    out = dict(tensors)
    for table in ("gain", "inverse_gain"):
        ours, theirs = tensors[f"continuous.{table}"], state.get(table)
        if theirs is None or theirs.shape != ours.shape:
            got = None if theirs is None else tuple(theirs.shape)
            raise ValueError(f"the checkpoint's {table} is {got}, the model's {tuple(ours.shape)}")
        if not torch.allclose(theirs[new:].to(ours.dtype).float(), ours[new:].float()):
            raise ValueError(f"the checkpoint's trained rungs have other {table}s than the model")
        out[f"continuous.{table}"] = torch.cat([theirs[:new].to(ours.dtype), ours[new:]])
    return out


def run(args: argparse.Namespace) -> None:
    source = Path(args.source or DEFAULT_MODEL_DIR)
    try:
        config = json.loads((source / CONFIG_NAME).read_text())
        tensors = load_file(str(source / WEIGHTS_NAME))
    except (OSError, ValueError) as e:
        raise SystemExit(f"Cannot read the model in {source}: {e}") from e
    try:
        tensors = extend_tensors(tensors, list(args.factors))
        if args.gains_from is not None:
            if args.gains_from.suffix == ".safetensors":  # the gain tables alone
                state = load_file(str(args.gains_from))
            else:
                state = Checkpoint(args.gains_from).load()["states"]["model"]
            tensors = trained_gains(tensors, state, len(args.factors))
    except (OSError, KeyError, RuntimeError) as e:
        raise SystemExit(f"Cannot read the checkpoint {args.gains_from}: {e}") from e
    except ValueError as e:
        raise SystemExit(str(e)) from e
    for key in ("format", "format_version", "weights_sha256"):  # save_model writes them
        config.pop(key, None)
    for stream in STREAMS:
        if stream in config:
            config[stream]["rungs"] += len(args.factors)
            config[stream]["default_rung"] += len(args.factors)
    if args.version is not None:
        config["version"] = args.version
    model_id = save_model(args.model_dir, config, tensors)
    print(
        f"wrote {args.model_dir}: model id {model_id:08x}, rungs "
        f"{config['continuous']['rungs']} (default {config['continuous']['default_rung']})"
    )
