"""The FINE stream: a continuous stream and up-sampler of the model's own architecture
that code the frames coded at twice their size (``FINE``), trained (stage ``fine``) and
added (``add-fine``) beside the picture stream, which keeps every other scale."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from hfstream.codec.frame_coding import packetize
from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.joint_strings import Tier0Joiner
from hfstream.codec.rates import Fixed
from hfstream.eval.metrics import psnr
from hfstream.geometry import FINE
from hfstream.protocol.packetizer import Packetizer, PacketizerConfig
from hfstream.stream.progressive import whole_picture
from hfstream.train.__main__ import main as train
from hfstream.train.common import Checkpoint


def _fine_checkpoint(codec: HybridCodec, folder, *, gain: float = 1.0, rungs: int = 0) -> None:
    """A ``fine`` run's checkpoint holding the picture stream with its gains times
    ``gain`` (finer quantisation: strings another stream reads wrong), or ``rungs``, and
    the picture stream's up-sampler."""
    from conftest import scaled_stream_state

    state, config = scaled_stream_state(codec.continuous, gain=gain, rungs=rungs)
    Checkpoint(folder / "fine.ckpt").save(
        1,
        {"model": state, "upsampler": codec.upsampler.state_dict()},
        {
            "config": config,
            "upsampler": dataclasses.asdict(codec.upsampler.config),
        },
    )


def _add_fine(run, model) -> int:
    return train(["add-fine", "--out", str(run), "--model-dir", str(model), "--version", "11"])


@pytest.fixture(scope="module")
def twin(codec, tmp_path_factory) -> HybridCodec:
    """The shipped model with a FINE stream that quantises 1.5x finer."""
    run = tmp_path_factory.mktemp("fine-run")
    _fine_checkpoint(codec, run, gain=1.5)
    assert _add_fine(run, run / "model") == 0
    return HybridCodec.from_pretrained(run / "model")


def test_a_model_without_a_fine_stream_codes_fine_frames_itself(codec):
    from conftest import with_rungs

    parts = (codec.tokenizer, codec.continuous, codec.predictor, codec.complexity)
    plain = HybridCodec(*parts, model_id=1)
    assert plain.fine_stream is None and plain.fine_coder is plain
    assert plain.coder_for(FINE) is plain and plain.coder_for(1) is plain
    with pytest.raises(ValueError, match="FINE stream has 2 rungs"):
        HybridCodec(*parts, model_id=1, fine_stream=with_rungs(codec.continuous, 2))


def test_the_fine_stream_codes_fine_frames_and_leaves_the_others_alone(codec, twin, small_image):
    assert twin.model_id != codec.model_id
    fine = twin.coder_for(FINE)
    assert fine.continuous is twin.fine_stream and fine.upsampler is twin.fine_upsampler
    assert twin.coder_for(FINE, residual=True) is twin.residual_coder
    assert twin.residual_coder.coder_for(FINE) is twin.residual_coder  # no view of a view
    full = [p.continuous for p in twin.encode_tier0(small_image).patches]
    assert full == [p.continuous for p in codec.encode_tier0(small_image).patches]
    ours = twin.encode_tier0(small_image, rate=Fixed(2), scale=FINE)
    theirs = codec.encode_tier0(small_image, rate=Fixed(2), scale=FINE)
    assert [p.continuous for p in ours.patches] != [p.continuous for p in theirs.patches]
    assert ours.continuous_bytes > theirs.continuous_bytes  # finer quantisation costs more
    shown = twin.decode(ours)
    assert shown.shape == small_image.shape
    assert psnr(small_image, shown) > psnr(small_image, codec.decode(theirs))
    # The same strings read by the picture stream: another ŷc, a worse picture.
    misread = codec.decode(replace(ours, model_id=codec.model_id))
    assert psnr(small_image, misread) < psnr(small_image, shown) - 1
    # The planner's table at FINE is the FINE stream's.
    table = twin.rung_table(small_image, FINE)
    assert not np.array_equal(table.bits, codec.rung_table(small_image, FINE).bits)


def test_a_fine_frame_joins_its_strings_by_the_fine_stream(twin, small_image):
    enc = twin.encode_tier0(small_image, rate=Fixed(1), scale=FINE)
    assert len(enc.patches) >= 4

    def sent(joint: bool):
        config = PacketizerConfig(joint_tier0=joint)
        joiner = Tier0Joiner(twin) if joint else None
        packets = packetize(enc, Packetizer(twin.model_id, 1, config, joiner=joiner), frame_id=1)
        return [p for _, p in packets.in_priority_order()]

    joined, plain = sent(True), sent(False)
    assert sum(map(len, joined)) < sum(map(len, plain))
    assert np.array_equal(whole_picture(twin, joined), twin.decode(enc))
    assert np.array_equal(whole_picture(twin, plain), twin.decode(enc))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(2):
        img = rng.integers(0, 256, (260, 300, 3), dtype=np.uint8)
        Image.fromarray(img).save(folder / f"p{i}.png")
    return folder


def test_fine_stages_train_and_refuse_what_does_not_fit(codec, photos, tmp_path):
    run, model = tmp_path / "run", tmp_path / "model"
    common = ["--data", str(photos), "--out", str(run), "--device", "cpu"]
    assert train(["fine", *common, "--steps", "2", "--batch", "2", "--crop", "128"]) == 0
    state = Checkpoint(run / "fine.ckpt").load()
    assert state["step"] == 2 and state["args"]["config"]["rungs"] == codec.continuous.rungs
    assert set(state["states"]) >= {"model", "upsampler", "opt"}
    assert _add_fine(run, model) == 0
    loaded = HybridCodec.from_pretrained(model)
    assert loaded.fine_stream is not None and loaded.fine_upsampler is not None
    # The run moved the stream away from the picture stream it started from.
    assert not torch.equal(loaded.fine_stream.g_a[0].weight, loaded.continuous.g_a[0].weight)
    with pytest.raises(SystemExit, match="multiple of 128"):
        train(["fine", *common, "--crop", "100"])
    _fine_checkpoint(codec, run, rungs=2)
    with pytest.raises(SystemExit, match="rungs"):
        _add_fine(run, model)
    assert _add_fine(tmp_path / "none", model) == 2  # no run: one line, status 2


def test_fine_training_goes_on_from_the_models_fine_stream(codec, twin, tmp_path):
    from hfstream.codec.model_io import DEFAULT_MODEL_DIR
    from hfstream.train.stage_fine import source_modules

    _fine_checkpoint(codec, tmp_path, gain=1.5)
    assert _add_fine(tmp_path, tmp_path / "model") == 0
    stream, _ = source_modules(str(tmp_path / "model"))
    picture = codec.continuous.gain.detach()
    assert torch.allclose(stream.gain, 1.5 * picture, rtol=1e-2)
    shipped = codec.fine_stream or codec.continuous
    assert torch.equal(source_modules(str(DEFAULT_MODEL_DIR))[0].gain, shipped.gain)
