"""What a receiver takes on from a packet's header alone, before any frame state: a frame
no larger (as shown) than its limit, and no indices for a frame coded ``FINE``."""

from __future__ import annotations

from hfstream.geometry import FINE, shown_side
from hfstream.protocol.wire import PacketHeader, PacketType, WireError


def check_frame_header(h: PacketHeader, max_frame_pixels: int) -> None:
    """A ``WireError`` for a header the receiver refuses."""
    shown = shown_side(h.height, h.scale), shown_side(h.width, h.scale)
    if shown[0] * shown[1] > max_frame_pixels:
        raise WireError(
            "geometry",
            f"frame size {shown[1]}x{shown[0]} is more than the "
            f"{max_frame_pixels} pixels this receiver accepts",
        )
    if h.scale == FINE and h.type in (PacketType.TIER1, PacketType.TIER2):
        # Indices of a FINE frame would be decoded at twice the shown size each way: the
        # senders never make them, and they would break the bound on a frame's work.
        raise WireError("field", "a FINE frame carries no indices")
