"""The temporal synthesis of predicted frames: what it may change, how it is trained and
shipped, and the clips it learns from."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from hfstream.codec.motion import BLOCKS
from hfstream.codec.rates import Fixed
from hfstream.codec.temporal import predicted
from hfstream.codec.temporal_synthesis import TemporalConfig, TemporalSynthesis, synthesize
from hfstream.media.samples import bundled_image
from hfstream.train.__main__ import main as train
from hfstream.train.motion_clips import photo_clip


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return np.asarray(Image.fromarray(bundled_image()).resize((640, 448), Image.Resampling.LANCZOS))


def vectors(rows: list[list[int]]) -> np.ndarray:
    """(P, BLOCKS, 2) motion: each patch's vector for all its blocks."""
    return np.repeat(np.array(rows)[:, None, :], BLOCKS, axis=1)


def noisy_network() -> TemporalSynthesis:
    torch.manual_seed(0)
    network = TemporalSynthesis(TemporalConfig(width=8, blocks=1)).eval()
    torch.nn.init.normal_(network.head.weight, std=0.05)
    return network


def test_an_untrained_synthesis_shows_the_decoded_picture():
    rng = np.random.default_rng(0)
    decoded = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    moved = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    network = TemporalSynthesis(TemporalConfig(width=8, blocks=1)).eval()
    mask = np.ones((70, 90), bool)
    assert (synthesize(network, decoded, moved, mask) == decoded).all()


def test_the_synthesis_changes_only_the_masked_pixels():
    rng = np.random.default_rng(1)
    decoded = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    moved = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    mask = np.zeros((64, 96), bool)
    mask[10:30, 40:70] = True
    out = synthesize(noisy_network(), decoded, moved, mask)
    assert (out[~mask] == decoded[~mask]).all()
    assert (out[mask] != decoded[mask]).mean() > 0.5
    with pytest.raises(ValueError, match="decoded .* and reference"):
        noisy_network()(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 16))


def test_a_predicted_frame_goes_through_it_on_its_coded_patches_alone(codec, scene):
    reference = codec.decode(codec.encode_tier0(scene[:256, :512], rate=Fixed(3)))
    coded = codec.encode_tier0(scene[4:260, :512], rate=Fixed(3))
    enc = predicted(coded, {0}, reference=1, motion=vectors([[4, 0], [0, 0]]))
    sharpened = replace_temporal(codec, noisy_network())
    plain = sharpened.decode(enc, reference=reference, synthesis=False)
    shown = sharpened.decode(enc, reference=reference)
    assert (shown[:, :256] == plain[:, :256]).all()  # the reused patch
    assert (shown[:, 256:] != plain[:, 256:]).mean() > 0.5
    # An intra frame never goes through it.
    assert (sharpened.decode(coded) == codec.decode(coded)).all()


def replace_temporal(codec, network):
    clone = object.__new__(type(codec))
    clone.__dict__.update(codec.__dict__)
    clone.temporal = network
    return clone


def test_photo_clips_move_and_are_reproducible():
    photo = Image.fromarray(bundled_image())
    a = photo_clip(photo, photo, frames=3, size=(160, 96), rng=np.random.default_rng(5))
    b = photo_clip(photo, photo, frames=3, size=(160, 96), rng=np.random.default_rng(5))
    assert [f.shape for f in a] == [(96, 160, 3)] * 3 and all(f.dtype == np.uint8 for f in a)
    assert all((x == y).all() for x, y in zip(a, b, strict=True))
    assert not (a[0] == a[2]).all()


def test_temporal_stages_make_a_model_that_loads(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(bundled_image()).save(photos / "a.png")
    run = tmp_path / "run"
    common = ["--out", str(run)]
    assert (
        train(
            [
                "temporal-data",
                "--data",
                str(photos),
                *common,
                "--photo-clips",
                "1",
                "--frames",
                "3",
                "--size",
                "256",
                "256",
            ]
        )
        == 0
    )
    assert list((run / "temporal_data").glob("*.npz"))
    assert (
        train(
            [
                "temporal",
                *common,
                "--steps",
                "2",
                "--batch",
                "2",
                "--crop",
                "64",
                "--width",
                "8",
                "--blocks",
                "1",
            ]
        )
        == 0
    )
    model = tmp_path / "model"
    assert train(["add-temporal", *common, "--model-dir", str(model), "--version", "99"]) == 0
    from hfstream.codec.hybrid import HybridCodec

    loaded = HybridCodec.from_pretrained(model)
    assert loaded.temporal is not None and loaded.temporal.config.width == 8
    assert (
        train(
            [
                "add-temporal",
                "--out",
                str(tmp_path / "none"),
                "--model-dir",
                str(model),
                "--version",
                "9",
            ]
        )
        == 2
    )


def test_the_planner_counts_on_the_measured_gain(codec, scene):
    from hfstream.planning.temporal import synthesized

    table = codec.rung_table(scene[:256, :512], 1)
    assert synthesized(table, codec) is table or codec.temporal.gain_db
    clone = replace_temporal(codec, noisy_network())
    clone.temporal.gain_db = 3.0
    lowered = synthesized(table, clone)
    assert np.allclose(lowered.error, table.error / 10**0.3)
    assert (lowered.bits == table.bits).all()


def test_a_coded_patch_carries_its_motion_for_the_synthesis(codec, scene):
    from hfstream.codec.frame_coding import packetize
    from hfstream.protocol.packetizer import Packetizer
    from hfstream.protocol.reassembly import Reassembler, ReassemblerConfig
    from hfstream.stream.progressive import FrameDecodeState, build_encoded

    coded = codec.encode_tier0(scene[:256, :512], rate=Fixed(1))
    enc = predicted(coded, {0}, reference=2, motion=vectors([[1, 2], [-3, 4]]))
    assert enc.patches[1].continuous is not None and enc.patches[1].motion == ((-3, 4),) * 4
    packets = packetize(enc, Packetizer(codec.model_id), frame_id=5).in_priority_order()
    r = Reassembler(ReassemblerConfig(codec.model_id, rungs=codec.continuous.rungs))
    for _, p in packets:
        r.receive(p, 0.0)
    (state,) = r
    assert state.motion == {0: ((1, 2),) * 4, 1: ((-3, 4),) * 4} and set(state.tier0) == {1}
    got = build_encoded(codec, state, FrameDecodeState())
    assert got.patches[1].motion == ((-3, 4),) * 4 and got.patches[1].continuous is not None
