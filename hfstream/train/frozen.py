"""Loading the stages a later stage builds on, frozen, from their checkpoints."""

from __future__ import annotations

from pathlib import Path

import torch

from hfstream.codec.continuous import ContinuousCodec, ContinuousConfig
from hfstream.codec.predictor import MaskedTokenPredictor, PredictorConfig
from hfstream.codec.tokenizer import Tokenizer, TokenizerConfig
from hfstream.train.common import Checkpoint


def _need(out: Path, stage: str) -> dict:
    ckpt = Checkpoint(out / f"{stage}.ckpt")
    if not ckpt.exists():
        raise SystemExit(f"{ckpt.path} not found: train the {stage} stage first")
    return ckpt.load()


def _freeze(module: torch.nn.Module) -> None:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)


def load_tokenizer(out: Path) -> Tokenizer:
    state = _need(out, "tokenizer")
    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in state["args"]["config"].items()}
    model = Tokenizer(TokenizerConfig(**cfg))
    model.load_state_dict(state["states"]["model"])
    _freeze(model)
    return model


def load_continuous(out: Path) -> ContinuousCodec:
    state = _need(out, "continuous")
    a = state["args"]
    config = ContinuousConfig(
        n=a["n"], m=a["m"], rungs=a.get("rungs", 1), default_rung=a.get("default_rung", 1)
    )
    model = ContinuousCodec(config)
    model.load_state_dict(state["states"]["model"])
    model.update(force=True)
    _freeze(model)
    return model


def load_predictor(out: Path) -> MaskedTokenPredictor | None:
    """The trained predictor, frozen; None when that stage has not been run."""
    ckpt = Checkpoint(out / "predictor.ckpt")
    if not ckpt.exists():
        return None
    state = ckpt.load()
    model = MaskedTokenPredictor(PredictorConfig(**state["args"]["config"]))
    model.load_state_dict(state["states"]["model"])
    _freeze(model)
    return model
