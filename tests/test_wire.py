from dataclasses import replace

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hfstream.codec.schedules import Schedule
from hfstream.protocol.capture_clock import capture_offset_ms, capture_time
from hfstream.protocol.feedback import FeedbackEntry, feedback_header, parse_feedback
from hfstream.protocol.wire import (
    HEADER_SIZE,
    IndexEntry,
    Packet,
    PacketHeader,
    PacketType,
    ParityEntry,
    Tier0Entry,
    WireError,
    pack_payload,
    parse_entries,
    parse_header,
    parse_parity,
)

MODEL = 0x1234ABCD


def header(ptype=PacketType.TIER0, **kw):
    base = dict(
        type=ptype,
        model_id=MODEL,
        session_id=0x0123456789ABCDEF,
        counter=5,
        frame_id=70000,
        height=512,
        width=768,
        codebook_bits=10,
        flags=1,
        seq=1,
        count=2,
        capture_ms=123_456,
    )
    base.update(kw)
    return PacketHeader(**base)


def tier0_packet():
    entries = [Tier0Entry(5, Schedule.QUARTER, b"y" * 150, b"z" * 9, rung=3).to_list()]
    return Packet(header(), pack_payload(entries)).serialize()


def test_header_round_trip():
    data = tier0_packet()
    h, payload = parse_header(data, MODEL)
    assert h == header()
    assert Packet(h, payload).serialize() == data
    assert h.patches == 6 and h.codebook_size == 1024
    assert HEADER_SIZE == 40


def test_entries_round_trip():
    data = tier0_packet()
    h, payload = parse_header(data)
    (e,) = parse_entries(h, payload)
    assert e == Tier0Entry(5, Schedule.QUARTER, b"y" * 150, b"z" * 9, rung=3)
    ie = IndexEntry(2, Schedule.NINTH, 1, 3, b"\x01\x02\x03\x04", 0xBEEF)
    h1 = header(PacketType.TIER1)
    assert parse_entries(h1, pack_payload([ie.to_list()])) == [ie]


def test_every_truncation_of_the_header_names_it():
    data = tier0_packet()
    for n in range(HEADER_SIZE):
        with pytest.raises(WireError, match=f"packet has {n} bytes, the header needs 40"):
            parse_header(data[:n])


def test_every_truncation_of_the_payload_is_refused():
    data = tier0_packet()
    for n in range(HEADER_SIZE, len(data)):
        h, payload = parse_header(data[:n])
        with pytest.raises(WireError, match=f"^payload of {n - HEADER_SIZE} bytes is truncated$"):
            parse_entries(h, payload)


# A parity share: block of 2 tier-0 packets from packet 4 (of 6), share 3, sizes 3 and 2.
PARITY = ParityEntry(4, 2, 3, (3, 2), b"\xaa\xbb\xcc", 6)
GOLDEN_PARITY = "96 04 02 03 92 03 02 c403 aabbcc 06"
# A report: 250 ms, (4, 2, 1) announced, (4, 1, 1) arrived, 3 late, 900 bytes, frames 7
# and 9 decoded complete.
FEEDBACK = FeedbackEntry(250, (4, 2, 1), (4, 1, 1), 3, 900, (7, 9))
GOLDEN_FEEDBACK = "96 ccfa 93 040201 93 040101 03 cd0384 92 07 09"


def golden(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def test_parity_and_feedback_entries_are_pinned_byte_for_byte():
    assert pack_payload(PARITY.to_list()) == golden(GOLDEN_PARITY)
    assert parse_parity(golden(GOLDEN_PARITY)) == PARITY
    assert pack_payload(FEEDBACK.to_list()) == golden(GOLDEN_FEEDBACK)
    assert parse_feedback(golden(GOLDEN_FEEDBACK)) == FEEDBACK
    h = feedback_header(MODEL, 7, 9)
    assert parse_header(Packet(h, b"").serialize())[0] == h


@pytest.mark.parametrize(
    "parse,data", [(parse_parity, GOLDEN_PARITY), (parse_feedback, GOLDEN_FEEDBACK)]
)
def test_every_truncation_of_parity_and_feedback_names_it(parse, data):
    data = golden(data)
    for n in range(len(data)):
        with pytest.raises(WireError, match=f"^payload of {n} bytes is truncated$") as err:
            parse(data[:n])
        assert err.value.reason == "truncated"
    with pytest.raises(WireError, match="^payload has 1 bytes after its array$"):
        parse(data + b"\x00")


@pytest.mark.parametrize(
    "entry,message",
    [
        ([4, 2, 3, [3, 2], b"abc"], "parity payload must be an array of 6"),
        ([4, 2, 3, [3, 2], b"abc", 0], "tier-0 total must be an integer in 1..4096, got 0"),
        ([6, 2, 3, [3, 2], b"abc", 6], "first must be an integer in 0..5, got 6"),
        ([4, 3, 3, [3, 2, 1], b"abc", 6], "k must be an integer in 1..2, got 3"),
        ([0, 33, 40, [1] * 33, b"abc", 40], "k must be an integer in 1..32, got 33"),
        ([4, 2, 1, [3, 2], b"abc", 6], "parity index must be an integer in 2..255, got 1"),
        ([4, 2, 256, [3, 2], b"abc", 6], "parity index must be an integer in 2..255, got 256"),
        ([4, 2, 3, [3, 2], b"", 6], "parity data must be 1..65535 bytes, got 0"),
        ([4, 2, 3, [3], b"abc", 6], "parity lengths must be an array of k = 2"),
        ([4, 2, 3, [3, 4], b"abc", 6], "parity length must be an integer in 1..3, got 4"),
        ([4, 2, 3, [3, True], b"abc", 6], "parity length must be an integer in 1..3, got True"),
    ],
)
def test_forged_parity(entry, message):
    with pytest.raises(WireError, match=f"^{message}$".replace("*", "\\*")) as err:
        parse_parity(pack_payload(entry))
    assert err.value.reason == "field"


B40, B32 = 2**40 - 1, 2**32 - 1


@pytest.mark.parametrize(
    "entry,message",
    [
        ([250, [4, 2, 1], [4, 1, 1], 3, 9], "feedback payload must be an array of 6"),
        (
            [250, [4, 2, 1], [4, 1, 1], 3, 9, [-1]],
            "feedback decoded frame must be an integer in 0..4294967295, got -1",
        ),
        (
            [250, [4, 2, 1], [4, 1, 1], 3, 9, list(range(17))],
            "feedback decoded frames must be 0..16 ids",
        ),
        (
            [-1, [4, 2, 1], [4, 1, 1], 3, 9, []],
            f"feedback interval must be an integer in 0..{B40}, got -1",
        ),
        ([250, [4, 2], [4, 1, 1], 3, 9, []], "feedback expected must be an array of 3"),
        ([250, [4, 2, 1], 7, 3, 9, []], "feedback received must be an array of 3"),
        (
            [250, [4, 2, -1], [4, 1, 1], 3, 9, []],
            f"feedback expected count must be an integer in 0..{B32}, got -1",
        ),
        (
            [250, [4, 2, 1], [4, 1, 1], 1.5, 9, []],
            f"feedback late count must be an integer in 0..{B40}, got 1.5",
        ),
        (
            [250, [4, 2, 1], [4, 1, 1], 3, 2**40, []],
            f"feedback bytes must be an integer in 0..{B40}, got {2**40}",
        ),
    ],
)
def test_forged_feedback(entry, message):
    with pytest.raises(WireError, match=f"^{message}$") as err:
        parse_feedback(pack_payload(entry))
    assert err.value.reason == "field"


def test_capture_time_round_trips_through_the_header_field():
    session = 1_700_000_000_000 << 22 | 0xABCD  # started at 1_700_000_000.000, to the ms
    assert capture_offset_ms(session, 1_700_000_012.3456) == 12_346
    assert capture_time(session, 12_346) == pytest.approx(1_700_000_012.346)
    # Before the session's start (a frame queued earlier) and past the field: clamped.
    assert capture_offset_ms(session, 1_699_999_999.0) == 0
    assert capture_offset_ms(session, 1_700_000_000 + 2.0**33) == 0xFFFFFFFF
    data = tier0_packet()
    assert data[24:28] == (123_456).to_bytes(4, "big")  # right after the frame id


def test_a_report_carries_its_receiver_id_and_no_geometry():
    report = Packet(feedback_header(MODEL, 7, 9, receiver_id=0xA0B0C0D0), b"").serialize()
    assert parse_header(report)[0].capture_ms == 0xA0B0C0D0
    forged = Packet(replace(feedback_header(MODEL, 7, 9), height=5), b"").serialize()
    with pytest.raises(WireError, match="feedback header must have zero geometry") as err:
        parse_header(forged)
    assert err.value.reason == "field"


@pytest.mark.parametrize(
    "patch,reason,message",
    [
        (lambda d: b"XX" + d[2:], "magic", "bad magic"),
        (lambda d: d[:2] + b"\x09" + d[3:], "version", "unsupported packet version 9"),
        (lambda d: d[:3] + b"\x77" + d[4:], "type", "unknown packet type 119"),
        (lambda d: d[:28] + b"\x00\x00" + d[30:], "geometry", "frame size 768x0"),
        (lambda d: d[:28] + b"\xff\xff" + d[30:], "geometry", "outside 1..16384"),
        (lambda d: d[:32] + b"\x0b" + d[33:], "codebook", "2\\*\\*11 words"),
        (lambda d: d[:36] + b"\x00\x00" + d[38:], "count", "packet count 0"),
        (
            lambda d: d[:34] + b"\x00\x05" + d[36:],
            "seq",
            "packet number 5 is not below the count 2",
        ),
    ],
)
def test_forged_headers(patch, reason, message):
    with pytest.raises(WireError, match=message) as err:
        parse_header(patch(tier0_packet()))
    assert err.value.reason == reason


def test_foreign_model_is_refused():
    with pytest.raises(
        WireError, match="packet for model 1234abcd, this receiver decodes 00000001"
    ):
        parse_header(tier0_packet(), model_id=1)


@pytest.mark.parametrize(
    "payload,message",
    [
        (msgpack.packb({"a": 1}), "must be an array|valid msgpack"),
        (msgpack.packb([]), "carries no entry"),
        (msgpack.packb([[99, 4, 0, b"y", b"z"]]), "patch index must be an integer in 0..5"),
        (msgpack.packb([[1, 3, 0, b"y", b"z"]]), "unknown schedule id 3"),
        (msgpack.packb([[1, 4, 16, b"y", b"z"]]), "rung must be an integer in 0..15, got 16"),
        (msgpack.packb([[1, 4, -1, b"y", b"z"]]), "rung must be an integer in 0..15, got -1"),
        (msgpack.packb([[1, 4, 0, b"", b"z"]]), "y string must be 1..4096 bytes, got 0"),
        (msgpack.packb([[1, 4, 0, "text", b"z"]]), "valid msgpack|y string"),
        (msgpack.packb([[1, 4, b"y", b"z"]]), "tier-0 entry must be an array of 5"),
        (msgpack.packb([[True, 4, 0, b"y", b"z"]]), "patch index must be an integer"),
        (msgpack.packb([[1, 4, 0, b"y", b"z"]]) + b"\x00", "payload has 1 bytes after its array"),
        (b"\xdd\xff\xff\xff\xff", "valid msgpack"),  # an array that claims 4 G entries
        (b"\xc6\x7f\xff\xff\xff", "payload of 5 bytes is truncated"),  # a 2 GB binary
    ],
)
def test_forged_payloads(payload, message):
    with pytest.raises(WireError, match=message):
        parse_entries(header(), payload)


def test_oversized_payload():
    with pytest.raises(WireError, match="exceeds the MTU of 1200"):
        parse_entries(header(), b"\x90" * 1201)


@given(st.binary(max_size=200))
def test_random_bytes_are_refused_or_parsed(data):
    try:
        h, payload = parse_header(data)
        parse_entries(h, payload)
    except WireError:
        pass
