"""What the reassembler (``protocol.reassembly``) tells its caller, packet by packet
(``FrameExpired``, which carries the frame's state, is defined beside that state)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PacketDropped:
    reason: str
    message: str


@dataclass(frozen=True)
class FrameOpened:
    frame_id: int
    height: int
    width: int


@dataclass(frozen=True)
class PatchesUpdated:
    """New data for some patches of a frame (tier 0, or indices of tier 1 or 2)."""

    frame_id: int
    tier: int
    patches: tuple[int, ...]


@dataclass(frozen=True)
class FrameComplete:
    """Every packet of every tier the sender announced has arrived (or was rebuilt)."""

    frame_id: int
