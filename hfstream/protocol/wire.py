"""The packet format: a fixed 40-byte header, a msgpack payload and a 16-byte tag.

Header (big-endian)::

    magic       2  b"HF"
    version     1  8 (7 moved a patch by one whole-pixel vector, 6 had no reference
                   field, 5 dated sessions to the second, 4 had no scale bits, 3 no
                   capture time, 2 no rung in tier-0 entries)
    type        1  PacketType
    model id    4  the codec model; a receiver drops packets for any other model
    session     8  per stream (high 42 bits: its start, unix ms; 22 random bits; auth.py)
    counter     4  per-session packet number, written when the packet is sealed
    frame id    4  (the report number in FEEDBACK packets)
    capture     4  ms from the session's start to the frame's capture, so the receiver
                   measures capture-to-display latency; in FEEDBACK packets the id the
                   reporting receiver drew (a restarted receiver numbers its reports anew)
    height      2  frame geometry as coded, 1..16384: any packet can open the frame's
    width       2  state (shown at ``scale`` times that, at most 16384 a side; a
                   ``FINE`` frame is shown at half, its coded sides even)
    codebook    1  log2 of the codebook size the indices refer to (6..10)
    flags       1  bit 0: indices are prior-coded (else fixed-length);
                   bit 1: the frame has tier-2 packets;
                   bits 2-3: the scale the frame is shown at (0..2: log2 of
                   1, 2, 4; 3: ``FINE``, a half; ``geometry.scale_bits``);
                   bit 4: no tier-1 packets (tier 0 completes the frame); bit 5: gray source;
                   bit 6: a predicted frame's coded patches carry the difference from the
                   moved reference (``codec.temporal``), not the picture
    seq         2  packet number within (frame, type)
    count       2  packets of this (frame, type), 1..4096
    reference   2  a predicted frame (``codec.temporal``): how many frames back its
                   reference is (frame id minus this, modulo 2**32); 0: an intra frame

The payload follows (datagrams keep their boundaries: no length field), then the
authentication tag (``auth.TAG_SIZE`` bytes) over everything before it, which
``auth.Opener`` checks and strips before anything here parses the packet. The payload is
msgpack, unpacked with strict limits and checked field by field (``protocol.fields``):
the ``*Entry`` classes hold each type's layout (the tier-0 kinds of ``protocol.tier0``,
``IndexEntry`` for tiers 1 and 2, ``ParityEntry``; a report's is
``feedback.FeedbackEntry``), the ``parse_*`` functions read them. Every
error is a ``WireError`` (a ``ValueError``) naming what is wrong, so the receiver counts
drops by reason.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from hfstream.geometry import MAX_SIDE, SCALES, Scale, patch_count, scale_of_bits, shown_side
from hfstream.protocol.fields import (  # noqa: F401 (the wire's names, as before)
    DEFAULT_MTU,
    WireError,
    pack_payload,
    unpack_payload,
)
from hfstream.protocol.fields import bin_field as _bin
from hfstream.protocol.fields import entry_arrays as _entries
from hfstream.protocol.fields import int_field as _int
from hfstream.protocol.fields import schedule_field as _schedule
from hfstream.protocol.schedules import Schedule
from hfstream.protocol.tier0 import (  # noqa: F401 (the wire's names, as before)
    MAX_MOTION,
    MAX_RUNG,
    JointTier0Entry,
    MotionEntry,
    Tier0Entry,
    parse_tier0,
)

MAGIC = b"HF"
VERSION = 8
HEADER = struct.Struct("!2sBBIQIIIHHBBHHH")
HEADER_SIZE = HEADER.size  # 40
MAX_CAPTURE_MS = 0xFFFFFFFF  # 49.7 days: a session longer than that wraps
SESSION_OFFSET = 8  # the session id and the counter sit at fixed offsets: auth reads them
COUNTER_OFFSET = 16
CAPTURE_OFFSET = 24  # the capture field (the receiver's id in reports)
SESSION_RANDOM_BITS = 22  # of the session id, below its start in unix ms
TAG_SIZE = 16  # truncated HMAC-SHA256, appended by auth.Sealer
OVERHEAD = HEADER_SIZE + TAG_SIZE  # bytes of a datagram that are not payload
MAX_COUNT = 4096
MAX_FEC_BLOCK = 32  # tier-0 packets per erasure-code block
MAX_FEC_SHARES = 256  # zfec codes at most 256 shares per block
MAX_INDEX_GROUPS = 64  # interleave groups per patch and tier (``PacketizerConfig``)
FLAG_PRIOR = 0x01
FLAG_TIER2 = 0x02  # the frame has tier-2 packets (so "complete" waits for them)
SCALE_SHIFT = 2  # flag bits 2-3: log2 of the frame's scale
SCALE_MASK = 0x0C
FLAG_NO_TIER1 = 0x10  # no tier-1 packets: tier 0 completes the frame (its picture is final)
FLAG_GRAY = 0x20  # the source is gray (``EncodedImage.gray``): shown in gray
FLAG_RESIDUAL = 0x40  # a predicted frame's tier 0 codes differences (``EncodedImage.residual``)


class PacketType(IntEnum):
    """Wire ids of the packet types (fixed, never derived from order)."""

    TIER0 = 0  # continuous strings + schedule of some patches
    TIER1 = 1  # kept indices
    TIER2 = 2  # withheld indices (refinement)
    PARITY = 3  # erasure-code parity over the frame's tier-0 packets
    FEEDBACK = 4  # receiver report
    FALLBACK = 5  # the frame's tier 0 coded again at a fraction of its size (below)


@dataclass(frozen=True)
class PacketHeader:
    type: PacketType
    model_id: int
    session_id: int  #: random per stream; see ``auth``
    counter: int  #: per-session packet number (0 until sealed)
    frame_id: int
    height: int  #: of the frame in pixels
    width: int
    codebook_bits: int  #: log2 of the codebook size
    flags: int
    seq: int  #: number of this packet among the (frame, type) packets
    count: int  #: how many (frame, type) packets there are
    #: ms from the session's start to the frame's capture (``capture_clock``); in a
    #: FEEDBACK packet, the reporting receiver's id
    capture_ms: int = 0
    #: a predicted frame's reference, as frames back from ``frame_id`` (0: intra)
    reference_back: int = 0

    @property
    def reference(self) -> int | None:
        """The frame id of the frame's reference (None: an intra frame)."""
        if not self.reference_back:
            return None
        return (self.frame_id - self.reference_back) & 0xFFFFFFFF

    @property
    def codebook_size(self) -> int:
        return 1 << self.codebook_bits

    @property
    def scale(self) -> Scale:
        """The frame is shown at this many times its coded size (1, 2, 4 or ``FINE``)."""
        return scale_of_bits((self.flags & SCALE_MASK) >> SCALE_SHIFT)

    @property
    def patches(self) -> int:
        return patch_count(self.height, self.width)


@dataclass(frozen=True)
class Packet:
    header: PacketHeader
    payload: bytes

    def serialize(self) -> bytes:
        h = self.header
        return (
            HEADER.pack(
                MAGIC,
                VERSION,
                int(h.type),
                h.model_id,
                h.session_id,
                h.counter,
                h.frame_id,
                h.capture_ms,
                h.height,
                h.width,
                h.codebook_bits,
                h.flags,
                h.seq,
                h.count,
                h.reference_back,
            )
            + self.payload
        )


def parse_header(data: bytes, model_id: int | None = None) -> tuple[PacketHeader, bytes]:
    """Split a packet (a datagram without its tag) into its checked header and its raw
    payload."""
    if len(data) < HEADER_SIZE:
        raise WireError(
            "truncated", f"packet has {len(data)} bytes, the header needs {HEADER_SIZE}"
        )
    magic, version, ptype, mid, sid, ctr, fid, cap, height, width, cb, flags, seq, count, back = (
        HEADER.unpack_from(data)
    )
    if magic != MAGIC:
        raise WireError("magic", "not an hfstream packet (bad magic)")
    if version != VERSION:
        raise WireError("version", f"unsupported packet version {version}, expected {VERSION}")
    if ptype not in PacketType._value2member_map_:
        raise WireError("type", f"unknown packet type {ptype}")
    if model_id is not None and mid != model_id:
        raise WireError(
            "model", f"packet for model {mid:08x}, this receiver decodes {model_id:08x}"
        )
    if ptype == PacketType.FEEDBACK:
        # A report describes no frame: its geometry fields must be zero, not made up.
        if (height, width, cb, flags, seq, count, back) != (0, 0, 0, 0, 0, 1, 0):
            raise WireError(
                "field", "feedback header must have zero geometry and reference, seq 0, count 1"
            )
        header = PacketHeader(PacketType.FEEDBACK, mid, sid, ctr, fid, 0, 0, 0, 0, 0, 1, cap)
        return header, data[HEADER_SIZE:]
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise WireError("geometry", f"frame size {width}x{height} is outside 1..{MAX_SIDE} a side")
    scale = scale_of_bits((flags & SCALE_MASK) >> SCALE_SHIFT)
    if max(height, width) * scale > MAX_SIDE or height * scale % 1 or width * scale % 1:
        shown = f"frame size {width}x{height} shown at {scale}x"
        raise WireError("geometry", f"{shown} is not a whole size in 1..{MAX_SIDE} per side")
    if flags & FLAG_RESIDUAL and not back:
        raise WireError("field", "only a predicted frame codes differences from a reference")
    if not 6 <= cb <= 10:
        raise WireError("codebook", f"codebook of 2**{cb} words is outside 2**6..2**10")
    if not 1 <= count <= MAX_COUNT:
        raise WireError("count", f"packet count {count} is outside 1..{MAX_COUNT}")
    if seq >= count:
        raise WireError("seq", f"packet number {seq} is not below the count {count}")
    header = PacketHeader(
        PacketType(ptype), mid, sid, ctr, fid, height, width, cb, flags, seq, count, cap, back
    )
    return header, data[HEADER_SIZE:]


@dataclass(frozen=True)
class IndexEntry:
    """``[patch, schedule, group, groups, data, check]``: one interleave group of a patch's
    kept (tier 1) or withheld (tier 2) positions: ``positions[group::groups]``.

    ``check`` is a 16-bit checksum of the decoded indices: a receiver whose prior differs
    from the sender's (another machine's float rounding) detects it and drops the entry.
    """

    patch: int
    schedule: Schedule
    group: int
    groups: int
    data: bytes
    check: int

    def to_list(self) -> list:
        return [self.patch, int(self.schedule), self.group, self.groups, self.data, self.check]

    @classmethod
    def from_list(cls, e: list, patches: int) -> IndexEntry:
        patch = _int(e[0], 0, patches - 1, "patch index")
        schedule = _schedule(e[1])
        groups = _int(e[3], 1, MAX_INDEX_GROUPS, "group count")
        group = _int(e[2], 0, groups - 1, "group")
        return cls(
            patch,
            schedule,
            group,
            groups,
            _bin(e[4], 0, 1024, "index data"),
            _int(e[5], 0, 0xFFFF, "check"),
        )


@dataclass(frozen=True)
class ParityEntry:
    """``[first, k, index, lengths, data, total]``: share ``index`` (``k`` or more) of a
    systematic Reed-Solomon code over the block of ``k`` tier-0 payloads that starts at
    tier-0 packet number ``first``, of ``total`` tier-0 packets in the frame. ``lengths``
    are the block's payload sizes (each was zero-padded to ``len(data)`` for coding)."""

    first: int
    k: int
    index: int
    lengths: tuple[int, ...]
    data: bytes
    total: int

    def to_list(self) -> list:
        return [self.first, self.k, self.index, list(self.lengths), self.data, self.total]

    @classmethod
    def from_list(cls, e: list) -> ParityEntry:
        if len(e) != 6:
            raise WireError("field", "parity payload must be an array of 6")
        total = _int(e[5], 1, MAX_COUNT, "tier-0 total")
        first = _int(e[0], 0, total - 1, "first")
        k = _int(e[1], 1, min(MAX_FEC_BLOCK, total - first), "k")
        index = _int(e[2], k, MAX_FEC_SHARES - 1, "parity index")
        data = _bin(e[4], 1, 0xFFFF, "parity data")
        lengths = e[3]
        if not isinstance(lengths, list) or len(lengths) != k:
            raise WireError("field", f"parity lengths must be an array of k = {k}")
        return cls(
            first,
            k,
            index,
            tuple(_int(n, 1, len(data), "parity length") for n in lengths),
            data,
            total,
        )


@dataclass(frozen=True)
class FallbackPayload:
    """``[scale, entry, ...]``: the frame coded again, tier 0 alone, at 1/``scale`` of the
    size it is shown at (``hfstream.codec.fallback``), as ``Tier0Entry`` arrays over the
    patches of that small frame. A receiver shows it where a patch's own tier 0 is lost."""

    scale: int
    entries: tuple[Tier0Entry, ...]

    def to_list(self) -> list:
        return [self.scale, *(e.to_list() for e in self.entries)]


def fallback_geometry(header: PacketHeader, scale: int) -> tuple[int, int]:
    """(height, width) of the fallback frame of a frame with ``header``, coded at
    1/``scale`` of its shown size; a ``WireError`` unless that scale is one of ``SCALES``,
    above the frame's own and dividing both shown sides."""
    height, width = shown_side(header.height, header.scale), shown_side(header.width, header.scale)
    if scale not in SCALES or scale <= header.scale or height % scale or width % scale:
        raise WireError(
            "field",
            f"fallback scale {scale!r} does not fit a {width}x{height} frame shown at "
            f"{header.scale}x",
        )
    return height // scale, width // scale


def parse_fallback(payload: bytes, header: PacketHeader, mtu: int = DEFAULT_MTU) -> FallbackPayload:
    """The entries of a FALLBACK payload of the frame ``header`` describes."""
    obj = unpack_payload(payload, mtu)
    if len(obj) < 2:
        raise WireError("field", "fallback payload must hold a scale and at least one entry")
    scale = obj[0]
    if not isinstance(scale, int) or isinstance(scale, bool):
        raise WireError("field", f"fallback scale must be an integer, got {scale!r}")
    patches = patch_count(*fallback_geometry(header, scale))
    entries = [Tier0Entry.from_list(e, patches) for e in _entries(obj[1:], 5, "fallback")]
    return FallbackPayload(scale, tuple(entries))


def parse_indices(payload: bytes, patches: int, mtu: int = DEFAULT_MTU) -> list[IndexEntry]:
    """The entries of a tier-1 or tier-2 payload for a frame of ``patches`` patches."""
    obj = unpack_payload(payload, mtu)
    return [IndexEntry.from_list(e, patches) for e in _entries(obj, 6, "index")]


def parse_parity(payload: bytes, mtu: int = DEFAULT_MTU) -> ParityEntry:
    return ParityEntry.from_list(unpack_payload(payload, mtu))


def parse_entries(
    header: PacketHeader, payload: bytes, mtu: int = DEFAULT_MTU
) -> list[Tier0Entry | MotionEntry] | list[IndexEntry]:
    """The typed entries of a TIER0, TIER1 or TIER2 packet."""
    if header.type == PacketType.TIER0:
        return parse_tier0(payload, header.patches, mtu, predicted=header.reference_back > 0)
    if header.type in (PacketType.TIER1, PacketType.TIER2):
        return parse_indices(payload, header.patches, mtu)
    raise WireError("type", f"{header.type.name} packets carry no patch entries")
