"""Packetizer (sans-I/O): a frame's tier entries -> MTU-sized packets, with tier-0 FEC.

- Entries are packed greedily into packets whose serialized size never exceeds the MTU.
  Index entries arrive ordered by interleave group, so one packet holds the same group
  of several patches: losing it removes scattered positions from each.
- Tier-0 packets are protected by a systematic Reed-Solomon erasure code (``zfec``) in
  blocks of at most ``fec_block`` packets: any ``k`` of a block's ``k + m`` packets
  rebuild all ``k``. Each parity packet carries one ``wire.ParityEntry``.
- Every packet is useful on its own: none of tier >= 1 needs another of tier >= 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import zfec

from hfstream.geometry import FINE, SCALES, Scale, scale_bits
from hfstream.protocol.binning import (  # noqa: F401 (as before)
    PARITY_OVERHEAD,
    array,
    bins,
    fallback_bins,
    oversized_tier0,
    tier0_bins,
)
from hfstream.protocol.wire import (
    FLAG_GRAY,
    FLAG_NO_TIER1,
    FLAG_PRIOR,
    FLAG_RESIDUAL,
    FLAG_TIER2,
    MAX_CAPTURE_MS,
    MAX_FEC_BLOCK,
    MAX_INDEX_GROUPS,
    OVERHEAD,
    SCALE_SHIFT,
    FallbackPayload,
    IndexEntry,
    JointTier0Entry,
    MotionEntry,
    Packet,
    PacketHeader,
    PacketType,
    ParityEntry,
    Tier0Entry,
    pack_payload,
)

# The smallest datagram every IPv4 host must accept. Below it a patch's tier-0 strings
# (100-400 bytes), the header and the room for parity fields stop fitting one packet, and
# packetizing would fail frame by frame instead of once, here.
MIN_MTU = 576
MAX_MTU = 65507  # the largest UDP payload


@dataclass(frozen=True)
class PacketizerConfig:
    """How a frame's entries become packets: their size, tier 0's erasure code, the
    interleaving of the indices (each field's docstring)."""

    mtu: int = 1200
    """Bytes per packet, header included, the 16-byte authentication tag added on top
    (576..65507)."""
    fec_block: int = 16
    """Tier-0 packets per erasure-code block (<= 32)."""
    parity_ratio: float = 0.5
    """Parity packets per tier-0 packet in a block, rounded up."""
    index_groups: int = 4
    """Interleave groups per patch, tiers 1 and 2."""
    send_withheld: bool = True
    """Send tier 2 (the withheld indices) at all."""
    tier0_patches: int = 0
    """Most patches per tier-0 packet (0: as many as the MTU holds). Fewer patches per
    packet cost a header each but lose less with a packet, and let parity come in smaller
    steps: the frame planner chooses it with the parity ratio. Above 1, the patches of a
    packet are spread over the frame (patch j, j + P, j + 2P... of P packets), so a lost
    packet leaves its patches' neighbours to borrow from."""
    fallback_copies: int = 1
    """Copies of the frame's fallback sent, when it has one (the frame planner chooses)."""
    joint_tier0: bool = False
    """Code the strings of the patches of each tier-0 packet as one pair
    (``tier0.JointTier0Entry``; 11-15 bytes less a patch). Needs the codec:
    ``Packetizer(joiner=...)``. The planners of predicted frames set it."""

    def __post_init__(self) -> None:
        if not MIN_MTU <= self.mtu <= MAX_MTU:
            raise ValueError(
                f"mtu must be in {MIN_MTU}..{MAX_MTU} bytes, got {self.mtu}: smaller packets "
                "cannot carry a patch's tier-0 strings"
            )
        if not 1 <= self.fec_block <= MAX_FEC_BLOCK:
            raise ValueError(f"fec_block must be in 1..{MAX_FEC_BLOCK}, got {self.fec_block}")
        if not 0 <= self.parity_ratio <= 4:
            raise ValueError(f"parity_ratio must be in 0..4, got {self.parity_ratio}")
        if not 1 <= self.index_groups <= MAX_INDEX_GROUPS:
            raise ValueError(
                f"index_groups must be in 1..{MAX_INDEX_GROUPS}, got {self.index_groups}"
            )
        if not 0 <= self.tier0_patches <= 4096:
            raise ValueError(f"tier0_patches must be in 0..4096, got {self.tier0_patches}")
        if not 1 <= self.fallback_copies <= 4:
            raise ValueError(f"fallback_copies must be in 1..4, got {self.fallback_copies}")


@dataclass(frozen=True)
class FrameEntries:
    """What one frame puts on the wire, before packetizing (``frame_coding.packetize``
    builds it from an ``EncodedImage``)."""

    height: int  #: of the frame in pixels
    width: int
    codebook_size: int  #: words of the codebook the indices refer to (a power of two)
    prior_coded: bool  #: indices are coded under the prior (else fixed-length)
    #: each patch's continuous strings (a predicted frame's: also its reused patches'
    #: motion)
    tier0: Sequence[Tier0Entry | MotionEntry] = ()
    tier1: Sequence[IndexEntry] = ()  #: kept indices, ordered by interleave group
    tier2: Sequence[IndexEntry] = ()  #: withheld indices, ordered by interleave group
    #: the frame is shown at this many times its coded size (1, 2, 4 or ``FINE``)
    scale: Scale = 1
    #: the frame's tier 0 coded again at a fraction of its size (None: not sent)
    fallback: FallbackPayload | None = None
    gray: bool = False  #: the source is gray: the receiver shows the picture in gray
    #: a predicted frame: how many frames back its reference is (0: intra;
    #: ``codec.temporal``). Such a frame sends tier 0 only for the patches it codes, and
    #: one empty tier-0 packet when it codes none (the receiver learns the frame is whole).
    reference_back: int = 0
    #: a predicted frame's coded patches are differences from the moved reference
    residual: bool = False


@dataclass
class FramePackets:
    """A frame's packets by tier, serialized; ``in_priority_order`` is how to send them."""

    frame_id: int
    cut: int = 0  # bytes of tier 1 and parity left out to meet a strict frame budget
    tier0: list[bytes] = field(default_factory=list)
    parity: list[bytes] = field(default_factory=list)
    tier1: list[bytes] = field(default_factory=list)
    tier2: list[bytes] = field(default_factory=list)
    fallback: list[bytes] = field(default_factory=list)

    def in_priority_order(self) -> list[tuple[int, bytes]]:
        """(tier, packet) pairs: tier 0, its parity and the fallback (sent last of tier 0,
        so that a burst that takes tier 0 is less likely to take it too), then tier 1,
        then tier 2."""
        return (
            [(0, p) for p in self.tier0 + self.parity + self.fallback]
            + [(1, p) for p in self.tier1]
            + [(2, p) for p in self.tier2]
        )

    @property
    def total_bytes(self) -> int:
        return sum(len(p) for _, p in self.in_priority_order())


class Joiner(Protocol):
    """What joins the ``Tier0Entry``s of one packet into one entry
    (``codec.joint_strings``): called with them, whether the frame is residual and its
    scale (which say whose stream the strings are)."""

    def __call__(
        self, entries: Sequence[Tier0Entry], *, residual: bool, scale: Scale
    ) -> JointTier0Entry: ...


class Packetizer:
    def __init__(
        self,
        model_id: int,
        session_id: int = 0,
        config: PacketizerConfig | None = None,
        *,
        joiner: Joiner | None = None,
    ):
        self.model_id = model_id
        self.session_id = session_id  # packets are numbered later, when sealed
        self.config = config or PacketizerConfig()
        self.joiner = joiner

    def _join(
        self, *, residual: bool, scale: Scale
    ) -> Callable[[Sequence[Tier0Entry]], JointTier0Entry] | None:
        if not self.config.joint_tier0:
            return None
        joiner = self.joiner
        if joiner is None:
            raise ValueError(
                "PacketizerConfig.joint_tier0 needs the codec's joiner: "
                "Packetizer(..., joiner=codec.joint_strings.Tier0Joiner(codec))"
            )
        return lambda entries: joiner(entries, residual=residual, scale=scale)

    def packetize(
        self,
        frame: FrameEntries,
        *,
        frame_id: int,
        frame_budget: float | None = None,
        strict_budget: bool = False,
        capture_ms: int = 0,
    ) -> FramePackets:
        """All packets of one frame; each header carries ``capture_ms``
        (``capture_clock.capture_offset_ms``), so any packet tells when the frame was captured.

        With ``frame_budget`` (bytes), tier 2 is cut to what tiers 0 and 1 leave of it (a
        prefix of interleaved groups: still spread out). With ``strict_budget`` too, tier 0
        keeps as much of its parity as fits beside it and tier 1 is cut to what is left (a
        prefix); tier 0 itself is never cut. ``FramePackets.cut`` says how many bytes were
        left out, so that a rate controller sees what the frame wanted."""
        cfg = self.config
        height, width, codebook_size = frame.height, frame.width, frame.codebook_size
        bits = codebook_size.bit_length() - 1
        if codebook_size < 1 or 1 << bits != codebook_size:
            raise ValueError(f"codebook size must be a power of two, got {codebook_size}")
        if frame.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {frame.scale}")
        if frame.scale == FINE and (frame.tier1 or frame.tier2):
            raise ValueError("a FINE frame carries tier 0 alone: its indices would be up-scaled")
        if not 0 <= frame_id <= 0xFFFFFFFF:
            raise ValueError(f"frame id must be in 0..2**32-1, got {frame_id}")
        assert 0 <= capture_ms <= MAX_CAPTURE_MS, f"capture_ms {capture_ms} outside the field"
        room = cfg.mtu - OVERHEAD  # the tag is appended when a packet is sealed
        if not 0 <= frame.reference_back <= 0xFFFF:
            raise ValueError(f"reference_back must be in 0..65535, got {frame.reference_back}")
        t0_payloads = tier0_bins(
            frame.tier0,
            room - PARITY_OVERHEAD,
            cfg.tier0_patches,
            self._join(residual=frame.residual, scale=frame.scale),
        )
        if not t0_payloads and frame.reference_back:
            t0_payloads = [array([])]
        parity_payloads = self._parity(t0_payloads)
        fallback_payloads = (
            fallback_bins(frame.fallback, room) * cfg.fallback_copies
            if frame.fallback is not None
            else []
        )
        t1_payloads = bins([e.to_list() for e in frame.tier1], room)
        t2_payloads = bins([e.to_list() for e in frame.tier2], room) if cfg.send_withheld else []
        cut = 0
        if frame_budget is not None and strict_budget:
            t1_payloads, parity_payloads, cut = _fit_strict(
                t0_payloads + fallback_payloads, parity_payloads, t1_payloads, frame_budget
            )
        if frame_budget is not None:
            left = frame_budget - sum(
                len(p) + OVERHEAD
                for p in t0_payloads + parity_payloads + fallback_payloads + t1_payloads
            )
            kept = []
            for p in t2_payloads:
                if len(p) + OVERHEAD > left:
                    break
                kept.append(p)
                left -= len(p) + OVERHEAD
            t2_payloads = kept
        flags = (
            (FLAG_PRIOR if frame.prior_coded else 0)
            | (FLAG_TIER2 if t2_payloads else 0)
            | (FLAG_NO_TIER1 if not t1_payloads else 0)
            | (FLAG_GRAY if frame.gray else 0)
            | (FLAG_RESIDUAL if frame.residual else 0)
            | scale_bits(frame.scale) << SCALE_SHIFT
        )

        def build(ptype: PacketType, payloads: list[bytes]) -> list[bytes]:
            return [
                Packet(
                    PacketHeader(
                        ptype,
                        self.model_id,
                        self.session_id,
                        0,
                        frame_id,
                        height,
                        width,
                        bits,
                        flags,
                        seq,
                        len(payloads),
                        capture_ms,
                        frame.reference_back,
                    ),
                    payload,
                ).serialize()
                for seq, payload in enumerate(payloads)
            ]

        out = FramePackets(frame_id, cut=cut)
        out.tier0 = build(PacketType.TIER0, t0_payloads)
        out.parity = build(PacketType.PARITY, parity_payloads)
        out.tier1 = build(PacketType.TIER1, t1_payloads)
        out.tier2 = build(PacketType.TIER2, t2_payloads)
        out.fallback = build(PacketType.FALLBACK, fallback_payloads)
        return out

    def tier0_bytes(
        self,
        tier0: Sequence[Tier0Entry | MotionEntry],
        *,
        predicted: bool = False,
        residual: bool = False,
        scale: Scale = 1,
    ) -> tuple[int, int]:
        """What ``packetize`` sends of these tier-0 entries: (bytes of the tier-0 packets,
        bytes of their parity packets), headers and tags included. ``predicted``: of a
        predicted frame (one empty packet where there is no entry); ``residual``: of a
        residual one; ``scale``: of a frame at that scale."""
        room = self.config.mtu - OVERHEAD - PARITY_OVERHEAD
        join = self._join(residual=residual, scale=scale)
        data = tier0_bins(tier0, room, self.config.tier0_patches, join)
        if not data and predicted:
            data = [array([])]
        parity = self._parity(data)
        return sum(len(p) + OVERHEAD for p in data), sum(len(p) + OVERHEAD for p in parity)

    def tier1_bytes(self, tier1: Sequence[IndexEntry]) -> int:
        """What ``packetize`` sends of these tier-1 entries before any budget cuts them:
        bytes of their packets, headers and tags included."""
        payloads = bins([e.to_list() for e in tier1], self.config.mtu - OVERHEAD)
        return sum(len(p) + OVERHEAD for p in payloads)

    def _parity(self, payloads: list[bytes]) -> list[bytes]:
        cfg = self.config
        if cfg.parity_ratio == 0 or not payloads:
            return []
        out = []
        for start in range(0, len(payloads), cfg.fec_block):
            data = payloads[start : start + cfg.fec_block]
            k = len(data)
            m = max(1, math.ceil(k * cfg.parity_ratio))
            width = max(len(d) for d in data)
            padded = [d.ljust(width, b"\0") for d in data]
            blocks = zfec.Encoder(k, k + m).encode(padded)[k:]
            lengths = tuple(len(d) for d in data)
            for j, parity in enumerate(blocks):
                entry = ParityEntry(start, k, k + j, lengths, parity, len(payloads))
                out.append(pack_payload(entry.to_list()))
        return out


def _fit_strict(
    tier0: list[bytes], parity: list[bytes], tier1: list[bytes], budget: float
) -> tuple[list[bytes], list[bytes], int]:
    """(tier 1, parity, bytes cut): the most parity that fits beside tier 0 (with the
    fallback), then the longest prefix of tier 1 that fits beside both."""

    def cost(ps: list[bytes]) -> int:
        return sum(len(p) + OVERHEAD for p in ps)

    wanted = cost(parity) + cost(tier1)
    room = budget - cost(tier0)
    par = list(parity)
    while par and cost(par) > room:
        par.pop()
    t1 = list(tier1)
    while t1 and cost(par) + cost(t1) > room:
        t1.pop()
    return t1, par, wanted - cost(par) - cost(t1)
