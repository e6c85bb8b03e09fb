"""The fallback: a frame's tier 0 coded again at a quarter of its size, shown where a
patch's own tier 0 is lost (codec, wire, reassembler, receiver side, planner, simulator)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from hfstream.codec.estimates import RungTable
from hfstream.codec.fallback import (
    BLEND_PX,
    FALLBACK_SCALE,
    encode_fallback,
    fallback_scale,
    patch_weights,
)
from hfstream.codec.frame_coding import packetize
from hfstream.eval.metrics import psnr
from hfstream.media.samples import bundled_image
from hfstream.planning import (
    Channel,
    FallbackOption,
    PatchErrors,
    encode_within,
    frame_outcomes,
    plan_frame,
)
from hfstream.protocol.packetizer import Packetizer
from hfstream.protocol.reassembly import (
    FrameComplete,
    PacketDropped,
    PatchesUpdated,
    Reassembler,
    ReassemblerConfig,
)
from hfstream.protocol.wire import (
    FallbackPayload,
    Packet,
    PacketType,
    WireError,
    pack_payload,
    parse_fallback,
    parse_header,
)
from hfstream.stream.progressive import FrameDecodeState, Stage, build_encoded, stage_of
from sim.channel import hfstream_receive, hfstream_tiered_packets, tier0_blocks


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    """The bundled photo at 768x512: 2x3 patches, its fallback one 192x128 patch."""
    return np.asarray(Image.fromarray(bundled_image()).resize((768, 512), Image.Resampling.LANCZOS))


@pytest.fixture(scope="module")
def encoded(codec, frame):
    return encode_fallback(codec, frame, codec.encode(frame, "1_4"))


def _patch_psnr(ref: np.ndarray, pic: np.ndarray, row: int, col: int) -> float:
    s = np.s_[row * 256 : (row + 1) * 256, col * 256 : (col + 1) * 256]
    return psnr(ref[s], pic[s])


def test_the_fallback_is_the_frame_at_a_quarter_of_its_size(codec, frame, encoded):
    fb = encoded.fallback
    assert fb is not None and fb.scale == FALLBACK_SCALE == 4
    assert (fb.height, fb.width) == (128, 192) and fb.shown_size == encoded.shown_size
    assert fb.continuous_bytes < 0.25 * encoded.continuous_bytes
    # Tier 0 alone, at the lowest rung: no index was coded.
    assert all(p.rung == 0 and not p.known.any() for p in fb.patches)
    # A frame that cannot be divided by 4, or that is coded at a quarter itself, has none.
    assert fallback_scale(codec.encode(frame[:510], "0")) is None
    with pytest.raises(ValueError, match="has no fallback"):
        encode_fallback(codec, frame[:510], codec.encode(frame[:510], "0"))
    with pytest.raises(ValueError, match="does not fit a frame"):
        dataclasses.replace(encoded, fallback=codec.encode(frame[:256], "0", scale=4))


def test_a_lost_patch_shows_the_fallback_and_the_others_stay(codec, frame, encoded):
    lost = dataclasses.replace(
        encoded,
        patches=tuple(
            dataclasses.replace(p, continuous=None) if i == 4 else p
            for i, p in enumerate(encoded.patches)
        ),
    )
    with_fb = codec.decode(lost, mode="continuous")
    without = codec.decode(dataclasses.replace(lost, fallback=None), mode="continuous")
    # The lost patch (row 1, column 1): far better from the fallback than borrowed.
    assert _patch_psnr(frame, with_fb, 1, 1) > _patch_psnr(frame, without, 1, 1) + 3
    # Away from its borders nothing else changed.
    far = np.ones(frame.shape[:2], bool)
    far[256 - BLEND_PX :, 256 - BLEND_PX : 512 + BLEND_PX] = False
    assert (with_fb[far] == without[far]).all()
    # With every patch's tier 0 there is nothing to fill: the fallback is not decoded.
    assert (
        codec.decode(encoded, mode="continuous")
        == codec.decode(dataclasses.replace(encoded, fallback=None), mode="continuous")
    ).all()


def test_patch_weights_fade_across_borders_only():
    lost = np.array([[True, False]])
    w = patch_weights(lost, 1, 256, 512)
    assert w[:, :256].min() == 1 and w[:, 256 + BLEND_PX :].max() == 0
    assert 0 < w[0, 256 + BLEND_PX // 2] < 1 and (np.diff(w[0, 240:300]) <= 0).all()
    assert (patch_weights(np.ones((1, 2), bool), 1, 200, 500) == 1).all()


def test_the_fallback_travels_in_packets_of_its_own_after_tier_0(codec, encoded):
    fp = packetize(encoded, Packetizer(codec.model_id), frame_id=7)
    assert len(fp.fallback) == 1
    order = fp.in_priority_order()
    types = [parse_header(p)[0].type for _, p in order]
    last_t0 = max(i for i, (tier, _) in enumerate(order) if tier == 0)
    assert types[last_t0] == PacketType.FALLBACK and order[last_t0][0] == 0
    header, payload = parse_header(fp.fallback[0])
    parsed = parse_fallback(payload, header)
    assert parsed.scale == 4 and [e.patch for e in parsed.entries] == [0]
    # A tier-0-only packetizing sends it too; an index-only one does not.
    assert packetize(encoded, Packetizer(codec.model_id), frame_id=7, tiers=(0,)).fallback
    assert not packetize(encoded, Packetizer(codec.model_id), frame_id=7, tiers=(1,)).fallback


def _forged(header_packet: bytes, payload: list) -> tuple:
    header, _ = parse_header(header_packet)
    h = dataclasses.replace(header, type=PacketType.FALLBACK)
    return h, Packet(h, pack_payload(payload)).serialize()


def test_forged_fallbacks_are_wire_errors(codec, encoded):
    fp = packetize(encoded, Packetizer(codec.model_id), frame_id=7)
    entry = parse_fallback(parse_header(fp.fallback[0])[1], parse_header(fp.fallback[0])[0])
    good = entry.entries[0].to_list()
    for payload, match in [
        ([4], "a scale and at least one entry"),
        ([3, good], "fallback scale 3 does not fit"),
        ([1, good], "fallback scale 1 does not fit"),
        ([True, good], "fallback scale must be an integer"),
        ([4, [1, *good[1:]]], "patch index must be an integer in 0..0"),
        ([4, good[:4]], "fallback entry must be an array of 5"),
    ]:
        h, _ = _forged(fp.tier0[0], payload)
        with pytest.raises(WireError, match=match):
            parse_fallback(pack_payload(payload), h)
    # A frame 766 wide cannot be divided by 4.
    h, _ = _forged(fp.tier0[0], [4, good])
    with pytest.raises(WireError, match="does not fit a 766x512 frame"):
        parse_fallback(pack_payload([4, good]), dataclasses.replace(h, width=766))


def test_the_reassembler_keeps_the_fallback_and_the_receiver_shows_it(codec, frame, encoded):
    fp = packetize(encoded, Packetizer(codec.model_id), frame_id=7)
    r = Reassembler(ReassemblerConfig(codec.model_id))
    events = r.receive(fp.fallback[0], 0.0)
    assert any(isinstance(e, PatchesUpdated) and e.patches == () for e in events)
    (state,) = r
    assert state.fallback_scale == 4 and list(state.fallback) == [0]
    assert stage_of(state) == Stage.PREVIEW  # a picture before any patch's own tier 0
    alone = codec.decode(build_encoded(codec, state, FrameDecodeState()))
    grey = np.full_like(frame, 128)
    assert psnr(frame, alone) > max(15, psnr(frame, grey) + 5)  # the frame, from the fallback
    # The same packet again is a duplicate; its count is tier 0's in the reports.
    assert isinstance(r.receive(fp.fallback[0], 0.0)[0], PacketDropped)
    assert state.packet_counts()[1][0] == 1
    # Complete only once the announced fallback came too.
    r2 = Reassembler(ReassemblerConfig(codec.model_id))
    done = [
        e
        for _, p in fp.in_priority_order()
        for e in r2.receive(p, 0.0)
        if isinstance(e, FrameComplete)
    ]
    assert len(done) == 1
    (full,) = r2
    assert full.packet_counts()[0][0] == len(fp.tier0) + len(fp.parity) + 1


def test_a_fallback_whose_scale_changes_within_a_frame_is_dropped(codec, encoded):
    fp = packetize(encoded, Packetizer(codec.model_id), frame_id=7)
    header, payload = parse_header(fp.fallback[0])
    entries = parse_fallback(payload, header).entries
    other = FallbackPayload(2, tuple(dataclasses.replace(e, patch=0) for e in entries))
    h = dataclasses.replace(header, seq=0, count=1)
    r = Reassembler(ReassemblerConfig(codec.model_id))
    r.receive(fp.fallback[0], 0.0)
    # Seen before (same seq) is a duplicate; a second packet of another scale is forged.
    forged = Packet(dataclasses.replace(h, seq=1, count=2), pack_payload(other.to_list()))
    events = r.receive(forged.serialize(), 0.0)
    assert isinstance(events[0], PacketDropped) and events[0].reason == "inconsistent"


def _table(patches: int = 6) -> RungTable:
    return RungTable(
        bits=np.full((patches, 2), 2400.0) * [1.0, 1.5],
        error=np.full((patches, 2), 3e-3) * [1.0, 0.8],
        signal=np.full(patches, 0.05),
        thumb_error=np.full((patches, 2), 1e-3),
        lost=np.full(patches, 0.08),
        blank=np.full(patches, 0.1),
        grid=(2, 3),
    )


def test_frame_outcomes_price_a_lost_patch_at_the_fallbacks_error():
    received, lost = np.full(6, 3e-3), np.full(6, 0.08)
    errors = PatchErrors(received, lost)
    fb = FallbackOption(150, 1, np.full(6, 8e-3))
    without = frame_outcomes(errors, Channel(loss=0.4), packets=2, parity_ratio=0.0, fec_block=16)
    with_fb = frame_outcomes(
        errors, Channel(loss=0.4), packets=2, parity_ratio=0.0, fec_block=16, fallback=fb
    )
    assert with_fb[1] > without[1] + 2 and with_fb[0] < without[0]
    # No loss: it changes nothing.
    assert frame_outcomes(
        errors, Channel(loss=0.0), packets=2, parity_ratio=0.0, fec_block=16, fallback=fb
    ) == frame_outcomes(errors, Channel(loss=0.0), packets=2, parity_ratio=0.0, fec_block=16)


def test_the_planner_sends_the_fallback_under_loss_only():
    t, fb = _table(), FallbackOption(200, 1, np.full(6, 8e-3))
    clean = plan_frame(t, {}, 4000, schedules=("0",), fallback=fb)
    assert clean.fallback_bytes == 0
    lossy = plan_frame(
        t, {}, 4000, channel=Channel(loss=0.4, rounds=4), schedules=("0",), fallback=fb
    )
    assert lossy.fallback_bytes == 200 * lossy.fallback_copies > 0 and lossy.bytes <= 4000
    plain = plan_frame(t, {}, 4000, channel=Channel(loss=0.4, rounds=4), schedules=("0",))
    assert lossy.expected_psnr > plain.expected_psnr
    # A fallback no better than a mid-grey patch is not worth its bytes.
    useless = FallbackOption(200, 1, np.full(6, 0.1))
    assert (
        plan_frame(
            t, {}, 4000, channel=Channel(loss=0.4), schedules=("0",), fallback=useless
        ).fallback_bytes
        == 0
    )


def test_encode_within_attaches_the_fallback_it_planned(codec, frame):
    budget = 0.05 * frame.shape[0] * frame.shape[1] / 8
    lossy = encode_within(codec, frame, budget, channel=Channel(loss=0.4, rounds=4))
    assert lossy.plan.fallback_bytes > 0 and lossy.encoded.fallback is not None
    fp = packetize(
        lossy.encoded,
        Packetizer(codec.model_id, config=lossy.packetizer),
        frame_id=0,
        frame_budget=budget,
        strict_budget=True,
    )
    assert sum(len(p) + 16 for p in fp.fallback) == lossy.plan.fallback_bytes
    assert encode_within(codec, frame, budget).encoded.fallback is None


def test_the_simulator_resends_the_fallback_and_shows_it(codec, frame):
    budget = int(0.05 * frame.shape[0] * frame.shape[1] / 8)
    tiered, detail = hfstream_tiered_packets(codec, frame, budget, "hybrid", False, 0.4, None, 0, 4)
    assert "fallback" in detail
    types = [parse_header(p)[0].type for _, p in tiered]
    fallback = [i for i, t in enumerate(types) if t == PacketType.FALLBACK]
    assert 1 <= len(fallback) <= 2
    assert ([fallback[0]], fallback[1:]) in tier0_blocks(tiered)  # copies count as parity
    # Every tier-0 data packet lost: the fallback alone still gives the frame.
    only = [p for (_, p), t in zip(tiered, types, strict=True) if t != PacketType.TIER0]
    pic, ok = hfstream_receive(codec, only, frame.shape, "hybrid")
    assert ok and psnr(frame, pic) > 15
    grey, _ = hfstream_receive(
        codec,
        [p for (_, p), t in zip(tiered, types, strict=True) if t == PacketType.TIER1],
        frame.shape,
        "hybrid",
    )
    assert psnr(frame, pic) > psnr(frame, grey) + 3


def test_a_second_copy_keeps_the_fallback_from_a_single_loss(codec, encoded):
    received, lost = np.full(6, 3e-3), np.full(6, 0.08)
    errors = PatchErrors(received, lost)
    one, two = (FallbackOption(150, 1, np.full(6, 8e-3), copies=c) for c in (1, 2))
    assert two.total_bytes == 300
    assert (
        frame_outcomes(
            errors, Channel(loss=0.4), packets=2, parity_ratio=0.0, fec_block=16, fallback=two
        )[1]
        > frame_outcomes(
            errors, Channel(loss=0.4), packets=2, parity_ratio=0.0, fec_block=16, fallback=one
        )[1]
    )
    config = dataclasses.replace(Packetizer(codec.model_id).config, fallback_copies=2)
    fp = packetize(encoded, Packetizer(codec.model_id, config=config), frame_id=7)
    assert len(fp.fallback) == 2
    (h0, p0), (h1, p1) = (parse_header(p) for p in fp.fallback)
    assert p0 == p1 and (h0.seq, h1.seq, h0.count) == (0, 1, 2)
    # The receiver takes either.
    r = Reassembler(ReassemblerConfig(codec.model_id))
    r.receive(fp.fallback[1], 0.0)
    (state,) = r
    assert list(state.fallback) == [0]
    with pytest.raises(ValueError, match="fallback_copies must be in 1..4"):
        dataclasses.replace(config, fallback_copies=0)
