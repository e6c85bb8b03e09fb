"""The residual stream: a continuous stream of the model's own architecture that codes a
residual frame's differences, trained (stage ``residual``) and added (``add-residual``)
beside the picture stream, which it leaves untouched."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hfstream.codec.hybrid import HybridCodec
from hfstream.eval.metrics import psnr
from hfstream.planning.temporal import encode_predicted
from hfstream.train.__main__ import main as train
from hfstream.train.common import Checkpoint


def _stream_checkpoint(codec: HybridCodec, folder, *, gain: float = 1.0, rungs: int = 0) -> None:
    """A ``residual`` run's checkpoint holding the picture stream with its gains times
    ``gain`` (finer quantisation: strings another stream reads wrong), or ``rungs``."""
    from conftest import scaled_stream_state

    state, config = scaled_stream_state(codec.continuous, gain=gain, rungs=rungs)
    Checkpoint(folder / "residual.ckpt").save(1, {"model": state}, {"config": config})


@pytest.fixture(scope="module")
def twin(codec, tmp_path_factory) -> HybridCodec:
    """The shipped model with a residual stream that quantises 1.5x finer."""
    run = tmp_path_factory.mktemp("residual-run")
    _stream_checkpoint(codec, run, gain=1.5)
    model = run / "model"
    assert (
        train(["add-residual", "--out", str(run), "--model-dir", str(model), "--version", "9"]) == 0
    )
    return HybridCodec.from_pretrained(model)


def test_a_model_without_a_residual_stream_codes_differences_itself(codec):
    from conftest import with_rungs

    parts = (codec.tokenizer, codec.continuous, codec.predictor, codec.complexity)
    plain = HybridCodec(*parts, model_id=1)
    assert plain.residual_stream is None and plain.residual_coder is plain
    assert codec.residual_stream is not None  # the shipped model has one
    with pytest.raises(ValueError, match="residual stream has 2 rungs"):
        HybridCodec(*parts, model_id=1, residual_stream=with_rungs(codec.continuous, 2))


def test_the_residual_stream_leaves_intra_frames_alone(codec, twin, small_image):
    assert twin.model_id != codec.model_id
    assert twin.residual_coder.continuous is twin.residual_stream
    assert twin.residual_coder.upsampler is None and twin.upsampler is not None
    ours, theirs = twin.encode_tier0(small_image), codec.encode_tier0(small_image)
    assert [p.continuous for p in ours.patches] == [p.continuous for p in theirs.patches]


def test_decoded_differences_are_shown_bilinear_and_pictures_bicubic(codec):
    # Bicubic overshoots at block edges, in the same place frame after frame of a chain;
    # the residual stream's differences are brought back bilinear instead.
    assert codec.residual_coder.continuous.interpolation == "bilinear"
    assert codec.continuous.interpolation == "bicubic"
    low = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    y_hat = torch.zeros(1, codec.continuous.config.m, 4, 4)
    shown = codec.residual_coder.continuous_picture(low, y_hat)
    bilinear = F.interpolate(low, scale_factor=4, mode="bilinear", align_corners=False)
    bicubic = F.interpolate(low, scale_factor=4, mode="bicubic", align_corners=False)
    assert torch.equal(shown, bilinear.clamp(0, 1))
    assert not torch.allclose(shown, bicubic.clamp(0, 1), atol=1e-3)


def test_residual_frames_are_coded_and_decoded_by_the_residual_stream(codec, twin, brighter):
    reference, frame = brighter
    planned = encode_predicted(twin, frame, 600, reference=reference, reference_id=0)
    enc = planned.encoded
    assert enc.residual and any(p.continuous is not None for p in enc.patches)
    shown = twin.decode(enc, reference=reference)
    assert psnr(frame, shown) > 35
    # The same strings read by another stream (the shipped one): another ŷc, a worse picture.
    misread = codec.decode(replace(enc, model_id=codec.model_id), reference=reference)
    assert psnr(frame, misread) < psnr(frame, shown) - 3
    # Each stream keeps its own ŷc for the same strings.
    coded = [p for p in enc.patches if p.continuous is not None]
    assert not torch.equal(twin.latents(coded), twin.residual_coder.latents(coded))


def test_residual_stages_train_and_refuse_what_does_not_fit(codec, tmp_path):
    run = tmp_path / "run"
    shards = run / "temporal_data"
    shards.mkdir(parents=True)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    moved = np.clip(image.astype(int) + rng.integers(-9, 10, image.shape), 0, 255)
    mask = np.ones((256, 256), np.uint8)
    np.savez(shards / "00001.npz", image0=image, moved0=moved.astype(np.uint8), mask0=mask)
    common = ["--out", str(run)]
    assert train(["residual", *common, "--steps", "2", "--batch", "2", "--thumb", "64"]) == 0
    state = Checkpoint(run / "residual.ckpt").load()
    assert state["step"] == 2 and state["args"]["config"]["rungs"] == codec.continuous.rungs
    model = tmp_path / "model"
    assert train(["add-residual", *common, "--model-dir", str(model), "--version", "9"]) == 0
    assert HybridCodec.from_pretrained(model).residual_stream is not None
    # A stream with another ladder is refused; no run at all is one line and status 2.
    _stream_checkpoint(codec, run, rungs=2)
    with pytest.raises(SystemExit, match="rungs"):
        train(["add-residual", *common, "--model-dir", str(model), "--version", "9"])
    none = ["--out", str(tmp_path / "none"), "--model-dir", str(model), "--version", "9"]
    assert train(["add-residual", *none]) == 2


def test_residual_training_goes_on_from_the_shipped_residual_stream(codec, tmp_path):
    from hfstream.train.stage_residual import source_stream

    _stream_checkpoint(codec, tmp_path, gain=1.5)
    model = tmp_path / "model"
    assert (
        train(["add-residual", "--out", str(tmp_path), "--model-dir", str(model), "--version", "9"])
        == 0
    )
    picture = codec.continuous.gain.detach()
    assert torch.allclose(source_stream(str(model)).gain, 1.5 * picture, rtol=1e-2)
    from hfstream.codec.model_io import DEFAULT_MODEL_DIR

    shipped = codec.residual_stream or codec.continuous
    assert torch.equal(source_stream(str(DEFAULT_MODEL_DIR)).gain, shipped.gain)
