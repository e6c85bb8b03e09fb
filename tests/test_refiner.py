"""The index refiner: the continuous picture when untrained, checked shapes, used by the
codec's hybrid mode in place of the correction and VQ decoders."""

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch

from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.rates import Budget
from hfstream.codec.refiner import IndexRefiner, RefinerConfig

TINY = RefinerConfig(code_dim=32, vq_channels=64, width=8, code_blocks=1, blocks=1)


def _with_refiner(codec: HybridCodec, refiner: IndexRefiner | None) -> HybridCodec:
    """The shared codec with another refiner (a shallow copy: the modules are shared)."""
    other = copy.copy(codec)
    other.refiner = refiner
    return other


def test_untrained_refiner_returns_the_picture():
    picture = torch.rand(2, 3, 256, 512)
    codes = torch.randn(2, 32, 16, 32)
    certainty = torch.rand(2, 2, 16, 32)
    features = torch.randn(2, 64, 64, 128)
    assert torch.equal(IndexRefiner(TINY)(picture, codes, certainty, features), picture)


def test_codes_must_match_the_picture():
    with pytest.raises(ValueError, match="do not match picture"):
        IndexRefiner(TINY)(
            torch.rand(1, 3, 256, 256),
            torch.randn(1, 32, 8, 8),
            torch.rand(1, 2, 8, 8),
            torch.randn(1, 64, 32, 32),
        )
    with pytest.raises(ValueError, match="VQ features"):
        IndexRefiner(TINY)(
            torch.rand(1, 3, 256, 256),
            torch.randn(1, 32, 16, 16),
            torch.rand(1, 2, 16, 16),
            torch.randn(1, 64, 32, 32),
        )


def test_the_refined_picture_depends_on_the_codes():
    torch.manual_seed(0)
    model = IndexRefiner(TINY)
    with torch.no_grad():
        model.head.weight.normal_(0, 0.05)
    picture = torch.rand(1, 3, 256, 256)
    certainty = torch.ones(1, 2, 16, 16)
    features = torch.randn(1, 64, 64, 64)
    a = model(picture, torch.randn(1, 32, 16, 16), certainty, features)
    b = model(picture, torch.randn(1, 32, 16, 16), certainty, features)
    assert float((a - b).abs().mean().detach()) > 1e-3
    c = model(picture, torch.zeros(1, 32, 16, 16), certainty, features)
    d = model(picture, torch.zeros(1, 32, 16, 16), certainty, torch.randn(1, 64, 64, 64))
    assert float((c - d).abs().mean().detach()) > 1e-3


def test_hybrid_mode_with_a_refiner(codec, small_image):
    enc = codec.encode(small_image, schedule="1_4").kept_only()
    continuous = codec.decode(enc, mode="continuous")
    zero = _with_refiner(codec, IndexRefiner(TINY))
    assert np.array_equal(zero.decode(enc, mode="hybrid"), continuous)
    torch.manual_seed(1)
    busy = IndexRefiner(TINY)
    with torch.no_grad():
        busy.head.weight.normal_(0, 0.05)
    out = _with_refiner(codec, busy).decode(enc, mode="hybrid")
    assert out.shape == continuous.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - continuous.astype(int)).mean() > 1.0
    # Without tier 0 the indices are all there is: the VQ decoder shows them, as before.
    bare = replace(enc, patches=tuple(replace(p, continuous=None) for p in enc.patches))
    vq = codec.decode(bare, mode="hybrid")
    assert np.array_equal(_with_refiner(codec, busy).decode(bare, mode="hybrid"), vq)


def test_decoder_features_are_the_decoders_own(codec):
    """Through every up-sampling, the features plus the head give the decoder's picture."""
    decoder = codec.tokenizer.decoder
    q = codec.tokenizer.codebook.embed(torch.randint(0, 1024, (1, 16, 16)))
    with torch.inference_mode():
        whole = decoder(q)
        features = decoder.features(q, len(decoder.ups))
        assert torch.allclose((decoder.head(features) + 1) / 2, whole, atol=1e-5)
        assert decoder.features(q, 2).shape == (1, decoder.level_channels[2], 64, 64)
    with pytest.raises(ValueError, match="Invalid ups"):
        decoder.features(q, 9)


def test_schedule_seams_measures_a_folder(tmp_path, small_image, capsys):
    from PIL import Image

    from hfstream.eval import schedule_seams

    Image.fromarray(small_image).save(tmp_path / "a.png")
    assert schedule_seams.main([str(tmp_path), "--schedule", "1_4"]) == 0
    out = capsys.readouterr().out
    assert "a.png" in out and "1 photos, 1_4:" in out and "seams" in out
    assert schedule_seams.main([str(tmp_path / "nope")]) == 2
    assert "no folder" in capsys.readouterr().err


def test_schedule_seams_fits_a_file_size(codec, small_image):
    from hfstream.eval import schedule_seams
    from hfstream.files import container

    free = schedule_seams.measure(codec, small_image, "1_4", 0)
    tight = schedule_seams.measure(codec, small_image, "1_4", None, target_bytes=free.bytes - 1)
    loose = schedule_seams.measure(codec, small_image, "1_4", None, target_bytes=4 * free.bytes)
    assert loose.bytes > free.bytes >= tight.bytes
    assert loose.bytes <= 4 * free.bytes
    assert loose.continuous_psnr > tight.continuous_psnr
    budget = schedule_seams.fit_continuous_budget(codec, small_image, "1_4", loose.bytes)
    enc = codec.encode(small_image, "1_4", rate=Budget(budget, rung=0)).kept_only()
    assert len(container.write(enc, codec)) <= loose.bytes
    with pytest.raises(SystemExit):
        schedule_seams.main([".", "--bytes", "0"])


def test_ladder_scores_rungs_added_below_against_classic_files(
    codec, tmp_path, small_image, capsys
):
    from PIL import Image

    from hfstream.eval import ladder

    Image.fromarray(small_image).save(tmp_path / "a.png")
    assert ladder.main([str(tmp_path), "--extend-below", "0.6", "--classic"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("rung")]
    assert len(lines) == codec.continuous.rungs + 1  # the shipped rungs and one below
    sizes = [float(ln.split()[2]) for ln in lines]
    assert sizes[0] < sizes[1] < sizes[-1]
    assert all("webp" in ln and "avif" in ln for ln in lines)
    with pytest.raises(SystemExit):
        ladder.main([str(tmp_path), "--extend-below", "1.5"])
