"""Shipped models: a folder with ``config.json`` and ``weights.safetensors``.

The config names the model and its version, holds every architecture argument, the
complexity normalisers and thresholds, and the SHA-256 of the weights file. The model id
(32 bits, carried by every packet and container) is derived from the canonical JSON of
that config, so two models that differ in any weight or setting never share an id.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.safetensors"
FORMAT = "hfstream-model"
FORMAT_VERSION = 1
MAX_WEIGHTS_BYTES = 256 * 1024 * 1024

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "default"


class ModelFileError(ValueError):
    """A model folder that is missing, corrupt, or not an hfstream model."""


@dataclass(frozen=True)
class ModelBundle:
    config: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    model_id: int


def model_id_of(config: dict[str, Any]) -> int:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    return int.from_bytes(hashlib.sha256(canonical).digest()[:4], "big")


def model_id_of_folder(folder: str | Path | None = None) -> int:
    """The id of a model folder (None: the shipped model) from its config alone, without
    loading the weights."""
    path = Path(folder or DEFAULT_MODEL_DIR) / CONFIG_NAME
    try:
        return model_id_of(json.loads(path.read_text()))
    except (OSError, ValueError) as e:
        raise ModelFileError(f"Cannot read the model config {path}: {e}") from e


def save_model(folder: Path, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / WEIGHTS_NAME
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(weights))
    full = dict(config)
    full["format"] = FORMAT
    full["format_version"] = FORMAT_VERSION
    full["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    (folder / CONFIG_NAME).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
    return model_id_of(full)


def load_model(folder: str | Path) -> ModelBundle:
    folder = Path(folder)
    cfg_path, w_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    if not cfg_path.is_file():
        raise ModelFileError(f"No {CONFIG_NAME} in model folder {folder}")
    if not w_path.is_file():
        raise ModelFileError(f"No {WEIGHTS_NAME} in model folder {folder}")
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{cfg_path} is not valid JSON: {e}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{cfg_path} is not an hfstream model config")
    if config.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{cfg_path} has format_version {config.get('format_version')!r}, "
            f"this hfstream reads {FORMAT_VERSION}"
        )
    size = w_path.stat().st_size
    if size > MAX_WEIGHTS_BYTES:
        raise ModelFileError(f"{w_path} is {size} bytes, more than the {MAX_WEIGHTS_BYTES} allowed")
    data = w_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != config.get("weights_sha256"):
        raise ModelFileError(f"{w_path} does not match the SHA-256 in {cfg_path}")
    try:
        tensors = load_file(str(w_path))
    except Exception as e:  # safetensors raises its own error types
        raise ModelFileError(f"{w_path} is not a readable safetensors file: {e}") from None
    return ModelBundle(config=config, tensors=tensors, model_id=model_id_of(config))


def split_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under ``prefix.`` with the prefix removed, as float32 where floating."""
    out = {}
    for k, v in tensors.items():
        if k.startswith(prefix + "."):
            out[k[len(prefix) + 1 :]] = v.float() if v.is_floating_point() else v
    return out


def load_upsampler_checkpoint(path: Path, continuous: Any) -> Any:
    """The up-sampler of a training run's ``upsampler`` checkpoint (``hfstream.train``),
    frozen, for evaluation; loads the synthesis transform it was trained with into
    ``continuous`` (a ``ContinuousCodec``), frozen too. The checkpoint is read with
    ``weights_only=True``: tensors and plain containers only."""
    from hfstream.codec.upsampler import LearnedUpsampler, UpsamplerConfig

    state = torch.load(path, map_location="cpu", weights_only=True)
    upsampler = LearnedUpsampler(UpsamplerConfig(**state["args"]["config"]))
    upsampler.load_state_dict(state["states"]["model"])
    continuous.g_s.load_state_dict(state["states"]["synthesis"])
    for module in (upsampler, continuous):
        module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
    return upsampler
