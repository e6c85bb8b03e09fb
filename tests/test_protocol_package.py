"""The protocol package stands alone: no torch, and a wire format pinned byte for byte."""

from __future__ import annotations

import subprocess
import sys

from hfstream.protocol.auth import DATA, Opener, Sealer
from hfstream.protocol.feedback import Report
from hfstream.protocol.packetizer import FrameEntries, Packetizer, PacketizerConfig
from hfstream.protocol.schedules import Schedule
from hfstream.protocol.wire import IndexEntry, Tier0Entry, parse_entries, parse_header

KEY = bytes(range(32))
SESSION = 0x65A1B2C3_01020304


def test_importing_the_protocol_loads_no_torch():
    code = (
        "import sys, hfstream.protocol, hfstream.protocol.auth, hfstream.protocol.wire, "
        "hfstream.protocol.packetizer, hfstream.protocol.pacer, hfstream.protocol.reassembly, "
        "hfstream.protocol.feedback, hfstream.geometry\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'compressai')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _frame():
    p = Packetizer(0xC0DEC0DE, SESSION, PacketizerConfig(parity_ratio=1.0))
    t0 = [Tier0Entry(0, Schedule.QUARTER, b"y" * 5, b"z" * 2, rung=2)]
    t1 = [IndexEntry(0, Schedule.QUARTER, 0, 1, b"\x01\x02", 0xBEEF)]
    return p.packetize(
        FrameEntries(240, 256, 1024, True, t0, t1), frame_id=7, capture_ms=0x01020304
    )


# magic, version 8, type, model, session, counter, frame 7, capture (ms after the session's
# start), 240 x 256, codebook 2**10, flags (prior-coded), seq 0, count 1, reference 0
# (intra) | msgpack payload | tag
HEADER_T0 = (
    "4846 08 00 c0dec0de 65a1b2c301020304 00000000 00000007 01020304 00f0 0100 0a 01 0000 0001 0000"
)
# tier 0: [[patch 0, schedule 4 (1_4), rung 2, y, z]]
GOLDEN_TIER0 = HEADER_T0 + " 91 95 00 04 02 c405 7979797979 c402 7a7a"
GOLDEN_TIER1 = (
    "4846 08 01 c0dec0de 65a1b2c301020304 00000000 00000007 01020304 00f0 0100 0a 01 0000 0001"
    " 0000 91 96 00 04 00 01 c402 0102 cdbeef"
)
GOLDEN_TAG = "a8e79cec43f146f162f2707abba898a2"
# A report: type 4, the report number in the frame id, the receiver's id in the capture
# field, zero geometry, count 1, no reference; no frame decoded complete.
GOLDEN_REPORT = (
    "4846 08 04 c0dec0de 65a1b2c301020304 00000000 00000009 0a0b0c0d 0000 0000 00 00 0000 0001"
    " 0000 96 ccfa 93 040201 93 040101 03 cd0384 90"
)


def golden(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def test_golden_packets():
    fp = _frame()
    assert fp.tier0[0] == golden(GOLDEN_TIER0)
    assert fp.tier1[0] == golden(GOLDEN_TIER1)
    h, payload = parse_header(golden(GOLDEN_TIER1))
    assert (h.session_id, h.frame_id, h.capture_ms, h.height, h.width, h.seq, h.count) == (
        SESSION,
        7,
        0x01020304,
        240,
        256,
        0,
        1,
    )
    assert parse_entries(h, payload) == [IndexEntry(0, Schedule.QUARTER, 0, 1, b"\x01\x02", 0xBEEF)]


def test_golden_sealed_datagram_and_report():
    sealed = Sealer(KEY, DATA, SESSION).seal(golden(GOLDEN_TIER0))
    assert sealed == golden(GOLDEN_TIER0 + GOLDEN_TAG)
    assert Opener(KEY, DATA).open(sealed) == golden(GOLDEN_TIER0)
    report = Report(0.25, (4, 2, 1), (4, 1, 1), 3, 900).to_packet(
        0xC0DEC0DE, SESSION, 9, 0x0A0B0C0D
    )
    assert report == golden(GOLDEN_REPORT)
    h, payload = parse_header(report)
    assert Report.from_payload(payload) == Report(0.25, (4, 2, 1), (4, 1, 1), 3, 900)
    assert (h.frame_id, h.height, h.width, h.count) == (9, 0, 0, 1)


def test_public_api_is_lazy_and_complete():
    code = (
        "import sys, hfstream\n"
        "light = 'torch' not in sys.modules\n"
        "from hfstream import Sender, Receiver, PacketizerConfig, parse_key\n"
        "assert all(hasattr(hfstream, n) for n in hfstream.__all__)\n"
        "print(light, Sender.__module__, PacketizerConfig.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "hfstream.stream.sender", "hfstream.protocol.packetizer"]


def test_public_names_match_their_table():
    import hfstream

    assert sorted(hfstream.__all__) == sorted(hfstream._EXPORTS)
