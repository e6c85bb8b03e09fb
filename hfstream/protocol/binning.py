"""How entries become payloads: greedy packing under the MTU, a patch's tier-0 entries
kept together, spread or balanced over packets, and a packet's strings joined into one
entry where the packetizer can (``tier0.JointTier0Entry``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgpack

from hfstream.protocol.wire import (
    OVERHEAD,
    FallbackPayload,
    JointTier0Entry,
    MotionEntry,
    Tier0Entry,
    pack_payload,
)

# About what joining saves a patch's strings (``codec.joint_strings``): a coder flush,
# its word rounding and an entry's framing, less the patch's ids in the joint entry.
JOINT_SAVING = 12
PARITY_OVERHEAD = 64  # room kept in tier-0 packets for the parity payload's own fields


def bins(entries: list[list], limit: int, max_items: int = 0) -> list[bytes]:
    """Greedy packing of msgpack entries into payloads of at most ``limit`` bytes (and of
    at most ``max_items`` entries, when positive)."""
    units = [[msgpack.packb(e, use_bin_type=True)] for e in entries]
    return _payloads(units, _pack(units, limit, max_items))


def oversized_tier0(entries: Sequence[Tier0Entry | MotionEntry], mtu: int) -> set[int]:
    """Positions of the tier-0 entries too large for one tier-0 packet at ``mtu`` with
    their patch's other entry (a patch's strings at a high rung on a busy picture): the
    planner lowers their rungs."""
    limit = mtu - OVERHEAD - PARITY_OVERHEAD
    sizes = [len(msgpack.packb(e.to_list(), use_bin_type=True)) for e in entries]
    per_patch: dict[int, int] = {}
    for e, size in zip(entries, sizes, strict=True):
        per_patch[e.patch] = per_patch.get(e.patch, 0) + size
    return {i for i, e in enumerate(entries) if per_patch[e.patch] + 3 > limit}


def _units(entries: Sequence[Tier0Entry | MotionEntry]) -> list[list[int]]:
    """Tier-0 entries (by position) grouped by patch (consecutive entries of the same
    patch): a patch's motion entry travels in the packet of its strings, which the
    receiver needs together (a residual frame's)."""
    units: list[list[int]] = []
    for i, e in enumerate(entries):
        if i and e.patch == entries[i - 1].patch:
            units[-1].append(i)
        else:
            units.append([i])
    return units


def _pack(units: list[list[bytes]], limit: int, max_units: int = 0) -> list[list[int]]:
    """Greedy packing of ``units`` (each one or more packed entries kept together) into
    payloads of at most ``limit`` bytes (and ``max_units`` units, when positive): the
    units of each payload, by position."""
    groups: list[list[int]] = []
    cur: list[int] = []
    size = count = 0
    for i, unit in enumerate(units):
        n, b = len(unit), sum(map(len, unit))
        if b + 3 > limit:
            raise ValueError(
                f"an entry of {b} bytes does not fit a {limit}-byte payload; "
                "raise PacketizerConfig.mtu"
            )
        full = max_units > 0 and count >= max_units
        entries = sum(len(units[j]) for j in cur)
        if cur and (full or size + b + (1 if entries + n < 16 else 3) > limit):
            groups.append(cur)
            cur, size, count = [], 0, 0
        cur.append(i)
        size += b
        count += 1
    if cur:
        groups.append(cur)
    return groups


def _payloads(units: list[list[bytes]], groups: list[list[int]]) -> list[bytes]:
    return [array([b for i in g for b in units[i]]) for g in groups]


def tier0_bins(
    entries: Sequence[Tier0Entry | MotionEntry],
    limit: int,
    per_packet: int,
    join: Callable[[Sequence[Tier0Entry]], JointTier0Entry] | None = None,
) -> list[bytes]:
    """Tier-0 payloads, a patch's entries together (``_units``): as ``_pack``, but with
    ``per_packet`` above 1 the P packets each take every P-th patch (patch j, j + P,
    j + 2P... in packet j), not a run of them; with ``per_packet`` 0, the fewest packets
    that hold every patch, of even sizes. ``join``: what makes a packet's ``Tier0Entry``s
    one joint entry (where that is smaller)."""
    units = _units(entries)
    packed = [msgpack.packb(e.to_list(), use_bin_type=True) for e in entries]
    # Joined, a patch's strings take about JOINT_SAVING bytes less: packets are filled
    # by that size (a packet that would still not fit goes out as plain entries).
    less = JOINT_SAVING if join is not None else 0
    sized = [
        [packed[i][: len(packed[i]) - less * isinstance(entries[i], Tier0Entry)] for i in unit]
        for unit in units
    ]
    if per_packet == 0:
        groups = _balanced(sized, limit)
    elif per_packet == 1 or len(units) <= per_packet:
        groups = _pack(sized, limit, per_packet)
    else:
        packets = -(-len(units) // per_packet)
        groups = [
            [u * packets + j for u in g]
            for j in range(packets)
            for g in _pack(sized[j::packets], limit)
        ]
    payloads = []
    for group in groups:
        at = [i for u in group for i in units[u]]
        plain = array([packed[i] for i in at])
        strings = [entries[i] for i in at if isinstance(entries[i], Tier0Entry)]
        joint = None
        if join is not None and len(strings) > 1:
            motion = [packed[i] for i in at if not isinstance(entries[i], Tier0Entry)]
            joined = join(strings)  # type: ignore[arg-type]
            joint = array([*motion, msgpack.packb(joined.to_list(), use_bin_type=True)])
        if joint is not None and len(joint) <= min(len(plain), limit):
            payloads.append(joint)
        elif len(plain) <= limit:
            payloads.append(plain)
        else:  # filled by joined sizes, and too large as it is
            mine = [[packed[i] for i in units[u]] for u in group]
            payloads += _payloads(mine, _pack(mine, limit))
    return payloads


def _balanced(units: list[list[bytes]], limit: int) -> list[list[int]]:
    """As many payloads as greedy packing needs, the units dealt largest first to the
    emptiest payload. Parity is as wide as a block's widest payload, so even payloads
    make it cheaper (greedy packing fills the first ones and leaves the last small)."""
    greedy = _pack(units, limit)
    if len(greedy) <= 1:
        return greedy
    sizes_of = [sum(map(len, u)) for u in units]
    bins: list[list[int]] = [[] for _ in greedy]
    sizes = [0] * len(greedy)
    for i in sorted(range(len(units)), key=lambda i: -sizes_of[i]):
        j = sizes.index(min(sizes))
        bins[j].append(i)
        sizes[j] += sizes_of[i]
    groups = [sorted(k) for k in bins]
    return groups if max(map(len, _payloads(units, groups))) <= limit else greedy


def fallback_bins(fallback: FallbackPayload, limit: int) -> list[bytes]:
    """Fallback payloads of at most ``limit`` bytes, each ``[scale, entry, ...]``."""
    groups: list[list[Tier0Entry]] = [[]]
    for e in fallback.entries:
        trial = FallbackPayload(fallback.scale, (*groups[-1], e))
        if groups[-1] and len(pack_payload(trial.to_list())) > limit:
            groups.append([])
        groups[-1].append(e)
    payloads = [pack_payload(FallbackPayload(fallback.scale, tuple(g)).to_list()) for g in groups]
    if max(map(len, payloads)) > limit:
        raise ValueError(
            f"a fallback entry does not fit a {limit}-byte payload; raise PacketizerConfig.mtu"
        )
    return payloads


def array(items: list[bytes]) -> bytes:
    n = len(items)
    head = bytes([0x90 | n]) if n < 16 else b"\xdc" + n.to_bytes(2, "big")
    return head + b"".join(items)
