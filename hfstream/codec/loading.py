"""The parts of a ``HybridCodec`` from a loaded model folder (``codec.model_io``): each
network built from its config entry and given its weights; the optional ones only where
the config names them, so older models load as they were."""

from __future__ import annotations

from typing import Any, TypeVar

import torch

from hfstream.codec.codebooks import load_reductions
from hfstream.codec.complexity import ComplexityModel
from hfstream.codec.continuous import ContinuousCodec, ContinuousConfig
from hfstream.codec.legacy import load_correction
from hfstream.codec.model_io import ModelBundle, split_prefix
from hfstream.codec.predictor import MaskedTokenPredictor, PredictorConfig
from hfstream.codec.refiner import IndexRefiner, RefinerConfig
from hfstream.codec.temporal_synthesis import TemporalConfig, TemporalSynthesis
from hfstream.codec.tokenizer import Tokenizer, TokenizerConfig
from hfstream.codec.upsampler import LearnedUpsampler, UpsamplerConfig

M = TypeVar("M", bound=torch.nn.Module)


def model_parts(bundle: ModelBundle) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """(the positional parts, the keyword options) of ``HybridCodec`` for ``bundle``; the
    correction decoder only for a model without an index refiner (the only one that
    decodes through it)."""
    cfg, t = bundle.config, bundle.tensors

    def load(module: M, prefix: str) -> M:
        module.load_state_dict(split_prefix(t, prefix))
        return module

    def stream(key: str) -> ContinuousCodec:
        return load(ContinuousCodec(ContinuousConfig(**cfg[key])), key)

    def upsampler(key: str) -> LearnedUpsampler:
        return load(LearnedUpsampler(UpsamplerConfig(**cfg[key])), key)

    tokenizer = load(Tokenizer(TokenizerConfig(**_tuples(cfg["tokenizer"]))), "tokenizer")
    continuous = stream("continuous")
    predictor = load(MaskedTokenPredictor(PredictorConfig(**cfg["predictor"])), "predictor")
    options: dict[str, Any] = {
        "reductions": load_reductions(cfg, t),
        "name": cfg.get("name", "custom"),
        "index_gain_db": cfg.get("index_gain_db"),
        "upsampler": upsampler("upsampler") if "upsampler" in cfg else None,
        "residual_stream": stream("residual") if "residual" in cfg else None,
    }
    if "refiner" in cfg:
        options["refiner"] = load(IndexRefiner(RefinerConfig(**cfg["refiner"])), "refiner")
    else:
        options["correction"] = load_correction(bundle, tokenizer, continuous.config.m)
    if "temporal" in cfg:
        synthesis = load(TemporalSynthesis(TemporalConfig(**cfg["temporal"])), "temporal")
        synthesis.gain_db = float(cfg.get("temporal_gain_db", 0.0))
        options["temporal_synthesis"] = synthesis
    if "fine" in cfg:
        options["fine_stream"] = stream("fine")
        options["fine_upsampler"] = upsampler("fine_upsampler")
        options["fine_error_bias_db"] = cfg.get("fine_error_bias_db")
    complexity = ComplexityModel.from_dict(cfg["complexity"])
    return (tokenizer, continuous, predictor, complexity), options


def _tuples(d: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
