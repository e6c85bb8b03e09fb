"""Work shared between passes: the index priors' transformer pass fills the indices too,
and an encode analyses each band of its thumbnail once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.rates import Budget
from hfstream.files import container


@contextmanager
def counting(module: torch.nn.Module) -> Iterator[list[int]]:
    """Counts ``module``'s forward passes while the block runs."""
    calls = [0]
    handle = module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    try:
        yield calls
    finally:
        handle.remove()


@pytest.fixture(scope="module")
def received(codec: HybridCodec, small_image):
    """A 1_4 frame as a receiver reads it: its indices decoded under the priors."""
    data = container.write(codec.encode(small_image, "1_4"), codec)
    codec.clear_caches()
    return container.read(data, codec)


def test_prior_fill_is_the_arg_max_given_the_latents_alone(codec, received):
    y_hat = codec.latents(list(received.patches))
    codec.clear_caches()
    guess, sure = codec.prior_fill(y_hat)  # not kept: one batched pass
    with torch.inference_mode():
        probs = F.softmax(codec.predictor.prior_logits(y_hat).float(), dim=-1)
    assert guess.shape == sure.shape == (y_hat.shape[0], 256)
    assert torch.equal(guess, probs.argmax(dim=-1))
    assert torch.allclose(sure, probs.max(dim=-1).values, atol=1e-5)
    assert float(sure.min()) > 0 and float(sure.max()) <= 1


def test_a_received_frame_fills_without_another_transformer_pass(codec, small_image):
    data = container.write(codec.encode(small_image, "1_4"), codec)
    codec.clear_caches()
    kept = container.read(data, codec)  # the priors ran here, one pass per patch
    with counting(codec.predictor) as calls:
        reused = codec.decode(kept, mode="hybrid")
    assert calls[0] == 0
    codec.clear_caches()  # nothing kept: the fill runs the pass itself, once
    with counting(codec.predictor) as calls:
        fresh = codec.decode(kept, mode="hybrid", fill="prior")
    assert calls[0] == 1
    assert np.abs(reused.astype(int) - fresh.astype(int)).max() <= 1


def test_auto_fill_is_the_prior_for_the_refiner_and_the_context_otherwise(codec, received):
    assert codec.refiner is not None
    hybrid = codec.decode(received, mode="hybrid")
    assert np.array_equal(hybrid, codec.decode(received, mode="hybrid", fill="prior"))
    with counting(codec.predictor) as calls:  # the known indices' context: its own pass
        context = codec.decode(received, mode="hybrid", fill="predictor")
    assert calls[0] == 1
    assert context.shape == hybrid.shape
    with counting(codec.predictor) as calls:  # the VQ decoder alone keeps the context fill
        codec.decode(received, mode="vq")
    assert calls[0] == 1


def test_an_unknown_fill_is_refused(codec, received):
    with pytest.raises(ValueError, match='Invalid fill "best", should be one of auto, prior'):
        codec.decode(received, fill="best")  # type: ignore[arg-type]


def test_an_encode_analyses_its_thumbnail_once(codec, small_image):
    # Pixels no other test coded: the codec keeps the analysis of the last frames it saw.
    image, other = small_image.copy(), small_image.copy()
    image[0, 0] ^= 1
    other[0, 0] ^= 2
    with counting(codec.continuous.g_a) as calls:
        codec.encode(image, "1_4")
    assert calls[0] == 1
    with counting(codec.continuous.g_a) as calls:
        codec.encode(other, "1_4", rate=Budget(400))  # rung table, then coding
    assert calls[0] == 1
    with counting(codec.continuous.g_a) as calls:  # coded again (a replan, say): kept
        codec.encode(image, "1_4", rate=Budget(600))
    assert calls[0] == 0


def test_the_ladder_table_of_a_given_analysis_is_the_same(codec, small_image):
    low = torch.rand(1, 3, 64, 128, generator=torch.Generator().manual_seed(3))
    y = codec.continuous.analyse(low)
    given = codec.continuous.ladder_table(low, y=y)
    for a, b in zip(codec.continuous.ladder_table(low), given, strict=True):
        assert torch.equal(a, b)
    assert codec.continuous.compress_frame(low, [0, 1]) == codec.continuous.compress_frame(
        low, [0, 1], y=y
    )
