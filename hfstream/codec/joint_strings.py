"""The continuous strings of the patches of one packet, coded as one (y, z) pair.

A packet is lost whole, so its patches gain nothing from strings of their own, and each
string costs its rANS flush and word rounding (``continuous.STRING_OVERHEAD_BITS``, 11
bytes a patch over both) and its framing. ``join_strings`` decodes each patch's symbols
and codes them again as one string of y and one of z, the patches side by side;
``split_strings`` does the reverse and returns each patch's own strings, the very bytes
the sender coded (rANS is deterministic given the symbols and their CDF indexes, which
both ends derive from the same ẑ). Nothing after the wire changes: caches, decoding and
``.hfs`` files all see per-patch strings.

``Tier0Joiner`` is what ``protocol.packetizer.Packetizer`` calls to join a packet's
``Tier0Entry``s (``protocol.tier0.JointTier0Entry``); ``split_joint`` is what the
receiver calls, with a cache, since a frame's picture is decoded more than once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from hfstream.codec import rans
from hfstream.codec.caches import LRU
from hfstream.codec.continuous import MAX_Y_BYTES, MAX_Z_BYTES, ContinuousCodec, _padded
from hfstream.geometry import Scale
from hfstream.protocol.tier0 import JointStrings, JointTier0Entry, Tier0Entry

if TYPE_CHECKING:
    from hfstream.codec.hybrid import HybridCodec

# The largest symbol a patch's strings hold, in magnitude: latents times the top rung's
# gain stay within a few hundred.
MAX_SYMBOL = 1 << 14
SPLIT_CACHE = 64  # joint entries whose split a stream keeps (a few frames' packets)
JOIN_CACHE = 16  # packets whose joined strings a stream keeps


def _side_by_side(per_patch: torch.Tensor) -> torch.Tensor:
    """(k, C, h, w) -> (1, C, h, k*w): the layout a joint string codes."""
    k, c, h, w = per_patch.shape
    return per_patch.permute(1, 2, 0, 3).reshape(1, c, h, k * w)


def _apart(joint: torch.Tensor, k: int) -> torch.Tensor:
    """The inverse of ``_side_by_side``."""
    _, c, h, kw = joint.shape
    return joint.reshape(c, h, k, kw // k).permute(2, 0, 1, 3).contiguous()


@torch.inference_mode()
def join_strings(
    stream: ContinuousCodec, strings: Sequence[tuple[bytes, bytes]]
) -> tuple[bytes, bytes]:
    """The (y, z) strings of several patches of ``stream`` as one pair."""
    bottleneck, conditional = stream.entropy_bottleneck, stream.gaussian_conditional
    z_indexes = stream.z_indexes(len(strings))
    z_symbols = rans.decode(
        bottleneck, [_padded(z, MAX_Z_BYTES, "z") for _, z in strings], z_indexes
    )
    y_indexes, _ = stream.y_params(z_symbols)
    y_symbols = rans.decode(
        conditional, [_padded(y, MAX_Y_BYTES, "y") for y, _ in strings], y_indexes
    )
    (z,) = rans.encode(bottleneck, _side_by_side(z_symbols), _side_by_side(z_indexes))
    (y,) = rans.encode(conditional, _side_by_side(y_symbols), _side_by_side(y_indexes))
    return y, z


@torch.inference_mode()
def split_strings(stream: ContinuousCodec, joint: JointStrings) -> list[tuple[bytes, bytes]]:
    """Each patch's own (y, z) strings of ``joint``, in its order; a ``ValueError`` when
    they do not decode to strings a patch may have (forged, or another stream's)."""
    bottleneck, conditional = stream.entropy_bottleneck, stream.gaussian_conditional
    k = len(joint.patches)
    z_indexes = stream.z_indexes(k)
    padded = _padded(joint.z, MAX_Z_BYTES * k, "joint z")
    z_symbols = _apart(rans.decode(bottleneck, [padded], _side_by_side(z_indexes)), k)
    y_indexes, _ = stream.y_params(z_symbols)
    padded = _padded(joint.y, MAX_Y_BYTES * k, "joint y")
    y_symbols = _apart(rans.decode(conditional, [padded], _side_by_side(y_indexes)), k)
    for symbols in (z_symbols, y_symbols):
        # Noise decodes to escape values up to 2**31, which compressai's encoder never
        # finishes coding again: refuse what no latent reaches first.
        if int(symbols.long().abs().max()) > MAX_SYMBOL:
            raise ValueError("joint strings decode to symbols no latent has")
    z_strings = rans.encode(bottleneck, z_symbols, z_indexes)
    y_strings = rans.encode(conditional, y_symbols, y_indexes)
    if max(map(len, z_strings)) > MAX_Z_BYTES or max(map(len, y_strings)) > MAX_Y_BYTES:
        raise ValueError("joint strings decode to a patch string over its limit")
    return list(zip(y_strings, z_strings, strict=True))


def _joined(
    stream: ContinuousCodec, strings: tuple[tuple[bytes, bytes], ...]
) -> tuple[bytes, bytes]:
    """``join_strings``, kept per stream: the planner measures a frame's packets, then
    the sender sends the same ones."""
    cache: LRU[tuple[tuple[bytes, bytes], ...], tuple[bytes, bytes]] | None
    cache = getattr(stream, "_joins", None)
    if cache is None:
        cache = LRU(JOIN_CACHE)
        stream._joins = cache  # type: ignore[attr-defined]
    known = cache.get_many([strings])
    if strings in known:
        return known[strings]
    pair = join_strings(stream, strings)
    cache.put_many([(strings, pair)])
    return pair


def split_joint(stream: ContinuousCodec, joint: JointStrings) -> list[tuple[bytes, bytes]] | None:
    """``split_strings``, kept per stream for the next decode of the same frame; None
    where the strings do not split (the receiver shows those patches as lost)."""
    cache: LRU[JointStrings, list[tuple[bytes, bytes]] | None] | None
    cache = getattr(stream, "_joint_splits", None)
    if cache is None:
        cache = LRU(SPLIT_CACHE)
        stream._joint_splits = cache  # type: ignore[attr-defined]
    known = cache.get_many([joint])
    if joint in known:
        return known[joint]
    try:
        split: list[tuple[bytes, bytes]] | None = split_strings(stream, joint)
    except ValueError:
        split = None
    cache.put_many([(joint, split)])
    return split


class Tier0Joiner:
    """Joins the ``Tier0Entry``s of one packet of ``codec``'s frames
    (``Packetizer(joiner=...)``): by the stream that coded them (``HybridCodec.coder_for``:
    the residual stream for a residual frame's, the FINE stream for a FINE frame's)."""

    def __init__(self, codec: HybridCodec) -> None:
        self.codec = codec

    def __call__(
        self, entries: Sequence[Tier0Entry], *, residual: bool, scale: Scale
    ) -> JointTier0Entry:
        stream = self.codec.coder_for(scale, residual=residual).continuous
        y, z = _joined(stream, tuple((e.y, e.z) for e in entries))
        return JointTier0Entry(
            JointStrings(tuple(e.patch for e in entries), y, z),
            tuple(e.schedule for e in entries),
            tuple(e.rung for e in entries),
        )
