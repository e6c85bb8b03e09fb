"""Authenticated sessions: tags, sessions and the replay window (sans-I/O), and the
receiver refusing forged, altered and replayed datagrams before they cost a decode."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hfstream.protocol.auth import (
    DATA,
    FEEDBACK,
    Opener,
    ReplayWindow,
    Sealer,
    new_session_id,
    parse_key,
)
from hfstream.protocol.feedback import Report
from hfstream.protocol.wire import TAG_SIZE, WireError, parse_header

KEY = bytes(range(32))
T0 = 1_700_000_000.0
REPORT = Report(0.25, (4, 2, 1), (4, 1, 1), 0, 900).to_packet(0xC0DEC0DE, 0, 0)


def sealer(start=T0, key=KEY, direction=DATA):
    return Sealer(key, direction, new_session_id(start, b"\x01\x02\x03\x04"))


def test_sealed_packets_open_in_any_order_once():
    s = sealer()
    datagrams = [s.seal(REPORT) for _ in range(5)]
    assert all(len(d) == len(REPORT) + TAG_SIZE for d in datagrams)
    o = Opener(KEY, DATA)
    headers = [parse_header(o.open(d))[0] for d in datagrams[::-1]]
    assert {h.session_id for h in headers} == {s.session_id}
    assert [h.counter for h in headers] == [4, 3, 2, 1, 0]
    with pytest.raises(WireError, match="packet 2 was received before") as err:
        o.open(datagrams[2])
    assert err.value.reason == "replay"


@pytest.mark.parametrize(
    ("opener", "reason", "message"),
    [
        (lambda: Opener(bytes(32), DATA), "auth", "tag does not match"),  # another key
        (lambda: Opener(None, DATA), "auth", "tag does not match"),  # unkeyed receiver
        (lambda: Opener(KEY, FEEDBACK), "auth", "tag does not match"),  # reflected
        (lambda: Opener(KEY, DATA, session_id=7), "session", "not this one"),
    ],
)
def test_wrong_key_direction_or_session_is_refused(opener, reason, message):
    with pytest.raises(WireError, match=message) as err:
        opener().open(sealer().seal(REPORT))
    assert err.value.reason == reason


def test_every_altered_byte_and_truncation_is_refused():
    d = sealer().seal(REPORT)
    o = Opener(KEY, DATA)
    for i in range(len(d)):
        altered = bytearray(d)
        altered[i] ^= 0x01
        with pytest.raises(WireError) as err:
            o.open(bytes(altered))
        assert err.value.reason in ("auth", "magic")
    for n in range(len(d)):
        with pytest.raises(WireError):
            o.open(d[:n])
    assert o.stats.accepted == 0 and o.session_id is None


def test_an_older_session_cannot_displace_the_live_one():
    old, live, newer = sealer(T0 - 60), sealer(T0), sealer(T0 + 5)
    o = Opener(KEY, DATA)
    o.open(live.seal(REPORT))
    with pytest.raises(WireError, match="is not newer") as err:
        o.open(old.seal(REPORT))  # recorded from an earlier stream and replayed
    assert err.value.reason == "session"
    o.open(newer.seal(REPORT))  # the sender restarted
    assert o.session_id == newer.session_id and o.stats.switches == 1
    with pytest.raises(WireError, match="is not newer"):
        o.open(live.seal(REPORT))


def test_stale_sessions_are_refused_with_a_maximum_age():
    o = Opener(KEY, DATA, max_session_age_s=30)
    with pytest.raises(WireError, match="started 60 s ago"):
        o.open(sealer(T0 - 60).seal(REPORT), wall_time=T0)
    o.open(sealer(T0 - 10).seal(REPORT), wall_time=T0)


def test_replay_window_slides():
    w = ReplayWindow(8)
    for n in (5, 3, 12):
        w.check(n)
        w.accept(n)
    for n, message in ((3, "older than the replay window"), (12, "received before")):
        with pytest.raises(WireError, match=message):
            w.check(n)
    with pytest.raises(WireError, match="received before"):
        w.check(5)  # 7 below the top: still in the window, and seen
    w.check(6)
    w.accept(11)
    with pytest.raises(WireError, match="received before"):
        w.check(11)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.lists(st.integers(0, 300), max_size=60))
def test_replay_window_matches_a_plain_set_model(numbers):
    w = ReplayWindow(64)
    seen: set[int] = set()
    top = -1
    for n in numbers:
        fresh = n not in seen and n > top - 64
        try:
            w.check(n)
            ok = True
        except WireError:
            ok = False
        assert ok == fresh, n
        if ok:
            w.accept(n)
            seen.add(n)
            top = max(top, n)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.binary(max_size=300))
def test_random_datagrams_never_open(data):
    with pytest.raises(WireError):
        Opener(KEY, DATA).open(data)


def test_keys_are_checked():
    assert parse_key("00" * 16) == bytes(16)
    with pytest.raises(ValueError, match="at least 16 bytes, got 4"):
        parse_key("deadbeef")
    with pytest.raises(ValueError, match="hexadecimal"):
        parse_key("not a key at all, really not")


def test_a_forged_datagram_costs_one_mac_and_no_parsing(monkeypatch):
    """The tag is checked before anything past the fixed prefix is read: a forged
    datagram never reaches a parser, the replay window or the session policy (its CPU
    cost, one HMAC, is measured by ``python -m sim.auth_cost``, see
    docs/notebook/security-and-soak.md)."""
    import hfstream.protocol.auth as auth

    forged = bytearray(sealer().seal(REPORT) + bytes(1000))
    forged[-1] ^= 1
    o = Opener(KEY, DATA)
    macs = []
    real_tag = auth._tag
    monkeypatch.setattr(auth, "_tag", lambda key, body: macs.append(1) or real_tag(key, body))
    monkeypatch.setattr(o, "_may_switch", lambda *a: pytest.fail("session policy reached"))
    monkeypatch.setattr(o.window, "check", lambda *a: pytest.fail("replay window reached"))
    with pytest.raises(WireError, match="authentication tag does not match"):
        o.open(bytes(forged))
    assert macs == [1] and o.stats.accepted == 0


# ------------------------------------------------------------------ end to end
def test_keyed_receiver_shows_only_the_keyed_senders_frame(codec, small_image):
    from hfstream.stream.coding import FixedCoding
    from hfstream.stream.progressive import Stage
    from hfstream.stream.receiver import Receiver, ReceiverConfig
    from hfstream.stream.sender import Sender, SenderConfig
    from hfstream.transports.memory import memory_pair

    image = small_image[:, :256]

    async def capture(key):
        """The datagrams a sender with ``key`` puts on the wire for ``image``."""
        tx, rx = memory_pair()
        sender = Sender(
            tx, codec, SenderConfig(rate_bytes_per_s=5e6, coding=FixedCoding("1_4"), key=key)
        )
        await sender.send_image(image)
        await sender.flush()
        await sender.close()
        return rx.inbox.drain()

    async def main():
        forged = await capture(None)  # a stranger's stream, unkeyed
        other = await capture(bytes(32))  # a stream under another key
        old = await capture(KEY)  # recorded from an earlier session with the right key
        await asyncio.sleep(1.1)  # the live session starts in a later second
        tx, rx = memory_pair()
        receiver = Receiver(rx, codec, ReceiverConfig(key=KEY, frame_timeout_s=0.5))
        sender = Sender(
            tx, codec, SenderConfig(rate_bytes_per_s=5e6, coding=FixedCoding("1_4"), key=KEY)
        )
        updates = []
        async with receiver:
            for d in forged + other:
                rx.inbox.put(d)
            await sender.send_image(image)
            await sender.flush()
            await asyncio.sleep(0.05)
            for d in old:  # replayed after the live stream started
                rx.inbox.put(d)
            altered = bytearray(old[0])
            altered[40] ^= 1
            rx.inbox.put(bytes(altered))
            await tx.close()
            async for u in receiver:
                updates.append(u)
        await sender.close()
        return updates, receiver, len(forged) + len(other), len(old)

    updates, receiver, strangers, replays = asyncio.run(main())
    assert {u.frame_id for u in updates} == {0}
    assert updates[-1].stage == Stage.REFINED and updates[-1].final
    assert receiver.auth_drops == {"auth": strangers + 1, "session": replays}
    assert receiver.opener.stats.switches == 0


def test_reports_reach_only_their_own_sender(codec):
    from hfstream.stream.sender import Sender, SenderConfig
    from hfstream.transports.memory import memory_pair

    async def main():
        tx, _ = memory_pair()
        sender = Sender(tx, codec, SenderConfig(key=KEY))
        sender.start()
        report = Report(0.25, (4, 2, 1), (4, 1, 1), 0, 900).to_packet(codec.model_id, 0, 0)
        own = Sealer(KEY, FEEDBACK, sender.session_id)
        others = [
            Sealer(KEY, FEEDBACK, sender.session_id ^ 1).seal(report),  # another session
            Sealer(None, FEEDBACK, sender.session_id).seal(report),  # no key
            Sealer(KEY, DATA, sender.session_id).seal(report),  # data key, reflected
        ]
        good = own.seal(report)
        for d in [*others, good, good]:  # the second copy is a replay
            tx.inbox.put(d)
        while sum(sender.reports_rejected.values()) + sender.reports_received < 5:
            await asyncio.sleep(0.01)
        await sender.close()
        return sender

    sender = asyncio.run(main())
    assert sender.reports_received == 1
    assert sender.reports_rejected == {"session": 1, "auth": 2, "replay": 1}


def test_a_session_switch_restarts_frame_ids(codec, small_image):
    """A sender that restarts reuses frame id 0: the receiver must not drop it as late."""
    from hfstream.stream.receiver import Receiver, ReceiverConfig
    from hfstream.stream.sender import Sender, SenderConfig
    from hfstream.transports.memory import memory_pair

    image = small_image[:, :256]

    async def main():
        tx, rx = memory_pair()
        receiver = Receiver(rx, codec, ReceiverConfig(key=KEY, frame_timeout_s=0.5))
        finals = []
        async with receiver:
            for run in range(2):
                sender = Sender(tx, codec, SenderConfig(rate_bytes_per_s=5e6, key=KEY))
                await sender.send_image(image)
                await sender.flush()
                while len(finals) <= run:
                    u = await asyncio.wait_for(receiver.__anext__(), 60)
                    if u.final:
                        finals.append(u)
                await sender.close()
                await asyncio.sleep(1.05)  # the next session starts in a later second
        return finals, receiver

    finals, receiver = asyncio.run(main())
    assert [u.frame_id for u in finals] == [0, 0]
    assert receiver.opener.stats.switches == 1 and "late" not in receiver.drops


def test_sealing_keeps_the_packet_and_replaces_only_session_and_counter():
    s = sealer()
    d = s.seal(REPORT)
    h0, p0 = parse_header(REPORT)
    h1, p1 = parse_header(d[:-TAG_SIZE])
    assert p0 == p1
    assert dataclasses.replace(h1, session_id=0, counter=0) == h0
    assert (h1.session_id, h1.counter) == (s.session_id, 0)


def test_auth_cost_tool_reports_both_costs():
    from sim.auth_cost import measure

    r = measure(200, 600)
    assert r["forged_us"] > 0 and r["authentic_us"] > 0
