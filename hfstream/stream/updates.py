"""What a ``Receiver`` yields: one picture of a frame, with how it was made."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hfstream.stream.progressive import Stage


@dataclass(frozen=True)
class FrameUpdate:
    """One picture of a frame. A frame's pictures come in rising stage order: the instant
    preview (``PREVIEW``, ``mode`` "continuous"; none when the best picture is that very
    picture), then the best picture of what had arrived, again as more arrives (a
    ``PARTIAL`` picture may come again with more indices). The same picture never comes
    twice, and the last has ``final`` set (unless the input ended first)."""

    frame_id: int
    stage: Stage
    image: np.ndarray  # H x W x 3 uint8
    received: dict[str, float]  # share of announced packets received, per tier
    latency_s: float  # from the frame's first packet to this picture
    final: bool  # no better picture of this frame will follow
    # From the frame's capture (the sender's clock, carried in every packet header) to
    # this picture (the receiver's clock). On one machine the clocks agree; across
    # machines this includes their offset (keep them NTP-synchronised to trust it).
    capture_latency_s: float = 0.0
    # How the picture was decoded: "continuous" for the instant preview (tier 0 up-sampled,
    # no predictor), "hybrid" for every later picture.
    mode: str = "hybrid"
    # When the frame was captured (unix seconds, the sender's clock, from the packet
    # headers): frames skipped or lost in between leave gaps on this timeline.
    capture_time: float = 0.0
