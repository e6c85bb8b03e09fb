"""The real shipped model on a small image."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from hfstream.codec.encoded import MISSING
from hfstream.codec.fills import nearest_fill
from hfstream.codec.frames import merge_patches, split_patches
from hfstream.codec.latents import one_thread
from hfstream.codec.schedules import Schedule, kept_mask
from hfstream.eval.metrics import psnr


@pytest.fixture(scope="module")
def encoded(codec, small_image):
    return codec.encode(small_image, schedule="1_4")


def test_geometry(encoded, small_image):
    assert (encoded.height, encoded.width) == small_image.shape[:2]
    assert encoded.grid == (1, 2)
    assert encoded.codebook_size == 1024
    for p in encoded.patches:
        assert p.schedule is Schedule.QUARTER
        assert p.known.all()  # a fresh encoding has kept and withheld indices
        assert p.indices.min() >= 0 and p.indices.max() < 1024


def test_continuous_stream_is_small_and_bit_exact(codec, encoded):
    for p in encoded.patches:
        assert 20 < p.continuous_bytes < 600
    together = codec.latents(list(encoded.patches))
    one_by_one = torch.cat([codec.latents([p]) for p in encoded.patches])
    assert torch.equal(together, one_by_one)
    # The encoder's own view of ŷc (same strings, other batching) is the same tensor.
    again = codec.encode(split_patches(np.asarray(codec.decode(encoded)))[0], schedule="1_4")
    assert again.patches[0].continuous is not None
    strings = [p.continuous for p in encoded.patches]
    rungs = [p.rung for p in encoded.patches]
    with one_thread():  # as HybridCodec decodes it (ŷc's last bits depend on threads)
        back = codec.continuous.decompress_latent(strings[::-1], rungs[::-1])
        assert torch.equal(back[1], together[0])


@pytest.mark.parametrize("subset", ["none", "kept", "random", "all"])
def test_decode_from_any_subset(codec, encoded, small_image, subset):
    rng = np.random.default_rng(0)
    if subset == "none":
        enc = encoded.without_indices()
    elif subset == "kept":
        enc = encoded.kept_only()
    elif subset == "random":
        enc = encoded.drop_indices(rng.random((2, 256)) < 0.6)
    else:
        enc = encoded
    out = codec.decode(enc)
    assert out.shape == small_image.shape and out.dtype == np.uint8
    assert psnr(small_image, out) > 15


def test_more_indices_give_a_better_picture(codec, encoded, small_image):
    none = psnr(small_image, codec.decode(encoded.without_indices(), mode="hybrid"))
    everything = psnr(small_image, codec.decode(encoded, mode="hybrid"))
    assert everything > none


def test_decode_modes(codec, encoded, small_image):
    for mode in ("continuous", "vq", "hybrid"):
        assert codec.decode(encoded, mode=mode).shape == small_image.shape
    with pytest.raises(ValueError, match='Invalid mode "fast"'):
        codec.decode(encoded, mode="fast")


def test_predictor_keeps_known_indices(codec, encoded):
    p = encoded.patches[0].kept_only()
    y_hat = codec.latents([p])
    known = torch.from_numpy(p.known)[None]
    idx = torch.from_numpy(np.where(p.known, p.indices, 0))[None]
    for steps in (1, 4):
        filled = codec.predictor.fill(idx, known, y_hat, steps=steps)
        assert torch.equal(filled[known], idx[known])
        assert filled.min() >= 0 and filled.max() < 1024
        again, conf = codec.predictor.fill_with_confidence(idx, known, y_hat, steps=steps)
        assert torch.equal(again, filled)
        assert bool((conf[known] == 1).all())
        assert float(conf[~known].min()) > 0 and float(conf[~known].max()) <= 1


def test_correction_loads_weights_saved_without_codes_inputs(codec):
    """A decoder saved before it saw the codes and certainty keeps its behaviour."""
    from hfstream.codec.correction import CorrectionDecoder
    from hfstream.codec.legacy import load_correction
    from hfstream.codec.model_io import DEFAULT_MODEL_DIR, load_model

    correction = load_correction(
        load_model(DEFAULT_MODEL_DIR), codec.tokenizer, codec.continuous.config.m
    )
    old = {k: v.clone() for k, v in correction.state_dict().items()}
    base = correction.base_inputs
    old["body.stem.weight"] = old["body.stem.weight"][:, :base]
    fresh = CorrectionDecoder(codec.tokenizer.decoder, codec.continuous.config.m)
    fresh.load_state_dict(old)
    w = fresh.body.stem.weight
    assert w.shape == correction.body.stem.weight.shape
    assert torch.equal(w[:, :base], old["body.stem.weight"])
    assert bool((w[:, base:] == 0).all())


def test_patch_without_tier0_borrows_from_its_neighbour(codec, encoded):
    """A patch whose tier 0 (and every index) was lost decodes from its neighbour's ŷc
    in the frame-wide pass; only a frame with nothing at all is mid-grey."""
    lost = replace(
        encoded, patches=(replace(encoded.patches[0], continuous=None), encoded.patches[1])
    )
    assert codec.decode(lost).shape[:2] == (encoded.height, encoded.width)
    empty = lost.without_indices()
    blank = replace(empty, patches=(replace(empty.patches[0], continuous=None), lost.patches[1]))
    for mode in ("hybrid", "continuous"):
        out = codec.decode(blank, mode=mode)
        assert out.shape[:2] == (encoded.height, encoded.width)
        assert (out[:, :256] != 128).any()
    nothing = replace(empty, patches=tuple(replace(p, continuous=None) for p in empty.patches))
    assert (codec.decode(nothing) == 128).all()
    assert (codec.decode(nothing, mode="continuous") == 128).all()


def test_foreign_model_and_bad_indices_are_refused(codec, encoded):
    with pytest.raises(ValueError, match="encoded with model"):
        codec.decode(replace(encoded, model_id=encoded.model_id ^ 1))
    bad = replace(
        encoded,
        patches=(replace(encoded.patches[0], indices=np.full(256, 5000)), encoded.patches[1]),
    )
    with pytest.raises(ValueError, match="outside the 1024-word codebook"):
        codec.decode(bad, mode="hybrid")


def test_reduced_codebooks(codec, small_image):
    assert codec.codebook_sizes == [1024, 512, 256, 128, 64]
    for k, red in codec.reductions.items():
        assert red.groups.shape == (1024,) and int(red.groups.max()) == k - 1
        assert len(torch.unique(red.groups)) == k  # no empty group
        assert torch.allclose(red.centroids.norm(dim=1), torch.ones(k), atol=1e-3)
    enc = codec.encode(small_image, schedule="1_4", codebook_size=64)
    assert enc.codebook_size == 64 and max(p.indices.max() for p in enc.patches) < 64
    assert codec.decode(enc.kept_only()).shape == small_image.shape
    with pytest.raises(ValueError, match='Invalid codebook size "100"'):
        codec.encode(small_image, codebook_size=100)


def test_auto_schedule_uses_the_complexity_model(codec, small_image):
    enc = codec.encode(small_image, schedule="auto")
    expected = [
        codec.complexity.schedule_for(codec.complexity.score(p)) for p in split_patches(small_image)
    ]
    assert [p.schedule for p in enc.patches] == expected
    flat = np.full((256, 256, 3), 90, np.uint8)
    assert codec.encode(flat, schedule="auto").patches[0].schedule is Schedule.NINTH


def test_patches_round_trip_any_size():
    rng = np.random.default_rng(1)
    for h, w in [(1, 1), (255, 257), (512, 300)]:
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        assert np.array_equal(merge_patches(split_patches(img), h, w), img)


def test_odd_sized_and_bad_images(codec):
    img = np.random.default_rng(2).integers(0, 256, (37, 61, 3), dtype=np.uint8)
    assert codec.decode(codec.encode(img, "1_9")).shape == (37, 61, 3)
    with pytest.raises(ValueError, match="HxWx3"):
        codec.encode(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="outside 1..16384"):
        codec.encode(np.zeros((1, 20000, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        codec.encode(np.zeros((8, 8, 3), np.float32))


def test_nearest_fill():
    idx = np.full(256, MISSING)
    idx[0], idx[255] = 7, 9
    filled = nearest_fill(idx)
    assert filled[1] == 7 and filled[254] == 9 and (filled != MISSING).all()
    assert (nearest_fill(np.full(256, MISSING)) == MISSING).all()
    keep = kept_mask(Schedule.QUARTER).ravel()
    src = np.arange(256)
    assert (nearest_fill(np.where(keep, src, MISSING))[keep] == src[keep]).all()


def test_schedule_zero_sends_no_index(codec, small_image):
    enc = codec.encode(small_image, schedule="0")
    assert all(p.schedule is Schedule.NONE for p in enc.patches)
    assert not enc.kept_only().patches[0].known.any()
