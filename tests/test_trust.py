"""A peer that holds the key, but has a bug, a fast clock or a restart, cannot take the
receiver down: bounded work per frame, pixel limits on every path that makes a picture,
sessions and reports that survive restarts (sans-I/O, no wall clock read: time is passed
in)."""

from __future__ import annotations

import pytest

from hfstream.protocol.auth import (
    DATA,
    FEEDBACK,
    MAX_DATAGRAM,
    Opener,
    ReportOpener,
    Sealer,
    new_session_id,
    session_start,
    signal_mac,
    signal_mac_matches,
)
from hfstream.protocol.feedback import Report
from hfstream.protocol.reassembly import Reassembler, ReassemblerConfig
from hfstream.protocol.schedules import Schedule
from hfstream.protocol.wire import (
    MAX_INDEX_GROUPS,
    IndexEntry,
    Packet,
    PacketHeader,
    PacketType,
    ParityEntry,
    WireError,
    pack_payload,
)

KEY = bytes(range(32))
MODEL = 0xC0DEC0DE
T0 = 1_700_000_000.0
REPORT = Report(0.25, (4, 2, 1), (4, 1, 1), 0, 900)


def packet(ptype: PacketType, payload: list, *, seq=0, count=1, frame_id=0, size=256) -> bytes:
    header = PacketHeader(ptype, MODEL, 0, 0, frame_id, size, size, 10, 1, seq, count)
    return Packet(header, pack_payload(payload)).serialize()


def data_packet(session: int, counter: int = 0) -> bytes:
    """A sealed-shaped data datagram body of ``session`` (what ``Sealer`` numbers)."""
    return packet(PacketType.TIER1, [IndexEntry(0, Schedule.ALL, 0, 1, b"", 0).to_list()])


# ------------------------------------------------------------------ bounded work per frame
class CountingDict(dict):
    """A dict that counts the entries anyone looks at (by key or by walking it)."""

    looks = 0

    def get(self, key, default=None):
        CountingDict.looks += 1
        return super().get(key, default)

    def items(self):
        for item in super().items():
            CountingDict.looks += 1
            yield item

    def values(self):
        for value in super().values():
            CountingDict.looks += 1
            yield value


def test_a_flood_of_parity_packets_costs_one_block_each():
    """4 096 parity packets of one frame, each its own one-packet block: every packet
    looks at its own block only (the old reassembler walked every block on every packet:
    16.9-20 s of CPU for this frame)."""
    total = 4096
    r = Reassembler(ReassemblerConfig(MODEL, max_frame_bytes=8 << 20))

    def parity(first: int) -> bytes:
        entry = ParityEntry(first, 1, 1, (3,), b"abc", total)
        return packet(PacketType.PARITY, entry.to_list(), seq=first, count=total)

    r.receive(parity(0), 0.0)
    frame = r.frames[0]
    frame.parity = CountingDict(frame.parity)
    CountingDict.looks = 0
    for first in range(1, total):
        r.receive(parity(first), 0.0)
    assert frame.fec_attempts == total  # one decode per block, each block once
    assert CountingDict.looks <= 4 * total  # linear, not total**2 / 2


def test_overlapping_parity_blocks_are_refused():
    r = Reassembler(ReassemblerConfig(MODEL))
    a = ParityEntry(0, 4, 4, (3, 3, 3, 3), b"abc", 8)
    b = ParityEntry(2, 4, 4, (3, 3, 3, 3), b"abc", 8)
    r.receive(packet(PacketType.PARITY, a.to_list(), seq=0, count=2), 0.0)
    (event,) = r.receive(packet(PacketType.PARITY, b.to_list(), seq=1, count=2), 0.0)
    assert event.reason == "inconsistent" and "overlaps another block" in event.message


def test_index_entries_are_bounded_by_the_frames_geometry():
    """Every (group, groups) pair a key holder can write for one patch: one layout is
    kept, the rest dropped and counted (the old reassembler kept them all: 499 130
    entries and +311 MB for one 4 MiB frame)."""
    r = Reassembler(ReassemblerConfig(MODEL, max_frame_bytes=8 << 20))
    entries = [
        IndexEntry(0, Schedule.ALL, g, groups, b"", 0).to_list()
        for groups in range(1, MAX_INDEX_GROUPS + 1)
        for g in range(groups)
    ]
    per_packet = 40
    chunks = [entries[i : i + per_packet] for i in range(0, len(entries), per_packet)]
    for tier in (PacketType.TIER1, PacketType.TIER2):
        for seq, chunk in enumerate(chunks):
            r.receive(packet(tier, chunk, seq=seq, count=len(chunks)), 0.0)
        for seq, chunk in enumerate(chunks[:3]):  # and the same packets' entries again
            r.receive(packet(tier, chunk, seq=seq, count=len(chunks)), 0.0)
    frame = r.frames[0]
    assert len(entries) == 2080
    assert len(frame.indices) == 2  # groups = 1, the first layout, in each tier
    assert len(frame.indices) <= frame.patches * 2 * MAX_INDEX_GROUPS
    assert r.entries_dropped["contradicts"] == 2 * (len(entries) - 1)
    assert r.drops["duplicate"] == 6  # repeated packets are dropped whole


def test_index_entries_must_agree_with_the_patchs_tier0_schedule():
    from hfstream.protocol.wire import Tier0Entry

    r = Reassembler(ReassemblerConfig(MODEL))
    t0 = Tier0Entry(0, Schedule.QUARTER, b"y", b"z")
    r.receive(packet(PacketType.TIER0, [t0.to_list()]), 0.0)
    wrong = IndexEntry(0, Schedule.HALF, 0, 1, b"", 0)
    right = IndexEntry(0, Schedule.QUARTER, 0, 1, b"", 0)
    r.receive(packet(PacketType.TIER1, [wrong.to_list(), right.to_list()]), 0.0)
    assert list(r.frames[0].indices.values()) == [right]
    assert r.entries_dropped == {"contradicts": 1}


def test_more_groups_than_any_packetizer_writes_are_refused_at_parsing():
    r = Reassembler(ReassemblerConfig(MODEL))
    entry = [0, int(Schedule.ALL), 0, MAX_INDEX_GROUPS + 1, b"", 0]
    (event,) = r.receive(packet(PacketType.TIER1, [entry]), 0.0)
    assert event.reason == "field" and "group count" in event.message


# ------------------------------------------------------------------ datagram size
def test_the_datagram_size_is_checked_before_the_tag(monkeypatch):
    import hfstream.protocol.auth as auth

    big = Sealer(KEY, DATA, 1).seal(data_packet(1)) + bytes(64_000)
    macs = []
    real_tag = auth._tag
    monkeypatch.setattr(auth, "_tag", lambda key, body: macs.append(1) or real_tag(key, body))
    opener = Opener(KEY, DATA, max_datagram=1216)
    with pytest.raises(WireError, match="exceeds the 1216 accepted") as err:
        opener.open(big)
    assert err.value.reason == "size" and macs == []
    with pytest.raises(ValueError, match="max_datagram"):
        Opener(KEY, DATA, max_datagram=MAX_DATAGRAM + 1)


# ------------------------------------------------------------------ sessions and restarts
def sealed(start: float, key=KEY, random=b"\x01\x02\x03\x04"):
    return Sealer(key, DATA, new_session_id(start, random))


def test_a_sender_restarted_within_the_same_second_is_followed_at_once():
    first, restarted = sealed(T0 + 0.100), sealed(T0 + 0.350, random=b"\x09\x09\x09\x09")
    assert int(session_start(first.session_id)) == int(session_start(restarted.session_id))
    o = Opener(KEY, DATA)
    o.open(first.seal(data_packet(0)), wall_time=T0 + 0.2)
    o.open(restarted.seal(data_packet(0)), wall_time=T0 + 0.4)  # numbered from 0 again
    assert o.session_id == restarted.session_id and o.stats.switches == 1
    with pytest.raises(WireError, match="not newer"):  # the old one is still refused
        o.open(first.seal(data_packet(0)), wall_time=T0 + 0.5)


def test_a_session_dated_far_ahead_of_the_clock_is_refused():
    o = Opener(KEY, DATA, max_session_future_s=30)
    with pytest.raises(WireError, match="dated 3600 s ahead of this clock") as err:
        o.open(sealed(T0 + 3600).seal(data_packet(0)), wall_time=T0)
    assert err.value.reason == "session" and o.session_id is None
    o.open(sealed(T0 + 5).seal(data_packet(0)), wall_time=T0)  # clocks 5 s apart: fine


def test_one_packet_dated_in_the_future_pins_the_receiver_only_while_it_is_quiet():
    live, future = sealed(T0), sealed(T0 + 20, random=b"\x07\x07\x07\x07")
    o = Opener(KEY, DATA, session_idle_s=2.0)
    o.open(live.seal(data_packet(0)), wall_time=T0 + 1)
    o.open(future.seal(data_packet(0)), wall_time=T0 + 1.5)  # within the future bound
    assert o.session_id == future.session_id
    with pytest.raises(WireError, match="which is live"):
        o.open(live.seal(data_packet(0)), wall_time=T0 + 2.0)
    o.open(live.seal(data_packet(0)), wall_time=T0 + 3.6)  # the stray session went quiet
    assert o.session_id == live.session_id and o.stats.switches == 2
    # Going back kept the live session's replay window: its packets still open once.
    replay = live.seal(data_packet(0))
    o.open(replay, wall_time=T0 + 3.7)
    with pytest.raises(WireError, match="received before"):
        o.open(replay, wall_time=T0 + 3.8)


def test_a_restarted_receiver_is_heard_after_10000_reports():
    session = new_session_id(T0, b"\x01\x02\x03\x04")
    sender_side = ReportOpener(KEY, session)
    first = Sealer(KEY, FEEDBACK, session)
    for n in range(10_000):
        sender_side.open(first.seal(REPORT.to_packet(MODEL, session, n, receiver_id=11)))
    restarted = Sealer(KEY, FEEDBACK, session)  # a new receiver: counters from 0 again
    for n in range(12):
        sender_side.open(restarted.seal(REPORT.to_packet(MODEL, session, n, receiver_id=22)))
    assert sender_side.stats.accepted == 10_012 and sender_side.receivers == 2
    # Each receiver's reports still open once only.
    again = restarted.seal(REPORT.to_packet(MODEL, session, 99, receiver_id=22))
    sender_side.open(again)
    with pytest.raises(WireError, match="received before"):
        sender_side.open(again)
    other = Sealer(KEY, FEEDBACK, session + 1)  # another sender's reports
    with pytest.raises(WireError, match="not this one"):
        sender_side.open(other.seal(REPORT.to_packet(MODEL, session + 1, 0)))


# ------------------------------------------------------------------ unkeyed mode
def test_unkeyed_one_datagram_cannot_lock_the_stream_out():
    """Anybody can forge an unkeyed datagram: a packet number of 10**6, or a session
    dated 0xFFFFFFFF seconds, must not shut the real stream out."""
    real = Sealer(None, DATA, new_session_id(T0, b"\x01\x02\x03\x04"))
    o = Opener(None, DATA)
    for _ in range(3):
        o.open(real.seal(data_packet(0)), wall_time=T0 + 1)
    jump = Sealer(None, DATA, real.session_id)
    jump.counter = 10**6
    o.open(jump.seal(data_packet(0)), wall_time=T0 + 1.1)
    o.open(real.seal(data_packet(0)), wall_time=T0 + 1.2)  # not "older than the window"
    far = Sealer(None, DATA, 0xFFFFFFFF << 32)
    with pytest.raises(WireError, match="ahead of this clock"):
        o.open(far.seal(data_packet(0)), wall_time=T0 + 1.3)
    o.open(real.seal(data_packet(0)), wall_time=T0 + 1.4)
    assert o.session_id == real.session_id


# ------------------------------------------------------------------ signalling
@pytest.mark.parametrize("mac", ["é" * 64, "ab", 5, None, "0" * 63 + "\u0660", "g" * 64])
def test_a_malformed_signalling_mac_is_no_match_not_an_error(mac):
    assert signal_mac_matches(KEY, mac, "offer", "sdp") is False


def test_a_signalling_mac_matches_only_its_own_fields():
    mac = signal_mac(KEY, "offer", "sdp")
    assert signal_mac_matches(KEY, mac, "offer", "sdp")
    assert not signal_mac_matches(KEY, mac, "offer", "sdp2")
    assert not signal_mac_matches(None, mac, "offer", "sdp")


# ------------------------------------------------------------------ end to end
def test_a_receiver_shows_a_sender_restarted_within_the_same_second(
    codec, small_image, monkeypatch
):
    """Two senders on one link whose sessions start 250 ms apart in the same second: the
    receiver follows the second at once (the old receiver dropped all of it)."""
    import asyncio
    import math
    import time

    import hfstream.stream.sender as sender_module
    from hfstream.stream.coding import FixedCoding
    from hfstream.stream.receiver import Receiver, ReceiverConfig
    from hfstream.stream.sender import Sender, SenderConfig
    from hfstream.transports.memory import memory_pair

    second = math.floor(time.time())
    starts = iter([second + 0.1, second + 0.35])
    real_id = sender_module.new_session_id
    monkeypatch.setattr(sender_module, "new_session_id", lambda _now: real_id(next(starts)))
    image = small_image[:, :256]
    config = SenderConfig(rate_bytes_per_s=5e6, coding=FixedCoding("1_4"), key=KEY)

    async def run():
        tx, rx = memory_pair()
        receiver = Receiver(rx, codec, ReceiverConfig(frame_timeout_s=0.3, key=KEY))
        finals = []
        async with receiver:
            for _ in range(2):
                sender = Sender(tx, codec, config)
                await sender.send_image(image)
                await sender.flush()
                while True:
                    update = await asyncio.wait_for(receiver.__anext__(), 60)
                    if update.final:
                        finals.append((receiver.opener.session_id, update.frame_id))
                        break
            await tx.close()
        return finals, receiver

    finals, receiver = asyncio.run(run())
    assert len(finals) == 2 and finals[0][0] != finals[1][0]
    assert receiver.opener.stats.switches == 1
    assert receiver.auth_drops.get("session", 0) == 0


def test_decode_refuses_a_picture_over_the_pixel_limit_before_any_work(
    codec, small_image, tmp_path, monkeypatch, capsys
):
    """A 1.5 kB file declaring 4096x4096 shown at 4x (a 16384x16384 PNG, 63 s and 3.8 GB
    before the limit): one line, exit 2, no model loaded."""
    from hfstream.apps import cli
    from hfstream.files import container

    data = bytearray(container.write(codec.encode(small_image[:, :256], "1_4"), codec))
    data[10:12] = (4096).to_bytes(2, "big")
    data[12:14] = (4096).to_bytes(2, "big")
    data[16] = 2 << 4 | data[16] & 0x0F  # shown at 4x
    bomb = tmp_path / "bomb.hfs"
    bomb.write_bytes(bytes(data))
    monkeypatch.setattr(cli, "_codec", lambda model: pytest.fail("model loaded"))
    assert cli.main(["decode", str(bomb), str(tmp_path / "out.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "16384x16384 (268.4 Mpx), more than the 16 Mpx limit" in err
    assert not (tmp_path / "out.png").exists()
    small = container.read_header(bytes(data), max_pixels=300 * 10**6)
    assert small.shown_pixels == 16384 * 16384
    with pytest.raises(container.ContainerError, match="more than the 0.05 Mpx limit"):
        container.read(container.write(codec.encode(small_image), codec), codec, max_pixels=50_000)
