"""The one encode-to-packets path (``frame_coding.packetize``) and back."""

from __future__ import annotations

import pytest

from hfstream.frame_coding import index_priors, packetize
from hfstream.progressive import FrameDecodeState, build_encoded
from hfstream.protocol.packetizer import Packetizer, PacketizerConfig
from hfstream.protocol.reassembly import Reassembler, ReassemblerConfig
from hfstream.protocol.wire import FLAG_PRIOR, FLAG_TIER2, parse_header


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
        assert (got.continuous, got.schedule, got.rung) == (sent.continuous, sent.schedule, 0)
        assert (got.indices == sent.indices).all()  # tier 2 too: every index arrived
