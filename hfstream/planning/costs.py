"""What a plan's packets cost on the wire: tier 0 and its parity estimated from the rate
table (the strings are not coded yet when the planner prices them), tier 1 as the
packetizer cuts the coded indices (``Packetizer.tier1_bytes``), or a floor under it.
Every figure includes the packets' headers and tags."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from hfstream.codec.continuous import STRING_OVERHEAD_BITS
from hfstream.codec.frame_coding import group_positions, index_entries
from hfstream.codec.schedules import Schedule
from hfstream.planning.gains import SCHEDULES
from hfstream.protocol.packetizer import PARITY_OVERHEAD, Packetizer, PacketizerConfig
from hfstream.protocol.wire import OVERHEAD

if TYPE_CHECKING:
    from hfstream.codec.encoded import EncodedImage
    from hfstream.codec.estimates import RungTable
    from hfstream.codec.hybrid import HybridCodec

# A tier-0 entry's bytes beyond the rate table's bits/8 for its strings: msgpack framing
# (8 or 9 bytes) and the strings' byte rounding and coder flush (2.6 bytes on average,
# -9 to +9 per patch), measured on validation photos at rungs 0 and 3. With 6 (framing
# alone) a plan could be 190 bytes short and lose a parity packet to the budget.
TIER0_ENTRY_BYTES = 11
# With joint strings (``PacketizerConfig.joint_tier0``) a patch costs its symbols and its
# three ids in its packet's joint entry; the coder's flush and rounding, which the rate
# table counts for every patch (``continuous.STRING_OVERHEAD_BITS``), and an entry's
# framing come once a packet.
JOINT_PATCH_BYTES = 3 - STRING_OVERHEAD_BITS / 8
JOINT_PACKET_BYTES = STRING_OVERHEAD_BITS / 8 + 10


def entry_bytes(config: PacketizerConfig) -> float:
    """What a coded patch adds to tier 0 beyond the rate table's bits/8 for its strings
    (negative with joint strings: the table counts a flush a patch)."""
    return JOINT_PATCH_BYTES if config.joint_tier0 else TIER0_ENTRY_BYTES


PARITY_FIELDS = 24  # a parity entry's fields beyond its block (lengths grow with k)
# The smallest index entry on the wire (``frame_coding.index_entries``): a msgpack array
# header, five one-byte integers (patch, schedule, group, groups, check) and a bin of at
# least one byte with its two-byte framing.
INDEX_ENTRY_MIN_BYTES = 1 + 5 + 2 + 1


def tier0_cost(
    string_bytes: float,
    patches: int,
    *,
    parity_ratio: float,
    config: PacketizerConfig,
    largest: float | None = None,
) -> tuple[int, int, int, int]:
    """(tier-0 bytes, parity bytes, data packets k, parity packets m) for ``string_bytes``
    of continuous strings in ``patches`` entries, as ``Packetizer`` cuts them (estimate;
    ``Packetizer.tier0_bytes`` gives the exact figure). ``largest``: the largest patch's
    strings."""
    per_entry = entry_bytes(config)
    payload = string_bytes + patches * per_entry
    room = config.mtu - OVERHEAD - PARITY_OVERHEAD
    k = max(1, math.ceil(payload / room))
    if config.tier0_patches:
        k = max(k, math.ceil(patches / config.tier0_patches))
    if config.joint_tier0:
        payload += k * JOINT_PACKET_BYTES
    t0 = payload + k * OVERHEAD
    if parity_ratio == 0:
        return math.ceil(t0), 0, k, 0
    # A parity packet is as wide as the block's widest data packet: even packets (the
    # packetizer balances them) are off the mean by up to about half the largest entry.
    entry = (largest if largest is not None else payload / patches) + per_entry
    width = min(room, payload / k + (entry / 2 if k > 1 else 0))
    if config.tier0_patches:
        width = max(width, min(room, math.ceil(patches / k) * entry))
    m, parity = 0, 0.0
    for start in range(0, k, config.fec_block):
        kb = min(config.fec_block, k - start)
        mb = max(1, math.ceil(kb * parity_ratio))
        m += mb
        parity += mb * (width + PARITY_FIELDS + kb * 2 + OVERHEAD)
    return math.ceil(t0), math.ceil(parity), k, m


def tier0_cost_at(
    table: RungTable, rungs: np.ndarray, parity_ratio: float, config: PacketizerConfig
) -> tuple[int, int, int, int]:
    """``tier0_cost`` of the frame of ``table`` with each patch at its rung of ``rungs``."""
    bits = table.bits[np.arange(table.patches), rungs]
    return tier0_cost(
        float(bits.sum()) / 8,
        table.patches,
        parity_ratio=parity_ratio,
        config=config,
        largest=float(bits.max()) / 8,
    )


def schedule_tier1_bytes(
    codec: HybridCodec, enc: EncodedImage, priors: np.ndarray | None, config: PacketizerConfig
) -> dict[str, int]:
    """What each schedule's tier-1 packets would cost for ``enc`` (headers and tags)."""
    packetizer = Packetizer(codec.model_id, config=config)
    out = {}
    for label in SCHEDULES[1:]:
        sched = Schedule.parse(label)
        frame = replace(enc, patches=tuple(replace(p, schedule=sched) for p in enc.patches))
        out[label] = packetizer.tier1_bytes(index_entries(frame, 1, config.index_groups, priors))
    return out


def tier1_floor(label: str, patches: int, groups: int) -> int:
    """Fewer bytes than schedule ``label``'s tier 1 can take for ``patches`` patches in
    ``groups`` index groups: one datagram's overhead and, per patch and group that keeps
    an index, the smallest entry msgpack can frame (``INDEX_ENTRY_MIN_BYTES``), whatever
    the prior makes of the indices themselves."""
    sched = Schedule.parse(label)
    kept = 0
    for g in range(groups):
        kept += int(len(group_positions(sched, 1, g, groups)) > 0)
    return OVERHEAD + INDEX_ENTRY_MIN_BYTES * patches * kept
