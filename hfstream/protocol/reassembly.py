"""Reassembler (sans-I/O): packets in, per-frame state and events out.

Packets may come in any order, twice, or late. Memory is bounded: at most ``max_frames``
frames are open (the oldest is evicted, with a ``FrameExpired`` event), each holds at most
``max_frame_bytes``, and the ids of closed frames are kept in a bounded window so their
late packets are dropped. Time enters only as ``now``.

Work per frame is bounded by its geometry, whatever a peer holding the key sends:

- entries: one tier-0 entry per patch, and a patch in one joint entry at most (each
  split once); per patch and tier, index entries of one interleave layout (schedule
  and group count, at most ``MAX_INDEX_GROUPS`` groups), one per group.
  Duplicates and entries that contradict the frame are dropped and counted
  (``Reassembler.entries_dropped``): at most ``patches * (1 + 2 * MAX_INDEX_GROUPS)``;
- erasure decoding: a packet retries only the block it belongs to, and blocks may not
  overlap, so each packet costs at most one block's decode.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import zfec

from hfstream.geometry import DEFAULT_MAX_FRAME_PIXELS, Scale, patch_count, scale_bits, shown_side
from hfstream.protocol.events import FrameComplete, FrameOpened, PacketDropped, PatchesUpdated
from hfstream.protocol.frame_limits import check_frame_header
from hfstream.protocol.wire import (
    DEFAULT_MTU,
    FLAG_GRAY,
    FLAG_NO_TIER1,
    FLAG_PRIOR,
    FLAG_RESIDUAL,
    FLAG_TIER2,
    HEADER_SIZE,
    MAX_RUNG,
    SCALE_MASK,
    SCALE_SHIFT,
    FallbackPayload,
    IndexEntry,
    MotionEntry,
    PacketHeader,
    PacketType,
    ParityEntry,
    Tier0Entry,
    WireError,
    parse_entries,
    parse_fallback,
    parse_header,
    parse_parity,
    parse_tier0,
)


# ---------------------------------------------------------------- state
@dataclass
class FrameState:
    frame_id: int
    height: int
    width: int
    codebook_size: int
    prior_coded: bool
    has_tier2: bool
    opened_at: float
    updated_at: float
    capture_ms: int = 0  # the headers' capture field (``wire.capture_time`` reads it)
    scale: Scale = 1  # shown at this many times the coded size (``PacketHeader.scale``)
    bytes: int = 0
    tier0: dict[int, Tier0Entry] = field(default_factory=dict)  # patch -> entry
    indices: dict[tuple[int, int, int, int], IndexEntry] = field(default_factory=dict)
    # (tier, patch, group, groups) -> entry
    seen: dict[PacketType, set[int]] = field(default_factory=dict)  # type -> seqs received
    expected: dict[PacketType, int] = field(default_factory=dict)  # type -> count announced
    tier0_payloads: dict[int, bytes] = field(default_factory=dict)  # seq -> payload, for FEC
    # block's first tier-0 packet -> share index -> parity entry
    parity: dict[int, dict[int, ParityEntry]] = field(default_factory=dict)
    block_of: dict[int, int] = field(default_factory=dict)  # tier-0 seq -> its block's first
    # (tier, patch) -> (schedule, groups): the one interleave layout a patch's indices use
    index_layout: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    fec_attempts: int = 0  # erasure decodes tried (each over one block)
    complete: bool = False
    recovered: int = 0  # tier-0 packets rebuilt by the erasure code
    # The fallback (``PacketType.FALLBACK``): its patches' entries and its scale (0: none)
    fallback: dict[int, Tier0Entry] = field(default_factory=dict)
    fallback_scale: int = 0
    has_tier1: bool = True  # False: tier 0 completes it (``wire.FLAG_NO_TIER1``)
    gray: bool = False  # ``wire.FLAG_GRAY``
    residual: bool = False  # ``wire.FLAG_RESIDUAL``
    reference: int | None = None  # a predicted frame's reference (``PacketHeader.reference``)
    motion: dict[int, tuple[tuple[int, int], ...]] = field(default_factory=dict)  # patch -> vectors

    @property
    def patches(self) -> int:
        return patch_count(self.height, self.width)

    @property
    def shown_size(self) -> tuple[int, int]:
        """(height, width) of the picture the frame shows."""
        return shown_side(self.height, self.scale), shown_side(self.width, self.scale)

    def received_share(self, ptype: PacketType) -> float:
        n = self.expected.get(ptype)
        return 0.0 if not n else len(self.seen.get(ptype, ())) / n

    def packet_counts(self) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """(announced, arrived) packets per tier; parity and the fallback count in tier 0."""
        e = self.expected
        s = {t: len(v) for t, v in self.seen.items()}
        expected = (
            e.get(PacketType.TIER0, 0)
            + e.get(PacketType.PARITY, 0)
            + e.get(PacketType.FALLBACK, 0),
            e.get(PacketType.TIER1, 0),
            e.get(PacketType.TIER2, 0),
        )
        received = (
            s.get(PacketType.TIER0, 0)
            - self.recovered
            + s.get(PacketType.PARITY, 0)
            + s.get(PacketType.FALLBACK, 0),
            s.get(PacketType.TIER1, 0),
            s.get(PacketType.TIER2, 0),
        )
        return expected, received  # type: ignore[return-value]

    @property
    def flags(self) -> int:
        return (
            (FLAG_PRIOR if self.prior_coded else 0)
            | (FLAG_TIER2 if self.has_tier2 else 0)
            | (0 if self.has_tier1 else FLAG_NO_TIER1)
            | (FLAG_GRAY if self.gray else 0)
            | (FLAG_RESIDUAL if self.residual else 0)
            | scale_bits(self.scale) << SCALE_SHIFT
        )

    def matches(self, h: PacketHeader) -> bool:
        own = (self.height, self.width, self.codebook_size, self.flags, self.capture_ms)
        kept = FLAG_PRIOR | FLAG_TIER2 | FLAG_NO_TIER1 | FLAG_GRAY | FLAG_RESIDUAL | SCALE_MASK
        flags = h.flags & kept
        theirs = (h.height, h.width, h.codebook_size, flags, h.capture_ms)
        return theirs == own and h.reference == self.reference


@dataclass(frozen=True)
class FrameExpired:
    """A frame was closed: by the application ("closed" when decoded, "ended" when no more
    data can come), "timeout" or "evicted"."""

    frame_id: int
    reason: str
    expected: tuple[int, int, int] = (0, 0, 0)  # packets announced per tier (parity in 0)
    received: tuple[int, int, int] = (0, 0, 0)  # packets that arrived (not rebuilt ones)
    state: FrameState | None = field(default=None, repr=False, compare=False)  # as it ended


Event = PacketDropped | FrameOpened | PatchesUpdated | FrameComplete | FrameExpired


@dataclass(frozen=True)
class ReassemblerConfig:
    model_id: int
    mtu: int = DEFAULT_MTU
    max_frames: int = 8  # frames open at once
    max_frame_bytes: int = 4 * 1024 * 1024  # per frame, all tiers
    frame_timeout: float = 2.0  # seconds without a packet before a frame expires
    closed_window: int = 1024  # closed frame ids remembered to drop late packets
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS  # declared height x width, at most
    # Rungs of the decoder's continuous ladder (``codec.continuous.rungs``): a tier-0 entry
    # coded at a higher rung cannot be decoded here and is dropped with its packet.
    rungs: int = MAX_RUNG + 1

    def __post_init__(self) -> None:
        if not HEADER_SIZE < self.mtu <= 65507:
            raise ValueError(f"mtu must be in {HEADER_SIZE + 1}..65507, got {self.mtu}")
        for name in ("max_frames", "max_frame_bytes", "closed_window", "max_frame_pixels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.frame_timeout > 0:
            raise ValueError(f"frame_timeout must be positive, got {self.frame_timeout}")
        if not 1 <= self.rungs <= MAX_RUNG + 1:
            raise ValueError(f"rungs must be in 1..{MAX_RUNG + 1}, got {self.rungs}")


class Reassembler:
    def __init__(self, config: ReassemblerConfig) -> None:
        self.config = config
        self.frames: OrderedDict[int, FrameState] = OrderedDict()
        self._closed: deque[int] = deque(maxlen=config.closed_window)
        self._closed_set: set[int] = set()
        self.drops: dict[str, int] = {}
        # Entries of accepted packets that were dropped: "duplicate" or "contradicts"
        self.entries_dropped: dict[str, int] = {}
        self.packets = 0

    # -------------------------------------------------------------- timers
    def get_timer(self) -> float | None:
        if not self.frames:
            return None
        return min(f.updated_at for f in self.frames.values()) + self.config.frame_timeout

    def handle_timer(self, now: float) -> list[Event]:
        events: list[Event] = []
        for fid in [
            f.frame_id
            for f in self.frames.values()
            if now >= f.updated_at + self.config.frame_timeout
        ]:
            events.append(self.close(fid, "timeout"))
        return events

    def close(self, frame_id: int, reason: str = "closed") -> FrameExpired:
        """Forget a frame (its decoder is done with it); later packets for it are dropped."""
        frame = self.frames.pop(frame_id, None)
        expected = received = (0, 0, 0)
        if frame is not None:
            expected, received = frame.packet_counts()
        if len(self._closed) == self._closed.maxlen:
            self._closed_set.discard(self._closed[0])
        self._closed.append(frame_id)
        self._closed_set.add(frame_id)
        return FrameExpired(frame_id, reason, expected, received, frame)

    def new_session(self) -> list[Event]:
        """The stream restarted (a new authenticated session): its frame ids start over,
        so every open frame ends and the ids of closed frames are forgotten."""
        events: list[Event] = [self.close(fid, "ended") for fid in list(self.frames)]
        self._closed.clear()
        self._closed_set.clear()
        return events

    # -------------------------------------------------------------- input
    def receive(self, data: bytes, now: float) -> list[Event]:
        self.packets += 1
        try:
            return self._receive(data, now)
        except WireError as e:
            return [self._drop(e.reason, str(e))]

    def _drop(self, reason: str, message: str) -> PacketDropped:
        self.drops[reason] = self.drops.get(reason, 0) + 1
        return PacketDropped(reason, message)

    def _receive(self, data: bytes, now: float) -> list[Event]:
        cfg = self.config
        if len(data) > cfg.mtu:
            raise WireError("size", f"packet of {len(data)} bytes exceeds the MTU of {cfg.mtu}")
        h, payload = parse_header(data, cfg.model_id)
        check_frame_header(h, cfg.max_frame_pixels)
        if h.type == PacketType.FEEDBACK:
            raise WireError("type", "feedback packets go to the sender")
        if h.frame_id in self._closed_set:
            raise WireError("late", f"frame {h.frame_id} is already closed")
        events: list[Event] = []
        frame = self.frames.get(h.frame_id)
        if frame is None:
            # Parse before opening, so garbage never costs a frame slot.
            parsed = self._parse(h, payload)
            if len(self.frames) >= cfg.max_frames:
                oldest = next(iter(self.frames))
                events.append(self.close(oldest, "evicted"))
            frame = FrameState(
                h.frame_id,
                h.height,
                h.width,
                h.codebook_size,
                bool(h.flags & FLAG_PRIOR),
                bool(h.flags & FLAG_TIER2),
                now,
                now,
                h.capture_ms,
                h.scale,
                has_tier1=not h.flags & FLAG_NO_TIER1,
                gray=bool(h.flags & FLAG_GRAY),
                residual=bool(h.flags & FLAG_RESIDUAL),
                reference=h.reference,
            )
            self.frames[h.frame_id] = frame
            events.append(FrameOpened(h.frame_id, h.height, h.width))
        else:
            if not frame.matches(h):
                raise WireError(
                    "inconsistent",
                    f"packet disagrees with frame {h.frame_id}'s geometry, capture time or "
                    "reference",
                )
            parsed = self._parse(h, payload)
        if h.seq in frame.seen.get(h.type, ()):
            raise WireError(
                "duplicate", f"{h.type.name} packet {h.seq} of frame {h.frame_id} seen before"
            )
        if frame.expected.get(h.type, h.count) != h.count:
            raise WireError(
                "inconsistent", f"{h.type.name} count changed within frame {h.frame_id}"
            )
        if frame.bytes + len(data) > cfg.max_frame_bytes:
            raise WireError("frame-size", f"frame {h.frame_id} exceeds {cfg.max_frame_bytes} bytes")
        if h.type == PacketType.PARITY:
            assert isinstance(parsed, ParityEntry)
            self._check_parity(frame, parsed)
        frame.bytes += len(data)
        frame.updated_at = now
        frame.expected[h.type] = h.count
        frame.seen.setdefault(h.type, set()).add(h.seq)
        if h.type == PacketType.TIER0:
            frame.tier0_payloads[h.seq] = payload
            events += self._add_tier0(frame, parsed)
            if h.seq in frame.block_of:
                events += self._try_fec(frame, frame.block_of[h.seq])
        elif h.type == PacketType.PARITY:
            assert isinstance(parsed, ParityEntry)
            frame.expected.setdefault(PacketType.TIER0, parsed.total)
            if parsed.first not in frame.parity:
                for i in range(parsed.k):
                    frame.block_of[parsed.first + i] = parsed.first
            frame.parity.setdefault(parsed.first, {})[parsed.index] = parsed
            events += self._try_fec(frame, parsed.first)
        elif h.type == PacketType.FALLBACK:
            assert isinstance(parsed, FallbackPayload)
            events += self._add_fallback(frame, parsed)
        else:
            tier = int(h.type)
            new = []
            for e in parsed:
                key = (tier, e.patch, e.group, e.groups)
                if not self._fits_layout(frame, tier, e):
                    self._drop_entry("contradicts")
                elif key in frame.indices:
                    self._drop_entry("duplicate")
                else:
                    frame.indices[key] = e
                    new.append(e.patch)
            if new:
                events.append(PatchesUpdated(frame.frame_id, tier, tuple(sorted(set(new)))))
        if not frame.complete and self._is_complete(frame):
            frame.complete = True
            events.append(FrameComplete(frame.frame_id))
        return events

    def _parse(self, h: PacketHeader, payload: bytes) -> list | ParityEntry | FallbackPayload:
        if h.type == PacketType.PARITY:
            return parse_parity(payload, self.config.mtu)
        if h.type == PacketType.FALLBACK:
            fallback = parse_fallback(payload, h, self.config.mtu)
            self._check_rungs(list(fallback.entries))
            return fallback
        entries = parse_entries(h, payload, self.config.mtu)
        if h.type == PacketType.TIER0:
            self._check_rungs(entries)  # type: ignore[arg-type]
        return entries

    def _check_rungs(self, entries: list[Tier0Entry] | list[Tier0Entry | MotionEntry]) -> None:
        for e in entries:
            if isinstance(e, Tier0Entry) and e.rung >= self.config.rungs:
                raise WireError(
                    "rung",
                    f"patch {e.patch} is coded at rung {e.rung}, outside this decoder's "
                    f"ladder 0..{self.config.rungs - 1}",
                )

    @staticmethod
    def _fits_layout(frame: FrameState, tier: int, e: IndexEntry) -> bool:
        """Whether an index entry agrees with its patch's tier-0 schedule and with the
        interleave layout of the patch's first index entry in its tier (which it sets)."""
        known = frame.tier0.get(e.patch)
        if known is not None and known.schedule != e.schedule:
            return False
        layout = (e.schedule, e.groups)
        return frame.index_layout.setdefault((tier, e.patch), layout) == layout

    def _drop_entry(self, reason: str) -> None:
        self.entries_dropped[reason] = self.entries_dropped.get(reason, 0) + 1

    def _add_tier0(self, frame: FrameState, entries: list[Tier0Entry | MotionEntry]) -> list[Event]:
        # A joint entry counts whole or not at all: one that names a patch already held
        # is a copy (or forged), and each held patch then has one joint to split.
        copies = {
            e.joint
            for e in entries
            if isinstance(e, Tier0Entry)
            and e.joint is not None
            and any(p in frame.tier0 for p in e.joint.patches)
        }
        new = []
        for e in entries:
            if e.patch in (frame.motion if isinstance(e, MotionEntry) else frame.tier0) or (
                isinstance(e, Tier0Entry) and e.joint in copies
            ):
                self._drop_entry("duplicate")
            elif isinstance(e, MotionEntry):
                frame.motion[e.patch] = e.vectors
                new.append(e.patch)
            elif any(
                frame.index_layout.get((tier, e.patch), (e.schedule,))[0] != e.schedule
                for tier in (1, 2)
            ):
                self._drop_entry("contradicts")
            else:
                frame.tier0[e.patch] = e
                new.append(e.patch)
        return [PatchesUpdated(frame.frame_id, 0, tuple(sorted(new)))] if new else []

    def _add_fallback(self, frame: FrameState, fallback: FallbackPayload) -> list[Event]:
        if frame.fallback_scale not in (0, fallback.scale):
            raise WireError("inconsistent", f"fallback scale changed within frame {frame.frame_id}")
        frame.fallback_scale = fallback.scale
        new = [e for e in fallback.entries if e.patch not in frame.fallback]
        for e in new:
            frame.fallback[e.patch] = e
        # Tier 0 of no patch of its own, but a picture for every patch that lacks one.
        return [PatchesUpdated(frame.frame_id, 0, ())] if new else []

    def _check_parity(self, frame: FrameState, parity: ParityEntry) -> None:
        """A parity packet must agree with its frame's tier 0 and with its block's other
        parity, and its block may not overlap another: then every tier-0 packet belongs
        to one block at most, and costs at most one block's decode."""
        if frame.expected.get(PacketType.TIER0, parity.total) != parity.total:
            raise WireError(
                "inconsistent", f"parity disagrees with frame {frame.frame_id}'s tier 0"
            )
        block = frame.parity.get(parity.first)
        if block:
            known = next(iter(block.values()))
            if (known.k, known.lengths, len(known.data)) != (
                parity.k,
                parity.lengths,
                len(parity.data),
            ):
                raise WireError(
                    "inconsistent", f"parity disagrees with its block at {parity.first}"
                )
            return
        for i in range(parity.k):
            if frame.block_of.get(parity.first + i, parity.first) != parity.first:
                raise WireError(
                    "inconsistent", f"parity block at {parity.first} overlaps another block"
                )

    def _try_fec(self, frame: FrameState, first: int) -> list[Event]:
        """Rebuild the missing tier-0 payloads of the block at ``first`` if it now has
        enough packets."""
        parities = frame.parity.get(first)
        if not parities:
            return []
        block = next(iter(parities.values()))
        k, lengths, width = block.k, block.lengths, len(block.data)
        have = {
            i: frame.tier0_payloads[first + i]
            for i in range(k)
            if first + i in frame.tier0_payloads
        }
        if len(have) == k or len(have) + len(parities) < k:
            return []
        frame.fec_attempts += 1
        # Shares must be distinct and of one width, or zfec may fail (or worse, spin).
        shares = [(i, p.ljust(width, b"\0")) for i, p in have.items() if len(p) <= width]
        shares += [(i, p.data) for i, p in parities.items()]
        shares = shares[:k]
        if len(shares) < k:
            message = f"frame {frame.frame_id}: parity block at {first} is inconsistent"
            return [self._drop("fec", message)]
        try:
            rebuilt = zfec.Decoder(k, 256).decode([b for _, b in shares], [i for i, _ in shares])
        except Exception as e:  # zfec raises its own error type on bad input
            return [self._drop("fec", f"erasure decoding failed: {e}")]
        events: list[Event] = []
        for i in range(k):
            seq = first + i
            if seq in frame.tier0_payloads:
                continue
            payload = rebuilt[i][: lengths[i]]
            frame.tier0_payloads[seq] = payload
            frame.seen.setdefault(PacketType.TIER0, set()).add(seq)
            frame.recovered += 1
            try:
                entries = parse_tier0(
                    payload, frame.patches, self.config.mtu, predicted=frame.reference is not None
                )
                self._check_rungs(entries)
            except WireError as e:
                reason = "rung" if e.reason == "rung" else "fec"
                events.append(self._drop(reason, f"rebuilt tier-0 payload is bad: {e}"))
                continue
            events += self._add_tier0(frame, entries)
        return events

    def _is_complete(self, frame: FrameState) -> bool:
        needed = [PacketType.TIER0, PacketType.TIER1] if frame.has_tier1 else [PacketType.TIER0]
        if frame.has_tier2:
            needed.append(PacketType.TIER2)
        if PacketType.FALLBACK in frame.expected:
            needed.append(PacketType.FALLBACK)
        return all(
            t in frame.expected and len(frame.seen.get(t, ())) >= frame.expected[t] for t in needed
        )

    def __iter__(self) -> Iterator[FrameState]:
        return iter(self.frames.values())
