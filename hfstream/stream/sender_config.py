"""What a ``Sender`` is told (``SenderConfig``) and what it tells: each frame queued
(``FrameSent``), a receiver gone silent (``ReceiverGone``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hfstream.codec.refinement import check_refine_steps
from hfstream.protocol.packetizer import PacketizerConfig
from hfstream.stream.coding import FixedCoding, PlannedCoding


@dataclass(frozen=True)
class SenderConfig:
    """How a ``Sender`` codes, paces and authenticates its frames (each field's docstring)."""

    rate_bytes_per_s: float = 250_000.0
    """Pacing rate (2 Mbit/s); with a ``PlannedCoding`` the rate controller's instead."""
    burst_bytes: int = 2400
    """The pacer's token bucket: the most bytes that may leave at once."""
    coding: FixedCoding | PlannedCoding = field(default_factory=FixedCoding)
    """How frames are coded: every frame alike (``FixedCoding``: a schedule, a codebook
    size), or each planned within a rate target for the loss the receiver reports
    (``PlannedCoding``: the pacing rate then follows the reports)."""
    prior_coding: bool = True
    """Code the indices under the learned prior (else fixed-length)."""
    deadline_s: float = 1.0
    """Default time for a frame's packets to leave (``send_image``'s ``deadline_s``); a
    packet still queued after it is dropped."""
    key: bytes | None = field(default=None, repr=False)
    """Pre-shared key (``auth.parse_key``); None: unauthenticated, for experiments only."""
    packetizer: PacketizerConfig = field(default_factory=PacketizerConfig)
    """Packet size, tier-0 parity, interleaving (with a ``PlannedCoding`` the planner
    chooses each frame's parity ratio, tier-0 patches per packet and fallback copies)."""
    max_reports: int = 64
    """The newest receiver reports kept in ``Sender.reports``."""
    live: bool = False
    """``send_frames`` skips frames whose slot passed during an earlier encode (real time)
    instead of encoding every frame late. A live sender also sends no tier 2 (withheld
    indices would refine a picture that the next frame replaces, with a decode several
    times the cost of the continuous picture's: docs/notebook/speed.md), and with a
    ``FixedCoding`` no tier 1 where the receiver's ``auto`` picture would not use it
    (``indices_shown``), and plans its predicted frames the fast way
    (``encode_predicted(fast=True)``), at ``FINE`` only while such a frame would fit
    the frame interval (``stream.live_scales``). With a ``PlannedCoding``, its intra
    frames are tier 0 alone at those scales, it predicts from acknowledged frames only,
    and ``send_frames`` waits up to ``key_wait_s`` for an intra frame's acknowledgement."""
    refine_steps: int = 0
    """Encode-time refinement of the continuous latent (``hfstream.codec.refinement``):
    better pictures for the bytes, but each step costs a decoder pass, too slow for a
    stream's frames to keep up (docs/notebook/codec-and-models.md), so off by default; a
    still image may spend it."""
    key_wait_s: float = 1.0
    """A live planned temporal stream skips frames for up to this long after an intra
    frame while no reference is acknowledged, rather than code intra frame after intra
    frame (``Sender.awaiting_reference``); only once while no report has come at all (a
    receiver that never reports)."""
    receiver_timeout_s: float | None = None
    """Once reports came, a receiver silent this long has gone (it stopped, or the path to
    it broke): ``send_image`` raises ``ReceiverGone`` instead of sending on into the void.
    None: never judged."""

    @property
    def packetizing(self) -> PacketizerConfig:
        """The packetizer settings frames go out with (``packetizer``, less tier 2 when
        live)."""
        return replace(self.packetizer, send_withheld=False) if self.live else self.packetizer

    def __post_init__(self) -> None:
        for name in ("rate_bytes_per_s", "burst_bytes", "deadline_s", "max_reports"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not isinstance(self.coding, (FixedCoding, PlannedCoding)):
            raise TypeError(f"coding must be a FixedCoding or a PlannedCoding, got {self.coding!r}")
        check_refine_steps(self.refine_steps)
        if not self.key_wait_s >= 0:
            raise ValueError(f"key_wait_s must be at least 0, got {self.key_wait_s}")
        if self.receiver_timeout_s is not None and not self.receiver_timeout_s > 0:
            raise ValueError(
                f"receiver_timeout_s must be positive or None, got {self.receiver_timeout_s}"
            )


class ReceiverGone(Exception):
    """Reports had come, then none for ``SenderConfig.receiver_timeout_s``."""

    def __init__(self, silent_s: float, reports: int) -> None:
        super().__init__(f"no receiver report for {silent_s:.1f} s, after {reports} reports")
        self.silent_s = silent_s
        self.reports = reports


@dataclass(frozen=True)
class FrameSent:
    """What ``send_image`` queued of one frame."""

    frame_id: int
    """The frame's number in this sender's session (from 0)."""
    packets: dict[int, int]
    """Tier -> packets queued."""
    bytes: dict[int, int]
    """Tier -> bytes queued (headers and tags included)."""
    encode_s: float
    """Seconds spent coding and packetizing the frame (in the worker thread; the sender's
    own decode of it, for its references, runs after, in another)."""
    capture_ms: int = 0
    """The headers' capture field (``capture_clock.capture_offset_ms``)."""
    reference: int | None = None
    """A predicted frame's reference, the id of the frame it is coded against (None:
    intra)."""
