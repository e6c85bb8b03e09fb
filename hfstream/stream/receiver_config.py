"""How a ``Receiver`` is set up: its bounds, its decode policy and its reports."""

from __future__ import annotations

from dataclasses import dataclass, field

from hfstream.protocol.reassembly import DEFAULT_MAX_FRAME_PIXELS


@dataclass(frozen=True)
class ReceiverConfig:
    """How a ``Receiver`` bounds its state, decodes and reports (each field's docstring)."""

    frame_timeout_s: float = 2.0
    """A frame that gets no packet for this long is closed (``Receiver.frames_expired``);
    its late packets are dropped."""
    max_frames: int = 8
    """Frames being reassembled at once; one more evicts the oldest."""
    max_frame_bytes: int = 4 * 1024 * 1024
    """Bytes of packets a frame may hold, all tiers; packets beyond it are dropped
    (``Receiver.drops["frame-size"]``)."""
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS
    """Declared geometry above this is refused before any decode: decoding cost grows with
    the pixels, and one forged header must not buy minutes of it."""
    decode_queue: int = 32
    """Frames waiting for a decode; when full the oldest is skipped."""
    max_updates: int = 64
    """Pictures not yet taken by the consumer; the oldest give way (counted in
    ``stats["updates_dropped"]``)."""
    decode_steps: int = 1
    """Predictor passes per decode (1..16)."""
    instant_preview: bool = True
    """A frame's first picture is its continuous stream up-sampled, shown before the
    predictor-filled decode of the same packets, which costs several times more (receive
    timings in docs/notebook/speed.md)."""
    live: bool = False
    """Live mode: decode the newest frame only, skip older ones not yet started (counted in
    ``Receiver.frames_skipped``) and never show a frame after a newer one."""
    live_settle_s: float = 0.1
    """Live mode: an incomplete newest frame waits this long after its first packet for
    the rest of its packets: the decode, not the network, is most of a frame's cost at the
    receiver (docs/notebook/speed.md), so it should not be spent on a part of it."""
    feedback_interval_s: float | None = 0.25
    """Seconds between reports to the sender: the packets and bytes received, and the
    frames decoded complete, which a ``PlannedCoding`` sender plans its rate and predicts
    its frames from. None: send no reports (such a sender then codes every frame intra)."""
    key: bytes | None = field(default=None, repr=False)
    """Pre-shared key (``auth.parse_key``); None: unauthenticated, for experiments only."""
    max_session_age_s: float | None = None
    """Refuse sessions that started longer ago than this (needs clocks within it); None:
    any session newer than the current one is taken."""

    def __post_init__(self) -> None:
        if not self.frame_timeout_s > 0:
            raise ValueError(f"frame_timeout_s must be positive, got {self.frame_timeout_s}")
        for name in ("max_frames", "max_frame_bytes", "decode_queue", "max_updates"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.live_settle_s >= 0:
            raise ValueError(f"live_settle_s must be at least 0, got {self.live_settle_s}")
        if not 1 <= self.decode_steps <= 16:
            raise ValueError(f"decode_steps must be in 1..16, got {self.decode_steps}")
        if self.feedback_interval_s is not None and not self.feedback_interval_s > 0:
            raise ValueError(
                f"feedback_interval_s must be positive or None, got {self.feedback_interval_s}"
            )
