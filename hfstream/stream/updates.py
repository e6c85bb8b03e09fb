"""What a ``Receiver`` yields: one picture of a frame, with how it was made."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hfstream.stream.progressive import Stage


@dataclass(frozen=True)
class FrameUpdate:
    """One picture of a frame, as a ``Receiver`` yields it.

    A frame's pictures come in ``Stage`` order, never a lower stage after a higher one.
    With ``ReceiverConfig.instant_preview`` (the default) the first is ``PREVIEW``: tier 0
    up-sampled (``mode`` "continuous"), the cheapest picture. Then the best picture of what
    had arrived when its decode began, again as more arrives, labelled by what that was:
    ``PREVIEW`` (tier 0 only: a frame sent without indices, the frame planner's usual
    choice, stays there), ``PARTIAL`` (some indices; it may come again with more),
    ``FULL`` (every kept index) or ``REFINED`` (the withheld indices too). Packets that
    come during a decode join the next one, so a stage may be passed over, and under loss
    a frame can end at any stage. A frame whose best picture is its tier 0 alone (indices
    that would add too little, or a predicted frame) has no separate preview, and its
    pictures have ``mode`` "continuous"; a predicted frame's go from ``PREVIEW`` (part of
    its tier 0) to ``FULL`` (all of it). After the preview, a new picture comes only when
    something it is decoded from arrived, and the last has ``final`` set (unless the input
    ended first). Pictures of different frames may interleave; in live mode
    (``ReceiverConfig.live``) no frame comes after a newer one, and a frame a newer one
    overtook gets no further picture."""

    frame_id: int
    """The sender's number for the frame: 0, 1, 2... within its session (a restarted
    sender numbers from 0 again)."""
    stage: Stage
    """How much of the frame the picture was decoded from (``Stage``)."""
    image: np.ndarray
    """The picture, H x W x 3 uint8 at the frame's full size (whatever scale it was
    coded at)."""
    received: dict[str, float]
    """Share of the announced packets received, per tier: ``tier0`` (parity packets not
    counted), ``tier1``, ``tier2``."""
    latency_s: float
    """From the frame's first packet to this picture (the receiver's clock)."""
    final: bool
    """No better picture of this frame will follow."""
    capture_latency_s: float = 0.0
    """From the frame's capture (the sender's clock, carried in every packet header) to
    this picture (the receiver's clock). On one machine the clocks agree; across machines
    this includes their offset (keep them NTP-synchronised to trust it)."""
    mode: str = "hybrid"
    """How the picture was decoded: "continuous" from tier 0 alone, without the indices
    (the instant preview, every picture of a predicted frame, and any picture that the
    indices that arrived would not improve by the model's measured gains:
    ``HybridCodec.auto_mode``); "hybrid" the continuous picture plus what the indices
    add."""
    capture_time: float = 0.0
    """When the frame was captured (unix seconds, the sender's clock, from the packet
    headers): frames skipped or lost in between leave gaps on this timeline."""
