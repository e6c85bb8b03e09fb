"""Packetizer and reassembler, driven in memory with explicit loss patterns."""

import dataclasses

import numpy as np
import pytest

from hfstream.codec.schedules import Schedule
from hfstream.protocol.packetizer import FrameEntries, Packetizer, PacketizerConfig
from hfstream.protocol.reassembly import (
    FrameComplete,
    FrameExpired,
    PacketDropped,
    PatchesUpdated,
    Reassembler,
    ReassemblerConfig,
)
from hfstream.protocol.wire import (
    HEADER_SIZE,
    OVERHEAD,
    TAG_SIZE,
    IndexEntry,
    Packet,
    PacketType,
    Tier0Entry,
    parse_header,
)

MODEL = 0xC0DEC0DE


def frame_entries(patches=24, seed=0):
    rng = np.random.default_rng(seed)
    t0 = [
        Tier0Entry(i, Schedule.QUARTER, rng.bytes(int(rng.integers(120, 260))), rng.bytes(8))
        for i in range(patches)
    ]
    t1 = [
        IndexEntry(i, Schedule.QUARTER, g, 4, rng.bytes(20), 7)
        for g in range(4)
        for i in range(patches)
    ]
    t2 = [
        IndexEntry(i, Schedule.QUARTER, g, 4, rng.bytes(60), 9)
        for g in range(4)
        for i in range(patches)
    ]
    return t0, t1, t2


def entries(t0, t1, t2, height=1024, width=1536):
    return FrameEntries(height, width, 1024, True, t0, t1, t2)


def packets(frame_id=1, patches=24, config=None, seed=0):
    t0, t1, t2 = frame_entries(patches, seed)
    p = Packetizer(MODEL, config=config or PacketizerConfig())
    return p.packetize(entries(t0, t1, t2), frame_id=frame_id), (t0, t1, t2)


def feed(datagrams, now=0.0, **kw):
    r = Reassembler(ReassemblerConfig(MODEL, **kw))
    events = []
    for d in datagrams:
        events += r.receive(d, now)
    return r, events


def test_packets_fit_the_mtu_and_carry_everything():
    fp, (t0, t1, t2) = packets()
    assert fp.tier0 and fp.parity and fp.tier1 and fp.tier2
    assert all(len(p) + TAG_SIZE <= 1200 for _, p in fp.in_priority_order())
    r, events = feed([p for _, p in fp.in_priority_order()])
    (frame,) = r
    assert frame.tier0 == {e.patch: e for e in t0}
    assert len(frame.indices) == len(t1) + len(t2)
    assert sum(isinstance(e, FrameComplete) for e in events) == 1
    assert not r.drops


def test_header_overhead_is_small_for_full_packets():
    fp, _ = packets(patches=64)
    sent = [p for _, p in fp.in_priority_order()]
    # Header and tag of every datagram against what goes on the wire. Tier-0 packets are
    # filled evenly rather than to the brim (narrower parity), hence a little over 5 %.
    assert len(sent) * OVERHEAD / (sum(map(len, sent)) + len(sent) * TAG_SIZE) < 0.055


def test_one_lost_index_packet_removes_scattered_positions():
    fp, _ = packets()
    lost = fp.tier1[0]
    r, _ = feed([p for _, p in fp.in_priority_order() if p is not lost])
    (frame,) = r
    kept = {(patch, group) for tier, patch, group, _ in frame.indices if tier == 1}
    lost_pairs = {(i, g) for i in range(24) for g in range(4)} - kept
    assert lost_pairs
    # Each hit patch loses interleaved groups, never all of its kept positions.
    assert all(any((i, g) in kept for g in range(4)) for i in range(24))


@pytest.mark.parametrize("lose", [[0], [1], [0, 1]])
def test_tier0_loss_within_the_fec_power_is_recovered(lose):
    fp, (t0, _, _) = packets(config=PacketizerConfig(parity_ratio=0.5))
    assert len(fp.tier0) >= 3
    dropped = {fp.tier0[i] for i in lose}
    r, _ = feed([p for _, p in fp.in_priority_order() if p not in dropped])
    (frame,) = r
    assert frame.tier0 == {e.patch: e for e in t0}
    assert frame.recovered == len(lose)


def test_tier0_loss_beyond_the_fec_power_is_partial():
    fp, (t0, _, _) = packets(config=PacketizerConfig(parity_ratio=0.25))
    dropped = set(fp.tier0[:2]) | set(fp.parity)
    r, _ = feed([p for _, p in fp.in_priority_order() if p not in dropped])
    (frame,) = r
    assert 0 < len(frame.tier0) < len(t0) and frame.recovered == 0


def test_reordered_and_duplicated_delivery_gives_the_same_state():
    fp, _ = packets()
    sent = [p for _, p in fp.in_priority_order()]
    in_order, _ = feed(sent)
    rng = np.random.default_rng(3)
    shuffled = [sent[i] for i in rng.permutation(len(sent))] + sent[::3]
    r, events = feed(shuffled)
    a, b = next(iter(in_order)), next(iter(r))
    assert a.tier0 == b.tier0 and a.indices == b.indices
    assert r.drops == {"duplicate": len(sent[::3])}
    assert sum(isinstance(e, FrameComplete) for e in events) == 1


def test_memory_is_bounded_under_bogus_frame_ids():
    fp, _ = packets(patches=2)
    h, payload = parse_header(fp.tier0[0])
    r = Reassembler(ReassemblerConfig(MODEL, max_frames=8, closed_window=256))
    for fid in range(10_000):
        forged = Packet(dataclasses.replace(h, frame_id=fid), payload).serialize()
        r.receive(forged, now=fid * 1e-3)
    assert len(r.frames) == 8
    assert len(r._closed) == 256 and len(r._closed_set) == 256
    assert sum(f.bytes for f in r) <= 8 * len(fp.tier0[0])


def test_frame_byte_limit():
    fp, _ = packets()
    r, _ = feed([p for _, p in fp.in_priority_order()], max_frame_bytes=5000)
    assert r.drops.get("frame-size", 0) > 0
    assert next(iter(r)).bytes <= 5000


def test_timeout_expires_and_late_packets_are_dropped():
    fp, _ = packets()
    r = Reassembler(ReassemblerConfig(MODEL, frame_timeout=0.5))
    r.receive(fp.tier0[0], now=10.0)
    assert r.get_timer() == 10.5
    assert r.handle_timer(10.4) == []
    assert r.handle_timer(10.5) == [FrameExpired(1, "timeout", (5, 0, 0), (1, 0, 0))]
    assert r.get_timer() is None
    (ev,) = r.receive(fp.tier0[1], now=10.6)
    assert isinstance(ev, PacketDropped) and ev.reason == "late"


def test_garbage_is_counted_by_reason_and_never_opens_a_frame():
    fp, _ = packets()
    good = fp.tier0[0]
    r = Reassembler(ReassemblerConfig(MODEL))
    bad = [
        b"",
        good[:10],
        b"XX" + good[2:],
        good[:HEADER_SIZE] + b"\xc1",
        good[:4] + b"\0\0\0\1" + good[8:],
        good + b"\0" * 1200,
    ]
    for d in bad:
        (ev,) = r.receive(d, 0.0)
        assert isinstance(ev, PacketDropped)
    assert r.drops == {"truncated": 2, "magic": 1, "payload": 1, "model": 1, "size": 1}
    assert not r.frames


def test_inconsistent_geometry_within_a_frame():
    fp, _ = packets()
    r = Reassembler(ReassemblerConfig(MODEL))
    r.receive(fp.tier0[0], 0.0)
    h1, p1 = parse_header(fp.tier0[1])
    forged = Packet(dataclasses.replace(h1, height=512), p1).serialize()
    (ev,) = r.receive(forged, 0.0)
    assert ev.reason == "inconsistent"


def test_events_name_the_updated_patches():
    fp, (t0, _, _) = packets(patches=3)
    r = Reassembler(ReassemblerConfig(MODEL))
    events = r.receive(fp.tier0[0], 0.0)
    upd = [e for e in events if isinstance(e, PatchesUpdated)]
    assert upd[0].tier == 0 and upd[0].patches == (0, 1, 2)
    assert next(iter(r)).received_share(PacketType.TIER0) == 1.0


def test_frame_budget_cuts_tier2_to_what_is_left():
    t0, t1, t2 = frame_entries(8)
    p = Packetizer(MODEL)
    small = entries(t0, t1, t2, 512, 1024)
    full = p.packetize(small, frame_id=1)
    # Budgets count datagrams on the wire: each packet gains its tag when sealed.
    base = sum(len(q) + TAG_SIZE for q in full.tier0 + full.parity + full.tier1)
    room = base + len(full.tier2[0]) + TAG_SIZE
    cut = p.packetize(small, frame_id=1, frame_budget=room)
    assert len(cut.tier2) == 1 and cut.tier1 == full.tier1
    none = p.packetize(small, frame_id=1, frame_budget=base)
    assert none.tier2 == []
    h, _ = parse_header(none.tier0[0])
    assert not h.flags & 0x02  # no tier 2 announced
    assert parse_header(full.tier0[0])[0].flags & 0x02


def test_strict_budget_keeps_parity_then_a_tier1_prefix_never_cuts_tier0():
    t0, t1, t2 = frame_entries(24)
    p = Packetizer(MODEL)
    frame = entries(t0, t1, t2)
    full = p.packetize(frame, frame_id=1)
    assert full.cut == 0 and len(full.tier1) >= 2 and full.parity
    size = lambda ps: sum(len(q) + TAG_SIZE for q in ps)  # noqa: E731  (sealed sizes)
    body = lambda ps: [q[HEADER_SIZE:] for q in ps]  # noqa: E731  (flags may differ)
    tier0, parity = size(full.tier0), size(full.parity)
    # Room for tier 0, its parity and one tier-1 packet: tier 1 is cut to that prefix.
    budget = tier0 + parity + size(full.tier1[:1])
    one = p.packetize(frame, frame_id=1, frame_budget=budget, strict_budget=True)
    assert body(one.tier1) == body(full.tier1[:1]) and body(one.parity) == body(full.parity)
    assert one.tier2 == []
    assert size(one.tier0 + one.parity + one.tier1) <= budget
    assert one.cut == size(full.tier1[1:])
    assert parse_header(one.tier1[0])[0].count == 1  # the receiver expects what is sent
    # Room for tier 0 alone: no tier 1, no parity, tier 0 whole.
    bare = p.packetize(frame, frame_id=1, frame_budget=tier0, strict_budget=True)
    assert body(bare.tier0) == body(full.tier0) and bare.tier1 == [] and bare.parity == []
    assert bare.cut == size(full.tier1) + parity
    # Room for tier 0 and one tier-1 packet, not all the parity: parity first (a prefix of
    # it), tier 1 in what is left, and the cut bytes accounted for.
    room = tier0 + size(full.tier1[:1])
    part = p.packetize(frame, frame_id=1, frame_budget=room, strict_budget=True)
    assert 0 < len(part.parity) < len(full.parity)
    assert body(part.parity) == body(full.parity[: len(part.parity)])
    assert body(part.tier1) == body(full.tier1[: len(part.tier1)])
    kept = size(part.tier0 + part.parity + part.tier1)
    assert kept <= room and kept + part.cut == size(full.tier0 + full.parity + full.tier1)
    # Less than tier 0: tier 0 still goes whole (over the budget).
    under = p.packetize(frame, frame_id=1, frame_budget=tier0 // 2, strict_budget=True)
    assert body(under.tier0) == body(full.tier0)
    # Without strict_budget only tier 2 is ever cut.
    loose = p.packetize(frame, frame_id=1, frame_budget=tier0)
    assert body(loose.tier1) == body(full.tier1) and body(loose.parity) == body(full.parity)
