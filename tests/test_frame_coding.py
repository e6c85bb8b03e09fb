"""The one encode-to-packets path (``frame_coding.packetize``) and back."""

from __future__ import annotations

import asyncio
import copy
import dataclasses

import pytest
import torch

from hfstream.codec.frame_coding import index_priors, packetize
from hfstream.protocol.packetizer import Packetizer, PacketizerConfig
from hfstream.protocol.reassembly import Reassembler, ReassemblerConfig
from hfstream.protocol.wire import FLAG_PRIOR, FLAG_TIER2, parse_header
from hfstream.stream.progressive import FrameDecodeState, build_encoded


@pytest.fixture(scope="module")
def encoded(codec, small_image):
    return codec.encode(small_image, "1_4")


def test_packetize_sends_the_tiers_asked_for(codec, encoded):
    p = Packetizer(codec.model_id, config=PacketizerConfig(parity_ratio=0.5))
    full = packetize(encoded, p, frame_id=3, priors=index_priors(codec, encoded))
    assert full.tier0 and full.parity and full.tier1 and full.tier2
    h, _ = parse_header(full.tier1[0])
    assert h.frame_id == 3 and h.flags == FLAG_PRIOR | FLAG_TIER2
    assert (h.height, h.width, h.codebook_size) == (240, 300, encoded.codebook_size)
    vq = packetize(encoded, p, frame_id=4, tiers=(1,))
    assert not vq.tier0 and not vq.parity and not vq.tier2 and vq.tier1
    assert parse_header(vq.tier1[0])[0].flags == 0  # fixed-length, no tier 2
    quiet = Packetizer(codec.model_id, config=PacketizerConfig(send_withheld=False))
    assert packetize(encoded, quiet, frame_id=5).tier2 == []


def test_packetize_refuses_another_models_frame(codec, encoded):
    p = Packetizer(codec.model_id ^ 1)
    with pytest.raises(ValueError, match="frame encoded with model .* the packetizer sends"):
        packetize(encoded, p, frame_id=0)
    with pytest.raises(ValueError, match="frame id must be in 0..2\\*\\*32-1, got -1"):
        packetize(encoded, Packetizer(codec.model_id), frame_id=-1)


def test_every_packet_back_gives_the_frame_sent(codec, encoded):
    p = Packetizer(codec.model_id)
    fp = packetize(encoded, p, frame_id=9, priors=index_priors(codec, encoded))
    r = Reassembler(ReassemblerConfig(codec.model_id))
    for _, d in fp.in_priority_order():
        r.receive(d, 0.0)
    (frame,) = r
    back = build_encoded(codec, frame, FrameDecodeState())
    for got, sent in zip(back.patches, encoded.patches, strict=True):
        assert (got.continuous, got.schedule, got.rung) == (
            sent.continuous,
            sent.schedule,
            sent.rung,
        )
        assert (got.indices == sent.indices).all()  # tier 2 too: every index arrived


@pytest.fixture(scope="module")
def ladder_codec(codec):
    """A model with a continuous ladder of at least 4 rungs (the shipped one if it has)."""
    from conftest import with_rungs

    if codec.continuous.rungs >= 4:
        return codec
    out = copy.copy(codec)
    out.continuous = with_rungs(codec.continuous, 4)
    return out


@pytest.fixture(scope="module")
def single_codec(codec):
    """The shipped model's weights with a single-rate continuous stream (rung 0 only)."""
    from conftest import with_rungs

    out = copy.copy(codec)
    out.continuous = with_rungs(codec.continuous, 1)
    out.continuous.update(force=True)
    return out


@pytest.fixture(scope="module")
def at_rung_2(ladder_codec, encoded, small_image):
    """``encoded`` with every patch's tier 0 coded again at rung 2 of the ladder."""
    from hfstream.codec.continuous import ContinuousCodec
    from hfstream.codec.frames import split_patches, to_tensor

    low = ContinuousCodec.downsample(to_tensor(split_patches(small_image)))
    strings = ladder_codec.continuous.compress_latent(low, rung=2)
    patches = tuple(
        dataclasses.replace(p, continuous=s, rung=2)
        for p, s in zip(encoded.patches, strings, strict=True)
    )
    return dataclasses.replace(encoded, patches=patches)


def _reassemble(codec, enc, rungs):
    fp = packetize(enc, Packetizer(codec.model_id), frame_id=1, priors=index_priors(codec, enc))
    r = Reassembler(ReassemblerConfig(codec.model_id, rungs=rungs))
    for _, d in fp.in_priority_order():
        r.receive(d, 0.0)
    return r


def test_the_rung_arrives_intact(ladder_codec, at_rung_2):
    r = _reassemble(ladder_codec, at_rung_2, rungs=ladder_codec.continuous.rungs)
    assert not r.drops
    (frame,) = r
    back = build_encoded(ladder_codec, frame, FrameDecodeState())
    assert [p.rung for p in back.patches] == [2, 2]
    assert [p.continuous for p in back.patches] == [p.continuous for p in at_rung_2.patches]
    # Decoded at rung 2, the latent is the sender's (at rung 0 it would not be).
    sent = ladder_codec.latents(list(at_rung_2.patches))
    assert torch.equal(ladder_codec.latents(list(back.patches)), sent)
    wrong = [dataclasses.replace(p, rung=0) for p in at_rung_2.patches]
    assert not torch.equal(ladder_codec.latents(wrong), sent)


def test_a_rung_outside_the_ladder_is_a_counted_drop(single_codec, ladder_codec, at_rung_2):
    codec = single_codec
    assert codec.continuous.rungs == 1
    r = _reassemble(ladder_codec, at_rung_2, rungs=codec.continuous.rungs)
    # The tier-0 packet, and the copy of it that its parity rebuilds: both dropped.
    assert r.drops == {"rung": 2}
    (frame,) = r  # opened by its index packets: they wait for a tier 0 that never comes
    assert frame.tier0 == {}
    # A frame assembled without the ladder check decodes those patches as if their
    # tier 0 were lost, never with a rung the model lacks.
    (frame,) = _reassemble(ladder_codec, at_rung_2, rungs=16)
    back = build_encoded(codec, frame, FrameDecodeState())
    assert all(p.continuous is None for p in back.patches)
    assert codec.decode(back).shape == (240, 300, 3)


def test_the_receiver_counts_a_foreign_rung_and_goes_on(single_codec, at_rung_2):
    from hfstream.protocol.auth import DATA, Sealer
    from hfstream.stream.receiver import Receiver, ReceiverConfig
    from hfstream.transports.memory import memory_pair

    codec = single_codec
    fp = packetize(at_rung_2, Packetizer(codec.model_id), frame_id=0, tiers=(0,))

    async def main():
        tx, rx = memory_pair()
        async with Receiver(rx, codec, ReceiverConfig(feedback_interval_s=None)) as receiver:
            sealer = Sealer(None, DATA, 0x65A1B2C3_00000001)
            for p in fp.tier0 + fp.parity:
                rx.inbox.put(sealer.seal(p))
            await tx.close()
            updates = [u async for u in receiver]
        return receiver, updates

    receiver, updates = asyncio.run(main())
    assert updates == [] and receiver.decode_errors == 0
    assert receiver.drops == {"rung": 2}  # the packet and its rebuilt copy
    assert "outside this decoder's ladder 0..0" in str(
        Reassembler(ReassemblerConfig(codec.model_id, rungs=1)).receive(fp.tier0[0], 0.0)[0]
    )


def test_index_share_counts_the_entries_that_arrived(codec, encoded):
    from hfstream.stream.progressive import index_share

    p = Packetizer(codec.model_id)
    fp = packetize(encoded, p, frame_id=2, priors=index_priors(codec, encoded))
    shares = []
    for tiers in ((0,), (0, 1), (0, 1, 2)):
        r = Reassembler(ReassemblerConfig(codec.model_id))
        for tier, d in fp.in_priority_order():
            if tier in tiers:
                r.receive(d, 0.0)
        (frame,) = r
        shares.append(index_share(codec, frame))
    assert shares == [0.0, 0.25, 1.0]  # tier 0 alone, kept 1_4 indices, and every index
    r = Reassembler(ReassemblerConfig(codec.model_id))
    for d in fp.tier1:  # indices whose tier 0 never came count for nothing
        r.receive(d, 0.0)
    assert [index_share(codec, f) for f in r] == [0.0]
