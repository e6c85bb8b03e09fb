"""How a ``Receiver`` is set up: its bounds, its decode policy and its reports."""

from __future__ import annotations

from dataclasses import dataclass, field

from hfstream.protocol.reassembly import DEFAULT_MAX_FRAME_PIXELS


@dataclass(frozen=True)
class ReceiverConfig:
    """How a ``Receiver`` bounds its state, decodes and reports (each field's comment)."""

    frame_timeout_s: float = 2.0
    max_frames: int = 8  # frames being reassembled at once
    max_frame_bytes: int = 4 * 1024 * 1024
    # Declared geometry above this is refused before any decode: decoding cost grows with
    # the pixels, and one forged header must not buy minutes of it.
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS
    decode_queue: int = 32  # frames waiting for a decode; when full the oldest is skipped
    max_updates: int = 64  # pictures not yet taken by the consumer; the oldest give way
    decode_steps: int = 1  # predictor passes
    # A frame's first picture is its continuous stream up-sampled, shown before the
    # predictor-filled decode of the same packets, which costs several times more
    # (receive timings in docs/notebook/speed.md).
    instant_preview: bool = True
    # Live mode: decode the newest frame only, skip older ones not yet started (counted in
    # ``Receiver.frames_skipped``) and never show a frame after a newer one.
    live: bool = False
    # Live mode: an incomplete newest frame waits this long after its first packet for
    # the rest of its packets: the decode, not the network, is most of a frame's cost at
    # the receiver (docs/notebook/speed.md), so it should not be spent on a part of it.
    live_settle_s: float = 0.1
    feedback_interval_s: float | None = 0.25  # None: send no reports
    # Pre-shared key (``auth.parse_key``); None: unauthenticated, for experiments only.
    key: bytes | None = field(default=None, repr=False)
    # Refuse sessions that started longer ago than this (needs clocks within it); None:
    # any session newer than the current one is taken.
    max_session_age_s: float | None = None

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
