"""Between the codec and the wire: an encoded frame <-> tier entries <-> packets.

``packetize`` is the one encode-to-packets path: the sender and the simulator both call
it, so what the simulator measures is what the sender sends.

Tier 0 holds each patch's continuous strings and schedule, and the frame's fallback when
it has one (``hfstream.codec.fallback``). Tiers 1 and 2 hold a patch's
kept and withheld indices, split into ``groups`` interleaved groups
(``positions[g::groups]``), so that a lost packet takes scattered positions of a patch
rather than a block of them. Each group is coded on its own (fixed-length, or ANS under
the prior that depends on tier 0 alone), so any packet that arrives can be used.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection
from typing import TYPE_CHECKING

import numpy as np

from hfstream.codec.encoded import MISSING, TOKENS, EncodedImage, EncodedPatch
from hfstream.codec.index_coding import (
    bits_per_index,
    decode_with_prior,
    encode_with_prior,
    pack_fixed,
    unpack_fixed,
)
from hfstream.codec.schedules import Schedule, kept_positions, withheld_positions
from hfstream.geometry import FINE, STILL
from hfstream.protocol.packetizer import (
    FrameEntries,
    FramePackets,
    Packetizer,
    PacketizerConfig,
)
from hfstream.protocol.wire import FallbackPayload, IndexEntry, MotionEntry, Tier0Entry, WireError

if TYPE_CHECKING:
    from hfstream.codec.hybrid import HybridCodec


def group_positions(schedule: Schedule, tier: int, group: int, groups: int) -> np.ndarray:
    base = kept_positions(schedule) if tier == 1 else withheld_positions(schedule)
    return base[group::groups]


def checksum(values: np.ndarray) -> int:
    return zlib.crc32(np.asarray(values, dtype="<u2").tobytes()) & 0xFFFF


def fallback_payload(enc: EncodedImage) -> FallbackPayload | None:
    """The FALLBACK packets' content of ``enc`` (None: it has no fallback)."""
    if enc.fallback is None:
        return None
    entries = [e for e in tier0_entries(enc.fallback) if isinstance(e, Tier0Entry)]
    return FallbackPayload(enc.fallback.scale, tuple(entries))


def tier0_entries(enc: EncodedImage) -> list[Tier0Entry | MotionEntry]:
    """Each coded patch's entry; in a predicted frame, before it, the patch's motion where
    it reads the reference shifted (a reused patch has that entry alone, or none). A
    residual frame's coded patches always send theirs, no motion included: the receiver
    then knows a coded patch whose motion was lost, and shows the reference there
    instead of adding the difference to the reference unmoved."""
    out: list[Tier0Entry | MotionEntry] = []
    for i, p in enumerate(enc.patches):
        coded = p.continuous is not None
        if enc.predicted and (p.motion != STILL or (enc.residual and coded)):
            out.append(MotionEntry(i, p.motion))
        if p.continuous is None and enc.predicted:
            continue
        assert p.continuous is not None, "only a complete encoding can be sent"
        out.append(Tier0Entry(i, p.schedule, p.continuous[0], p.continuous[1], p.rung))
    return out


def index_entries(
    enc: EncodedImage, tier: int, groups: int, probs: np.ndarray | None
) -> list[IndexEntry]:
    """Entries of tier 1 (kept) or 2 (withheld); ``probs`` (P, 256, K) selects prior coding."""
    assert tier in (1, 2), f"index tiers are 1 and 2, got {tier}"
    bits = bits_per_index(enc.codebook_size)
    out = []
    for g in range(groups):
        for i, p in enumerate(enc.patches):
            pos = group_positions(p.schedule, tier, g, groups)
            if len(pos) == 0:
                continue
            values = p.indices[pos]
            assert (values != MISSING).all(), "only a complete encoding can be sent"
            data = (
                pack_fixed(values, bits)
                if probs is None
                else encode_with_prior(values, probs[i, pos])
            )
            out.append(IndexEntry(i, p.schedule, g, groups, data, checksum(values)))
    return out


def decode_index_entry(
    entry: IndexEntry, tier: int, codebook_size: int, probs: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(positions, values) of one entry; ``probs`` is that patch's (256, K) prior or None."""
    pos = group_positions(entry.schedule, tier, entry.group, entry.groups)
    if probs is None:
        try:
            values = unpack_fixed(entry.data, bits_per_index(codebook_size), len(pos))
        except ValueError as e:
            raise WireError("indices", str(e)) from None
    else:
        try:
            values = decode_with_prior(entry.data, probs[pos])
        except ValueError as e:
            raise WireError("indices", str(e)) from None
    if len(values) and int(values.max()) >= codebook_size:
        raise WireError("indices", f"index outside the {codebook_size}-word codebook")
    if checksum(values) != entry.check:
        raise WireError("checksum", "decoded indices do not match their checksum")
    return pos, values


def empty_patch(
    schedule: Schedule, continuous: tuple[bytes, bytes] | None, rung: int = 0
) -> EncodedPatch:
    """A received patch before its indices: tier 0 (strings and their rung) or nothing."""
    return EncodedPatch(continuous, schedule, np.full(TOKENS, MISSING, np.int64), rung)


def index_priors(codec: HybridCodec, enc: EncodedImage) -> np.ndarray:
    """(P, 256, K) prior of every patch's indices; it depends on tier 0 alone, so a frame
    re-scheduled (``dataclasses.replace``) keeps it."""
    return codec.index_probabilities(codec.latents(list(enc.patches)), enc.codebook_size)


def frame_entries(
    enc: EncodedImage,
    config: PacketizerConfig,
    *,
    priors: np.ndarray | None = None,
    tiers: Collection[int] = (0, 1, 2),
    reference_back: int = 0,
) -> FrameEntries:
    """What ``enc`` puts on the wire, ready for ``Packetizer.packetize`` (which may be
    called with it for many frame ids). Arguments as for ``packetize``;
    ``reference_back``: a predicted frame's distance to its reference (frame ids)."""
    groups = config.index_groups
    if enc.scale == FINE or enc.predicted:  # tier 0 alone (``scaling``, ``temporal``)
        tiers = [t for t in tiers if t == 0]
    withheld = 2 in tiers and config.send_withheld
    return FrameEntries(
        height=enc.height,
        width=enc.width,
        codebook_size=enc.codebook_size,
        prior_coded=priors is not None,
        tier0=tier0_entries(enc) if 0 in tiers else (),
        tier1=index_entries(enc, 1, groups, priors) if 1 in tiers else (),
        tier2=index_entries(enc, 2, groups, priors) if withheld else (),
        scale=enc.scale,
        fallback=fallback_payload(enc) if 0 in tiers else None,
        gray=enc.gray,
        reference_back=reference_back,
        residual=enc.residual,
    )


def packetize(
    enc: EncodedImage,
    packetizer: Packetizer,
    *,
    frame_id: int,
    priors: np.ndarray | None = None,
    tiers: Collection[int] = (0, 1, 2),
    frame_budget: float | None = None,
    strict_budget: bool = False,
    capture_ms: int = 0,
) -> FramePackets:
    """The packets of one encoded frame.

    ``priors`` (``index_priors``) selects prior-coded indices, else fixed-length. ``tiers``
    says which tiers to send (tier 2 also needs ``PacketizerConfig.send_withheld``); a
    VQ-only stream sends ``(1,)``. ``frame_budget`` and ``strict_budget``: see
    ``Packetizer.packetize``. ``capture_ms``: the headers' capture field
    (``capture_clock.capture_offset_ms``).
    """
    if enc.model_id != packetizer.model_id:
        raise ValueError(
            f"frame encoded with model {enc.model_id:08x}, "
            f"the packetizer sends model {packetizer.model_id:08x}"
        )
    reference_back = 0
    if enc.reference is not None:
        reference_back = (frame_id - enc.reference) & 0xFFFFFFFF
        if not 0 < reference_back <= 0xFFFF:
            raise ValueError(
                f"frame {frame_id} cannot be predicted from frame {enc.reference}: "
                "a reference must be 1..65535 frames back"
            )
    entries = frame_entries(
        enc, packetizer.config, priors=priors, tiers=tiers, reference_back=reference_back
    )
    return packetizer.packetize(
        entries,
        frame_id=frame_id,
        frame_budget=frame_budget,
        strict_budget=strict_budget,
        capture_ms=capture_ms,
    )
