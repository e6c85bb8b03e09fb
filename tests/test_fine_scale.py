"""Frames coded FINE (at twice their size, so that the continuous stream's thumbnail is
2x down of the shown picture): codec, container, wire, receiver and planner."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hfstream.codec.frame_coding import packetize
from hfstream.codec.rates import Fixed
from hfstream.codec.scaling import downscale, upscale
from hfstream.eval.metrics import psnr
from hfstream.files import container
from hfstream.geometry import FINE, SCALES, scale_bits, scale_of_bits
from hfstream.media.samples import bundled_image
from hfstream.planning import encode_within
from hfstream.protocol.packetizer import FrameEntries, Packetizer
from hfstream.protocol.reassembly import Reassembler, ReassemblerConfig
from hfstream.protocol.wire import SCALE_SHIFT, IndexEntry, parse_header
from hfstream.stream.progressive import FrameDecodeState, build_encoded

FLAGS_OFFSET = 33  # of the packet header (wire.HEADER)


@pytest.fixture(scope="module")
def small() -> np.ndarray:
    """The bundled photo at 384x256: one row of two patches when coded FINE... times two."""
    return np.asarray(Image.fromarray(bundled_image()).resize((384, 256), Image.Resampling.LANCZOS))


@pytest.fixture(scope="module")
def fine(codec, small):
    return codec.encode_tier0(small, rate=Fixed(2), scale=FINE)


def test_scale_bits_round_trip_and_fine_repeats_pixels():
    assert [scale_of_bits(scale_bits(s)) for s in SCALES] == list(SCALES)
    img = np.random.default_rng(0).integers(0, 256, (6, 4, 3), np.uint8)
    big = downscale(img, FINE)
    assert (
        big.shape == (12, 8, 3) and (big[::2, ::2] == img).all() and (big[1::2, 1::2] == img).all()
    )
    # The box down of repeated pixels is the picture itself.
    assert (upscale(big, FINE) == img).all()


def test_a_fine_encoding_spends_more_and_shows_more(codec, small, fine):
    assert (fine.height, fine.width, fine.scale) == (512, 768, FINE)
    assert fine.shown_size == small.shape[:2] and len(fine.patches) == 6
    assert all(p.schedule == 0 and not p.known.any() for p in fine.patches)
    full = codec.encode_tier0(small, rate=Fixed(2))
    assert fine.continuous_bytes > 2 * full.continuous_bytes
    out = codec.decode(fine, mode="hybrid")  # any mode: a FINE frame is tier 0 alone
    assert out.shape == small.shape
    assert psnr(small, out) > psnr(small, codec.decode(full, mode="continuous")) + 1.0
    # ``encode`` makes the same tier-0-alone encoding, whatever schedule is asked.
    again = codec.encode(small, "1_1", rate=Fixed(2), scale=FINE)
    assert [p.continuous for p in again.patches] == [p.continuous for p in fine.patches]
    assert all(p.schedule == 0 for p in again.patches)


def test_the_container_keeps_a_fine_image_and_refuses_one_with_indices(codec, fine):
    blob = container.write(fine, codec)
    assert blob[16] >> 4 == 3
    back = container.read(blob, codec)
    assert back.scale == FINE and back.shown_size == fine.shown_size
    assert [p.continuous for p in back.patches] == [p.continuous for p in fine.patches]
    with pytest.raises(ValueError, match="tier 0 alone"):
        container.write(fine, codec, include_withheld=True)
    # A forged file: the first patch's kind byte says schedule 1_1 (its index blob is
    # then read as indices).
    forged = bytearray(blob)
    forged[17] = 0x10 | (forged[17] & 0x0F)
    with pytest.raises(container.ContainerError, match="coded FINE carries indices"):
        container.read(bytes(forged), codec)


def test_a_fine_frame_travels_and_the_receiver_refuses_its_indices(codec, small, fine):
    fp = packetize(fine, Packetizer(codec.model_id), frame_id=1)
    h, _ = parse_header(fp.tier0[0])
    assert (h.height, h.width, h.scale) == (512, 768, FINE)
    r = Reassembler(ReassemblerConfig(codec.model_id, max_frame_pixels=384 * 256))
    for _, d in fp.in_priority_order():
        assert not [e for e in r.receive(d, 0.0) if getattr(e, "reason", None)]
    (state,) = r
    back = build_encoded(codec, state, FrameDecodeState())
    assert back.scale == FINE and back.shown_size == small.shape[:2]
    assert codec.decode(back).shape == small.shape
    # Index packets of a FINE frame are refused, and the packetizer never makes them.
    entry = IndexEntry(0, 1, 0, 1, bytes(8), 0)
    forged = Packetizer(codec.model_id).packetize(
        FrameEntries(512, 768, 1024, False, tier1=[entry]), frame_id=2
    )
    packet = forged.tier1[0]
    flags = parse_header(packet)[0].flags | scale_bits(FINE) << SCALE_SHIFT
    flagged = packet[:FLAGS_OFFSET] + bytes([flags]) + packet[FLAGS_OFFSET + 1 :]
    events = r.receive(flagged, 0.0)
    assert [e.reason for e in events if hasattr(e, "reason")] == ["field"]
    with pytest.raises(ValueError, match="carries tier 0 alone"):
        Packetizer(codec.model_id).packetize(
            FrameEntries(512, 768, 1024, False, tier1=[entry], scale=FINE), frame_id=3
        )


def test_the_planner_codes_fine_only_where_the_full_size_cannot_spend_the_budget(codec, small):
    pixels = small.shape[0] * small.shape[1]
    modest = encode_within(codec, small, 0.08 * pixels / 8)
    assert modest.encoded.scale == 1
    rich = encode_within(codec, small, 0.3 * pixels / 8)
    assert rich.encoded.scale == FINE and rich.plan.schedule == "0"
    assert rich.plan.bytes <= 0.3 * pixels / 8
    assert psnr(small, codec.decode(rich.encoded)) > psnr(small, codec.decode(modest.encoded))
    assert encode_within(codec, small, 0.3 * pixels / 8, scales=(1, 2, 4)).encoded.scale == 1


def test_patches_too_large_for_one_packet_go_down_a_rung(codec):
    """Noise at a rich budget: the top rung's strings of a patch outgrow a small MTU's
    tier-0 packet, so the planner lowers those patches' rungs instead of failing."""
    from hfstream.codec.frame_coding import tier0_entries
    from hfstream.protocol.packetizer import PacketizerConfig, oversized_tier0

    noise = np.random.default_rng(5).integers(0, 256, (256, 256, 3), np.uint8)
    top = codec.encode_tier0(noise, rate=Fixed(codec.continuous.rungs - 1), scale=FINE)
    mtu = 576
    assert oversized_tier0(tier0_entries(top), mtu)  # the top rung does not fit
    config = PacketizerConfig(mtu=mtu, parity_ratio=0.0)
    planned = encode_within(codec, noise, 100_000, config=config, parity_ratios=(0.0,))
    assert not oversized_tier0(tier0_entries(planned.encoded), mtu)
    assert packetize(planned.encoded, Packetizer(codec.model_id, config=config), frame_id=0)


def test_a_fine_picture_is_brought_back_by_the_rounded_mean_of_each_2x2_block():
    rng = np.random.default_rng(2)
    coded = rng.integers(0, 256, (66, 98, 3), dtype=np.uint8)
    blocks = coded.reshape(33, 2, 49, 2, 3).astype(np.int64).sum(axis=(1, 3))
    assert np.array_equal(upscale(coded, FINE), ((blocks + 2) // 4).astype(np.uint8))
