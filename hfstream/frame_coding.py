"""Between the codec and the wire: an encoded frame <-> tier entries.

Tier 0 holds each patch's continuous strings and schedule. Tiers 1 and 2 hold a patch's
kept and withheld indices, split into ``groups`` interleaved groups
(``positions[g::groups]``), so that a lost packet takes scattered positions of a patch
rather than a block of them. Each group is coded on its own (fixed-length, or ANS under
the prior that depends on tier 0 alone), so any packet that arrives can be used.
"""

from __future__ import annotations

import zlib

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
from hfstream.protocol.wire import IndexEntry, Tier0Entry, WireError


def group_positions(schedule: Schedule, tier: int, group: int, groups: int) -> np.ndarray:
    base = kept_positions(schedule) if tier == 1 else withheld_positions(schedule)
    return base[group::groups]


def checksum(values: np.ndarray) -> int:
    return zlib.crc32(np.asarray(values, dtype="<u2").tobytes()) & 0xFFFF


def tier0_entries(enc: EncodedImage) -> list[Tier0Entry]:
    out = []
    for i, p in enumerate(enc.patches):
        assert p.continuous is not None, "only a complete encoding can be sent"
        out.append(Tier0Entry(i, p.schedule, p.continuous[0], p.continuous[1]))
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


def empty_patch(schedule: Schedule, continuous: tuple[bytes, bytes] | None) -> EncodedPatch:
    return EncodedPatch(continuous, schedule, np.full(TOKENS, MISSING, np.int64))
