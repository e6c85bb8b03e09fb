"""Short, deterministic fuzzing of every parser of the protocol and of the receiver.

Each test draws random and mutated packets (bit flips, overwritten bytes, cuts, insertions
into real packets of every type) with a fixed seed (``derandomize=True``) and a small
example count, and checks the contract: a parser returns or raises ``WireError``, nothing
else; the reassembler and the receiver never raise, count every packet they refuse and
keep their containers within their bounds.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hfstream.protocol.auth import DATA, Opener, ReplayWindow, Sealer, parse_key
from hfstream.protocol.feedback import Report, parse_feedback
from hfstream.protocol.packetizer import FrameEntries, Packetizer, PacketizerConfig
from hfstream.protocol.reassembly import PacketDropped, Reassembler, ReassemblerConfig
from hfstream.protocol.schedules import Schedule
from hfstream.protocol.wire import (
    HEADER_SIZE,
    FallbackPayload,
    IndexEntry,
    Tier0Entry,
    WireError,
    parse_entries,
    parse_fallback,
    parse_header,
    parse_indices,
    parse_parity,
    parse_tier0,
    unpack_payload,
)

MODEL = 0xC0DEC0DE
KEY = bytes(range(32))
SESSION = 0x65A1B2C3_00000001
FAST = settings(
    derandomize=True,
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _packets() -> list[bytes]:
    """A real two-patch frame of every packet type, and a report."""
    t0 = [Tier0Entry(i, Schedule.QUARTER, bytes([i]) * 150, b"z" * 9, rung=i) for i in (0, 1)]
    t1 = [IndexEntry(i, Schedule.QUARTER, g, 2, bytes(20), 7) for g in (0, 1) for i in (0, 1)]
    t2 = [IndexEntry(i, Schedule.QUARTER, g, 2, bytes(60), 9) for g in (0, 1) for i in (0, 1)]
    fallback = FallbackPayload(4, (Tier0Entry(0, Schedule.NONE, b"f" * 40, b"z" * 9),))
    fp = Packetizer(MODEL, SESSION, PacketizerConfig(parity_ratio=1.0)).packetize(
        FrameEntries(240, 300, 1024, True, t0, t1, t2, fallback=fallback), frame_id=3
    )
    report = Report(0.25, (4, 2, 1), (4, 1, 1), 0, 900).to_packet(MODEL, SESSION, 1)
    return [p for _, p in fp.in_priority_order()] + [report]


PACKETS = _packets()


@st.composite
def mutated(draw: st.DrawFn, originals: list[bytes] = PACKETS) -> bytes:
    """One of ``originals`` with one to four mutations, or random bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=1300))
    data = bytearray(draw(st.sampled_from(originals)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "header"]))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[i] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[i:]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        else:  # a forged header field: frame id, geometry, counts
            j = draw(st.integers(20, HEADER_SIZE - 2))
            data[j : j + 2] = draw(st.binary(min_size=2, max_size=2))
    return bytes(data)


def _payload(data: bytes) -> bytes:
    return data[HEADER_SIZE:]


@FAST
@given(mutated())
def test_header_and_entry_parsers_raise_only_wire_errors(data):
    try:
        h, payload = parse_header(data)
    except WireError:
        return
    for parse in (
        lambda: parse_entries(h, payload),
        lambda: parse_tier0(payload, h.patches or 1),
        lambda: parse_indices(payload, h.patches or 1),
        lambda: parse_parity(payload),
        lambda: parse_fallback(payload, h),
        lambda: parse_feedback(payload),
        lambda: Report.from_payload(payload),
        lambda: unpack_payload(payload),
    ):
        with contextlib.suppress(WireError):
            parse()


@FAST
@given(st.lists(mutated(), min_size=1, max_size=40))
def test_reassembler_counts_every_refusal_and_stays_bounded(datagrams):
    config = ReassemblerConfig(MODEL, max_frames=2, max_frame_bytes=4000, closed_window=4)
    r = Reassembler(config)
    dropped = 0
    for n, d in enumerate(datagrams + PACKETS):
        events = r.receive(d, float(n))
        dropped += sum(isinstance(e, PacketDropped) for e in events)
        assert len(r.frames) <= 2
        assert all(f.bytes <= 4000 for f in r.frames.values())
        r.handle_timer(float(n))
    assert sum(r.drops.values()) == dropped
    assert r.packets == len(datagrams) + len(PACKETS)


@FAST
@given(st.lists(mutated(), min_size=1, max_size=20))
def test_opener_accepts_nothing_but_authentic_fresh_datagrams(packets):
    sealer = Sealer(KEY, DATA, SESSION)
    genuine = [sealer.seal(p) for p in PACKETS if len(p) >= HEADER_SIZE]
    opener = Opener(KEY, DATA)
    for d in genuine:
        opener.open(d)
    # Forged datagrams (sealed under another key, or not at all), altered genuine ones
    # and replays: every one is a WireError.
    stranger = Sealer(bytes(32), DATA, SESSION + 1)
    attempts = [stranger.seal(p) for p in packets if _sealable(p)] + packets + genuine
    for d in attempts:
        with pytest.raises(WireError) as err:
            opener.open(d)
        assert err.value.reason in ("truncated", "magic", "auth", "replay", "session")
    assert opener.stats.accepted == len(genuine)


@FAST
@given(st.lists(st.integers(0, 2**32 - 1), max_size=50), st.integers(1, 64))
def test_replay_window_never_accepts_a_number_twice(counters, size):
    # Jumps of up to 2**32 numbers: the window must not grow with them.
    window = ReplayWindow(size)
    seen = set()
    for c in counters:
        try:
            window.check(c)
        except WireError as e:
            assert e.reason == "replay"
            continue
        assert c not in seen
        window.accept(c)
        seen.add(c)
        assert window._bits.bit_length() <= size


def test_a_jump_of_the_counter_costs_no_memory():
    import tracemalloc

    window = ReplayWindow(4096)
    window.accept(0)
    tracemalloc.start()
    window.accept(2**32 - 1)  # one authentic (or, unkeyed, forged) packet far ahead
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20  # shifting the bitmap by the jump took 512 MB
    with pytest.raises(WireError, match="older than the replay window"):
        window.check(0)
    window.check(2**32 - 2)


@settings(FAST, max_examples=50)
@given(st.text(alphabet="0123456789abcdefABCDEF \n-", max_size=80))
def test_keys_parse_or_raise_value_errors(text):
    try:
        assert len(parse_key(text)) >= 16
    except ValueError as e:
        assert "key must be" in str(e)


def _sealable(p: bytes) -> bool:
    return len(p) >= HEADER_SIZE and p[:3] == PACKETS[0][:3]


# ---------------------------------------------------------------- the receiver
@pytest.fixture(scope="module")
def frame_packets(codec, small_image) -> list[bytes]:
    """The packets of a real one-patch frame (frame id 0), tier 0 first."""
    from hfstream.codec.frame_coding import index_priors, packetize

    enc = codec.encode(small_image[:, :256], "1_4")
    p = Packetizer(codec.model_id, config=PacketizerConfig(parity_ratio=0.5))
    fp = packetize(enc, p, frame_id=0, priors=index_priors(codec, enc))
    return [d for _, d in fp.in_priority_order()]


async def _receive(codec, datagrams: list[bytes], key: bytes | None):
    from hfstream.stream.receiver import Receiver, ReceiverConfig
    from hfstream.transports.memory import memory_pair

    config = ReceiverConfig(
        key=key, max_frames=2, decode_queue=1, max_updates=4, feedback_interval_s=None
    )
    tx, rx = memory_pair()
    async with Receiver(rx, codec, config) as receiver:
        for d in datagrams:
            rx.inbox.put(d)
        await tx.close()
        updates = [u async for u in receiver]
        stats = receiver.stats
    return receiver, updates, stats


RECEIVER = settings(FAST, max_examples=8)


@RECEIVER
@given(data=st.data())
def test_receiver_with_a_key_shows_only_the_real_frame(codec, frame_packets, data):
    # Altered copies of the real sealed datagrams, forgeries and replays, then the real
    # ones: nothing but the real frame may come out.
    sealer = Sealer(KEY, DATA, SESSION)
    genuine = [sealer.seal(p) for p in frame_packets]
    originals = genuine + [Sealer(None, DATA, SESSION + 1).seal(p) for p in frame_packets]
    forged = data.draw(st.lists(mutated(originals), min_size=1, max_size=12))
    burst = forged + genuine + genuine[:2]  # the last two are replays
    receiver, updates, stats = asyncio.run(asyncio.wait_for(_receive(codec, burst, KEY), 120))
    assert {u.frame_id for u in updates} == {0}
    assert updates[-1].final
    assert receiver.reassembler.packets == len(genuine)  # every other datagram: an auth drop
    assert sum(receiver.auth_drops.values()) == len(burst) - len(genuine)
    assert stats["frames_open"] == 0 and stats["decode_caches"] == 0


@RECEIVER
@given(data=st.data())
def test_receiver_without_a_key_counts_what_it_refuses(codec, frame_packets, data):
    # Unkeyed, mutated packets get past the tag (it is public) and reach the parsers and
    # the decoder: each is parsed, refused and counted, or decoded; nothing escapes.
    sealer = Sealer(None, DATA, SESSION)
    packets = data.draw(st.lists(mutated(frame_packets), min_size=1, max_size=12))
    burst = [sealer.seal(p) if _sealable(p) else p for p in packets + frame_packets]
    receiver, updates, stats = asyncio.run(asyncio.wait_for(_receive(codec, burst, None), 120))
    assert receiver.reassembler.packets + sum(receiver.auth_drops.values()) == len(burst)
    assert len(updates) <= 4
    assert stats["frames_open"] == 0 and stats["decode_queue"] == 0
    assert stats["decode_caches"] == 0
