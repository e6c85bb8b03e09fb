"""A packet's patches coded as one pair of strings (``codec.joint_strings``), and the
rANS calls under every string (``codec.rans``)."""

from __future__ import annotations

from dataclasses import replace

import msgpack
import numpy as np
import pytest
import torch

from hfstream.codec import rans
from hfstream.codec.frame_coding import packetize
from hfstream.codec.joint_strings import Tier0Joiner, join_strings, split_joint, split_strings
from hfstream.codec.rates import Fixed
from hfstream.media.samples import bundled_image
from hfstream.planning.temporal import encode_predicted
from hfstream.protocol.packetizer import FramePackets, Packetizer
from hfstream.protocol.reassembly import Reassembler, ReassemblerConfig
from hfstream.protocol.tier0 import (
    MAX_JOINT_PATCHES,
    JointStrings,
    JointTier0Entry,
    Tier0Entry,
    parse_tier0,
)
from hfstream.protocol.wire import (
    HEADER_SIZE,
    TAG_SIZE,
    Packet,
    PacketType,
    WireError,
    parse_header,
)
from hfstream.stream.progressive import whole_picture


def test_rans_codes_as_compressai_does(codec):
    conditional = codec.continuous.gaussian_conditional
    gen = torch.Generator().manual_seed(0)
    symbols = torch.randint(-40, 40, (3, 8, 4, 4), generator=gen).float()
    symbols[0, 0, 0, 0] = 900  # beyond every CDF: the coder's escape path
    indexes = torch.randint(0, conditional._quantized_cdf.shape[0], (3, 8, 4, 4), generator=gen)
    strings = rans.encode(conditional, symbols, indexes.int())
    assert strings == conditional.compress(symbols, indexes.int())
    decoded = rans.decode(conditional, strings, indexes.int())
    assert torch.equal(decoded.float(), conditional.decompress(strings, indexes.int()))
    assert torch.equal(decoded.float(), symbols)
    with pytest.raises(ValueError, match="strings for indexes"):
        rans.decode(conditional, strings[:2], indexes.int())


def _strings(codec, image, rung):
    return [p.continuous for p in codec.encode_tier0(image, rate=Fixed(rung)).patches]


@pytest.mark.parametrize("rung", [0, 5])
def test_joined_strings_split_back_into_each_patchs_own(codec, rung):
    image = np.random.default_rng(rung).integers(0, 255, (256, 768, 3), dtype=np.uint8)
    strings = _strings(codec, image, rung)
    y, z = join_strings(codec.continuous, strings)
    assert len(y) + len(z) < sum(len(a) + len(b) for a, b in strings) - 2 * 8
    joint = JointStrings((4, 0, 9), y, z)
    assert split_strings(codec.continuous, joint) == strings
    # Read by another stream's entropy model the split is another set of strings, or none.
    assert split_joint(codec.residual_stream, joint) != strings


def test_a_predicted_frame_joins_its_strings_and_decodes_as_before(codec, brighter):
    reference, frame = brighter
    planned = encode_predicted(codec, frame, 900, reference=reference, reference_id=0)
    assert planned.packetizer.joint_tier0
    coded = sum(p.continuous is not None for p in planned.encoded.patches)
    assert coded >= 2

    def sent(config, joiner):
        packets = packetize(
            planned.encoded, Packetizer(codec.model_id, 1, config, joiner=joiner), frame_id=1
        )
        return [p for _, p in packets.in_priority_order()]

    joined = sent(planned.packetizer, Tier0Joiner(codec))
    plain = sent(replace(planned.packetizer, joint_tier0=False), None)
    assert sum(map(len, joined)) < sum(map(len, plain)) - 8 * (coded - 1)
    sealed = sum(len(p) + TAG_SIZE for p in joined)  # the tags come when packets are sealed
    assert sealed == planned.plan.tier0_bytes + planned.plan.parity_bytes
    header, _ = parse_header(joined[0])
    assert header.type == PacketType.TIER0
    payload = msgpack.unpackb(joined[0][HEADER_SIZE:])
    assert any(isinstance(e[0], list) for e in payload)  # a joint entry
    entries = parse_tier0(joined[0][HEADER_SIZE:], header.patches, predicted=True)
    assert sum(isinstance(e, Tier0Entry) and e.joint is not None for e in entries) >= 2
    ours = whole_picture(codec, joined, reference=reference)
    assert np.array_equal(ours, whole_picture(codec, plain, reference=reference))
    with pytest.raises(ValueError, match="needs the codec's joiner"):
        sent(planned.packetizer, None)


@pytest.fixture(scope="module")
def joined(codec, brighter) -> FramePackets:
    """The packets of a predicted frame whose tier-0 packets join their strings."""
    reference, frame = brighter
    planned = encode_predicted(codec, frame, 900, reference=reference, reference_id=0)
    return packetize(
        planned.encoded,
        Packetizer(codec.model_id, 1, planned.packetizer, joiner=Tier0Joiner(codec)),
        frame_id=1,
    )


def test_forged_joint_entries_are_refused_or_lost(codec, brighter, joined):
    reference, frame = brighter
    packet = joined.tier0[0]
    payload = msgpack.unpackb(packet[HEADER_SIZE:])
    at = next(i for i, e in enumerate(payload) if isinstance(e[0], list))
    patches = parse_header(packet)[0].patches

    def body(entry):
        return msgpack.packb([*payload[:at], entry, *payload[at + 1 :]], use_bin_type=True)

    def parsed(entry):
        return parse_tier0(body(entry), patches, predicted=True)

    joint = payload[at]
    many = MAX_JOINT_PATCHES + 1
    for bad, why in [
        ([[], [], [], joint[3], joint[4]], f"1..{MAX_JOINT_PATCHES} patches"),
        ([joint[0] + [joint[0][0]], joint[1] + [0], joint[2] + [0], joint[3], joint[4]], "twice"),
        ([joint[0], joint[1][:-1], joint[2], joint[3], joint[4]], "schedules and rungs"),
        ([list(range(many)), [0] * many, [0] * many, joint[3], joint[4]], "patches"),
        ([joint[0], joint[1], [99] * len(joint[0]), joint[3], joint[4]], "rung"),
    ]:
        with pytest.raises(WireError, match=why):
            parsed(bad)
    # Strings that parse but are noise: the patches split to nothing or to other strings,
    # never to a crash, and the frame still decodes.
    noise = bytes(np.random.default_rng(1).integers(0, 255, len(joint[3]), dtype=np.uint8))
    forged = parsed([joint[0], joint[1], joint[2], noise, joint[4]])
    share = next(e for e in forged if isinstance(e, Tier0Entry) and e.joint is not None)
    split = split_joint(codec.continuous, share.joint)
    assert split is None or len(split) == len(joint[0])
    entry = JointTier0Entry(share.joint, (share.schedule,) * len(joint[0]), (0,) * len(joint[0]))
    assert [e.patch for e in entry.entries()] == joint[0]
    bad = packet[:HEADER_SIZE] + body([joint[0], joint[1], joint[2], noise, joint[4]])
    shown = whole_picture(codec, [bad, *joined.tier0[1:]], reference=reference)
    assert shown.shape == frame.shape


def test_a_joint_entry_that_names_a_held_patch_is_dropped_whole(codec, joined):
    packet = joined.tier0[0]
    header, body = parse_header(packet)
    payload = msgpack.unpackb(body)
    joint = next(e for e in payload if isinstance(e[0], list))
    held = Reassembler(ReassemblerConfig(codec.model_id))
    # One of its patches arrived first on its own: the joint entry then counts for none.
    alone = [joint[0][0], joint[1][0], joint[2][0], b"y", b"z"]
    first = Packet(replace(header, seq=1, count=3), msgpack.packb([alone], use_bin_type=True))
    held.receive(first.serialize(), 0.0)
    held.receive(Packet(replace(header, count=3), body).serialize(), 0.0)  # not yet whole
    (state,) = held
    assert list(state.tier0) == [joint[0][0]] and state.tier0[joint[0][0]].joint is None
    assert held.entries_dropped["duplicate"] == len(joint[0])


def test_an_intra_frame_joins_its_strings_and_spends_what_they_save(codec):
    from hfstream.eval.budget import at_budget
    from hfstream.planning import encode_within
    from hfstream.protocol.packetizer import PacketizerConfig

    # Four patches at 0.06 bpp, at full size: mid-ladder rungs in one tier-0 packet.
    image = bundled_image()[:512, :512].copy()
    budget = 0.06 * 512 * 512 / 8
    config = PacketizerConfig(parity_ratio=0.0, send_withheld=False)

    def planned(joint: bool):
        return encode_within(
            codec,
            image,
            budget,
            config=config,
            parity_ratios=(0.0,),
            scales=(1,),
            joint_strings=joint,
        )

    joint, plain = planned(True), planned(False)
    assert joint.packetizer.joint_tier0 and not plain.packetizer.joint_tier0
    packets = packetize(
        joint.encoded,
        Packetizer(codec.model_id, 1, joint.packetizer, joiner=Tier0Joiner(codec)),
        frame_id=1,
        priors=joint.priors,
        tiers=(0, 1),
    )
    sent = [p for _, p in packets.in_priority_order()]
    assert sum(len(p) + TAG_SIZE for p in sent) <= budget
    # The bytes the joined strings save buy higher rungs.
    assert sum(joint.plan.rungs) > sum(plain.plan.rungs)
    assert any(isinstance(e[0], list) for e in msgpack.unpackb(sent[0][HEADER_SIZE:]))
    # The receiver splits them back: the same picture as the encoding decoded directly.
    shown = whole_picture(codec, sent)
    assert np.array_equal(shown, codec.decode(joint.encoded.kept_only()))
    # The evaluation at a budget measures the stream a sender sends: joined.
    plan, _, _ = at_budget(codec, image, 0.06)
    assert plan.packetizer.joint_tier0
