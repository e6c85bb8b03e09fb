"""Frames coded below the size they are shown at: codec, wire, container, receiver, planner."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from hfstream.codec.estimates import RungTable
from hfstream.codec.frame_coding import packetize
from hfstream.codec.scaling import downscale, scalable, upscale
from hfstream.eval.metrics import psnr
from hfstream.files import container
from hfstream.media.samples import bundled_image
from hfstream.planning import Channel, choose_scale, encode_within
from hfstream.protocol.packetizer import Packetizer
from hfstream.protocol.reassembly import Reassembler, ReassemblerConfig
from hfstream.protocol.wire import (
    HEADER,
    SCALE_SHIFT,
    Packet,
    PacketHeader,
    PacketType,
    WireError,
    parse_header,
)
from hfstream.stream.progressive import FrameDecodeState, build_encoded


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    """The bundled photo at 768x512: 2x3 patches at full size, 1x2 at half."""
    return np.asarray(Image.fromarray(bundled_image()).resize((768, 512), Image.Resampling.LANCZOS))


@pytest.fixture(scope="module")
def half(codec, frame):
    return codec.encode(frame, "1_4", scale=2)


def test_scaling_keeps_the_shown_size_and_refuses_what_it_cannot_divide():
    img = np.random.default_rng(0).integers(0, 256, (64, 96, 3), np.uint8)
    small = downscale(img, 2)
    assert small.shape == (32, 48, 3) and upscale(small, 2).shape == img.shape
    assert downscale(img, 1) is img and scalable(64, 96, 4) and not scalable(64, 98, 4)
    with pytest.raises(ValueError, match="cannot be coded at 1/4: 4 must divide both"):
        downscale(img[:, :94], 4)
    with pytest.raises(ValueError, match="Invalid scale 3, should be one of 1/2, 1, 2, 4"):
        upscale(img, 3)


def test_a_half_size_encoding_decodes_at_the_full_size(codec, frame, half):
    assert (half.height, half.width, half.scale) == (256, 384, 2)
    assert half.shown_size == frame.shape[:2] and len(half.patches) == 2
    full = codec.encode(frame, "1_4")
    assert half.continuous_bytes < 0.6 * full.continuous_bytes
    out = codec.decode(half, mode="continuous")
    assert out.shape == frame.shape
    # A picture of the frame, if a softer one than the full-size encoding gives.
    assert 20 < psnr(frame, out) < psnr(frame, codec.decode(full, mode="continuous"))
    recoded = codec.recode_continuous(frame, half, [1, 1])
    assert recoded.scale == 2 and [p.rung for p in recoded.patches] == [1, 1]
    with pytest.raises(ValueError, match="Invalid scale 3"):
        dataclasses.replace(half, scale=3)


def test_the_scaled_rung_table_counts_the_smaller_frame(codec, frame):
    full, small = codec.rung_table(frame), codec.rung_table(frame, 2)
    assert (full.patches, small.patches) == (6, 2)
    assert small.bits.sum(axis=0)[0] < 0.6 * full.bits.sum(axis=0)[0]
    # Errors are of the shown picture: up-scaling loses detail the full-size one keeps.
    assert (small.error > small.thumb_error).all()
    assert small.error[:, 0].mean() > full.error[:, 0].mean()


def test_scale_travels_on_the_wire_and_the_receiver_shows_the_full_size(codec, frame, half):
    fp = packetize(half, Packetizer(codec.model_id), frame_id=1)
    h, _ = parse_header(fp.tier0[0])
    assert (h.height, h.width, h.scale) == (256, 384, 2)
    r = Reassembler(ReassemblerConfig(codec.model_id))
    for _, d in fp.in_priority_order():
        r.receive(d, 0.0)
    (state,) = r
    back = build_encoded(codec, state, FrameDecodeState())
    assert back.scale == 2 and back.shown_size == frame.shape[:2]
    assert codec.decode(back, mode="continuous").shape == frame.shape


def _header(height: int, width: int, flags: int) -> bytes:
    h = PacketHeader(PacketType.TIER0, 1, 2, 0, 3, height, width, 10, flags, 0, 1)
    return Packet(h, b"\x90").serialize()


def test_forged_scales_are_wire_errors():
    assert parse_header(_header(100, 100, 1 << SCALE_SHIFT))[0].scale == 2
    with pytest.raises(WireError, match="101x100 shown at 1/2x is not a whole size"):
        parse_header(_header(100, 101, 3 << SCALE_SHIFT))
    with pytest.raises(WireError, match="9000x100 shown at 2x is not a whole size in 1..16384"):
        parse_header(_header(100, 9000, 1 << SCALE_SHIFT))
    assert HEADER.size == 40


def test_a_scaled_frame_counts_its_shown_pixels_against_the_receivers_limit(codec, half):
    fp = packetize(half, Packetizer(codec.model_id), frame_id=1)
    tight = Reassembler(ReassemblerConfig(codec.model_id, max_frame_pixels=256 * 384 * 2))
    events = tight.receive(fp.tier0[0], 0.0)
    assert any(getattr(e, "reason", "") == "geometry" for e in events)


def test_the_container_keeps_the_scale(codec, half):
    blob = container.write(half, codec)
    back = container.read(blob, codec)
    assert back.scale == 2 and back.shown_size == half.shown_size
    assert [p.continuous for p in back.patches] == [p.continuous for p in half.patches]
    with pytest.raises(ValueError, match="version 2 cannot hold an image coded below"):
        container.write(half, codec, version=2)
    forged = bytearray(blob)
    forged[16] |= 0x80  # the tiers byte: scale bits 8 (none such; 0x40 is gray)
    with pytest.raises(container.ContainerError, match="unknown scale bits"):
        container.read(bytes(forged), codec)


def _table(patches: int, bits: float, error: float) -> RungTable:
    return RungTable(
        bits=np.full((patches, 2), bits) * [1.0, 1.5],
        error=np.full((patches, 2), error) * [1.0, 0.8],
        signal=np.full(patches, 0.05),
        thumb_error=np.full((patches, 2), error / 2),
        lost=np.full(patches, 0.05),
    )


def test_choose_scale_prefers_a_plan_that_fits_then_the_better_one():
    full, small = _table(6, 3200.0, 2e-3), _table(2, 3000.0, 4e-3)
    # Full size fits and is better: kept.
    assert choose_scale({1: full, 2: small}, 6000) == (1, True)
    # Full size does not fit at its lowest rung: the smaller frame that fits wins.
    assert choose_scale({1: full, 2: small}, 1500) == (2, True)
    # Under heavy loss full size fits without protection, half size with it.
    assert choose_scale({1: full, 2: small}, 3000, channel=Channel(loss=0.4, rounds=4)) == (2, True)
    # Nothing fits: the one that overshoots least.
    assert choose_scale({1: full, 2: small}, 100) == (2, False)


def test_encode_within_codes_below_size_only_where_full_size_does_not_fit(codec, frame):
    budget = 0.05 * frame.shape[0] * frame.shape[1] / 8
    clean = encode_within(codec, frame, budget)
    assert clean.encoded.scale == 1
    # Heavy loss: full size still fits (with less protection), so it is kept.
    lossy = encode_within(codec, frame, budget, channel=Channel(loss=0.4, rounds=4))
    assert lossy.encoded.scale == 1 and lossy.plan.bytes <= budget
    tiny = encode_within(codec, frame, 0.015 * frame.shape[0] * frame.shape[1] / 8)
    assert tiny.encoded.scale == 2 and tiny.plan.schedule == "0"
    assert tiny.plan.bytes <= 0.015 * frame.shape[0] * frame.shape[1] / 8
    assert codec.decode(tiny.encoded).shape == frame.shape
    assert encode_within(codec, frame, 300, scales=(1,)).encoded.scale == 1
    # Under even the half-size lowest rung: a quarter of the size (one patch).
    least = encode_within(codec, frame, 250)
    assert least.encoded.scale == 4 and len(least.encoded.patches) == 1
    assert codec.decode(least.encoded).shape == frame.shape


def test_a_frame_whose_strings_overshoot_at_full_size_goes_smaller(codec):
    """Noise: the estimate of its lowest rung fits the budget, its strings do not; the
    planner then codes the next smaller size rather than send over the budget."""
    noise = np.random.default_rng(3).integers(0, 256, (512, 768, 3), np.uint8)
    full = codec.rung_table(noise).bits[:, 0].sum() / 8
    planned = encode_within(codec, noise, 0.98 * full, channel=Channel(loss=0.4, rounds=4))
    assert planned.encoded.scale > 1 and planned.plan.bytes <= 0.98 * full
    with pytest.raises(ValueError, match="no scale in \\(4,\\) divides a 766x512 frame"):
        encode_within(codec, noise[:, :766], 1000, scales=(4,))
