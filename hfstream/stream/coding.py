"""How a sender codes its frames: every frame alike, or each planned within a rate target.

The two are separate types because their settings do not mix: a schedule and a codebook
size are what a fixed coding chooses, while a planned coding lets the planner choose them
(``hfstream.planning``) for the loss the receiver reports, so only a planned coding has
a target to spread over its frames and a count of tier-0 resends to leave room for.

    SenderConfig(coding=FixedCoding(schedule="1_4"))
    SenderConfig(coding=PlannedCoding(target_bytes_per_s=50_000, fps=10))
"""

from __future__ import annotations

from dataclasses import dataclass

from hfstream.planning.frame_budgets import KEY_SHARE
from hfstream.protocol.schedules import Schedule

SCHEDULES = ("auto", *(s.label for s in Schedule))  # what ``FixedCoding.schedule`` accepts


@dataclass(frozen=True)
class FixedCoding:
    """Every frame coded the same way, whatever its size in bytes."""

    schedule: str = "auto"
    """``auto`` chooses each patch's schedule by its complexity; or one of 0, 1_1, 1_2,
    1_4, 1_9, 1_16 (``hfstream.codec.schedules``) for every patch."""
    codebook_size: int | None = None
    """A K-means-reduced codebook of this many words (one the model ships: the sender
    checks it against its codec); None: the full codebook."""

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f'schedule must be one of {", ".join(SCHEDULES)}, got "{self.schedule}"'
            )
        if self.codebook_size is not None and not (
            isinstance(self.codebook_size, int) and self.codebook_size >= 1
        ):
            raise ValueError(
                f"codebook_size must be a positive number of words or None, "
                f"got {self.codebook_size}"
            )


@dataclass(frozen=True)
class PlannedCoding:
    """Each frame planned (rungs, schedule, tier-0 parity) within its share of a target
    rate, for the loss the receiver reports; the pacing rate follows the reports so that
    the stream stays within the target (``hfstream.protocol.feedback.RateController``)."""

    target_bytes_per_s: float
    """Bytes a second the stream keeps within: each frame's budget is its share,
    ``target_bytes_per_s / fps``, less when the reports show loss at a throughput below
    it (``RateController``)."""
    fps: float = 10.0
    """The frame rate the target is spread over."""
    tier0_sends: int = 1
    """Sends a tier-0 packet may get: 1 over UDP (lost is lost; tier-0 parity protects
    it). Over a transport that resends lost tier 0 (the WebRTC tier-0 channel, partially
    reliable within ``tier0_lifetime_ms``), the number of sends its lifetime allows at the
    path's round trip: the planner then sends no parity and leaves room in each frame's
    budget for the resends instead (``hfstream.planning.plan_frame``), or, where the
    target's frame fits one packet, counts on the resends going on top of the target
    (``FrameBudgets.planned_credit``), as WebRTC's NACK resends go on top of its
    encoder's rate."""
    temporal: bool = True
    """Predicted frames (``hfstream.codec.temporal``): each frame coded against the newest
    frame the receiver acknowledged, or one still in flight (``in_flight_s``), or the one
    before it where that shows its own frame much better
    (``stream.references.choose_reference``), its unchanged patches reused (moved where
    the camera moved); intra frames when none is recent.
    False: every frame intra (for experiments; ``sim.temporal_video`` compares)."""
    in_flight_s: float = 0.5
    """With ``temporal``: a frame may be predicted from one sent less than this many
    seconds ago and not yet acknowledged, while its chain back to an acknowledged frame
    holds (``stream.references.SentPictures``): each frame then codes one frame's motion.
    A frame not acknowledged within it is taken as lost, and the frames after it go back
    to acknowledged references, so a loss spoils at most this long of the stream. It
    should cover the round trip and the receiver's decode. 0: acknowledged frames only
    (a loss spoils nothing but its own frame). A live sender (``SenderConfig.live``)
    uses 0: its receiver decodes only the newest frame, and would break the chain."""
    key_share: float = KEY_SHARE
    """With ``temporal``: an intra frame may spend this many frames' budgets, which the
    predicted frames after it pay back (``hfstream.planning.frame_budgets``): every
    predicted frame refines its picture, so its bytes are worth more. Its packets get as
    many frames' time to leave. 1: every frame its own share. A live sender takes at
    most ``LIVE_KEY_SHARE`` (4): a larger intra frame delays every frame behind it."""
    residual: bool = True
    """With ``temporal``: the planner also codes each predicted frame as differences from
    the moved reference and sends whichever plan is better (a change of light costs
    little that way). False: pictures only, which spares it the differences' rung tables
    (the slowest part of a predicted frame's encode)."""

    def __post_init__(self) -> None:
        if not self.key_share >= 1:
            raise ValueError(f"key_share must be at least 1, got {self.key_share}")
        if not self.in_flight_s >= 0:
            raise ValueError(f"in_flight_s must be at least 0, got {self.in_flight_s}")
        for name in ("target_bytes_per_s", "fps", "tier0_sends"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


Coding = FixedCoding | PlannedCoding
