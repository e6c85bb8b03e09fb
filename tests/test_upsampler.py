"""The learned up-sampler: bicubic when untrained, checked shapes, used by the codec."""

import numpy as np
import pytest
import torch

from hfstream.codec.continuous import ContinuousCodec
from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.upsampler import LearnedUpsampler, UpsamplerConfig


def _parts(codec: HybridCodec, upsampler: LearnedUpsampler | None) -> HybridCodec:
    return HybridCodec(
        codec.tokenizer,
        codec.continuous,
        codec.predictor,
        codec.complexity,
        model_id=codec.model_id,
        reductions=codec.reductions,
        correction=codec.correction,
        index_gain_db=codec.index_gain_db,
        upsampler=upsampler,
    )


def test_untrained_upsampler_is_bicubic():
    model = LearnedUpsampler(UpsamplerConfig(latent_channels=16, width=8, blocks=1))
    low = torch.rand(1, 3, 64, 128)
    y = torch.randn(1, 16, 4, 8)
    out = model(low, y)
    assert out.shape == (1, 3, 256, 512)
    assert torch.equal(out, ContinuousCodec.upsample(low))


def test_latent_must_match_the_thumbnail():
    model = LearnedUpsampler(UpsamplerConfig(latent_channels=16, width=8, blocks=1))
    with pytest.raises(ValueError, match="does not match thumbnail"):
        model(torch.rand(1, 3, 64, 64), torch.randn(1, 16, 8, 8))


def test_codec_decodes_the_continuous_picture_with_its_upsampler(codec, small_image):
    enc = codec.encode(small_image, schedule="1_4")
    cfg = UpsamplerConfig(latent_channels=codec.continuous.config.m, width=8, blocks=1)
    zero = LearnedUpsampler(cfg)
    bicubic = _parts(codec, None).decode(enc, mode="continuous")
    assert np.array_equal(_parts(codec, zero).decode(enc, mode="continuous"), bicubic)
    torch.manual_seed(0)
    busy = LearnedUpsampler(cfg)
    with torch.no_grad():
        busy.head.weight.normal_(0, 0.05)
    out = _parts(codec, busy).decode(enc, mode="continuous")
    assert out.shape == bicubic.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - bicubic.astype(int)).mean() > 1.0
