"""Receiver-side bookkeeping for sequences: the best picture of each frame, in order."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from hfstream.stream.progressive import Stage
from hfstream.stream.receiver import FrameUpdate, Receiver


@dataclass
class FrameRecord:
    frame_id: int
    stage: Stage
    latency_s: float  # first packet -> this frame's best picture
    first_picture_s: float  # first packet -> its first picture (the preview)
    updates: int
    image: np.ndarray | None
    capture_s: float = 0.0  # capture (sender's clock) -> this frame's best picture
    first_capture_s: float = 0.0  # capture -> its first picture

    @classmethod
    def first(cls, u: FrameUpdate) -> FrameRecord:
        """The record of a frame as its first picture ``u`` left it."""
        return cls(
            u.frame_id, u.stage, u.latency_s, u.latency_s, 1, u.image, u.capture_latency_s,
            u.capture_latency_s,
        )  # fmt: skip

    def update(self, u: FrameUpdate) -> None:
        """A later picture of the frame: kept when it is at least as good."""
        self.updates += 1
        if u.stage >= self.stage or self.image is None:
            self.stage, self.latency_s, self.image = u.stage, u.latency_s, u.image
            self.capture_s = u.capture_latency_s


async def collect_frames(
    receiver: Receiver, frames: int, idle_timeout_s: float = 3.0
) -> dict[int, FrameRecord]:
    """Consume updates until ``frames`` frames are final or nothing came for a while."""
    best: dict[int, FrameRecord] = {}
    finals = 0
    while finals < frames:
        try:
            u: FrameUpdate = await asyncio.wait_for(receiver.__anext__(), idle_timeout_s)
        except (asyncio.TimeoutError, StopAsyncIteration):
            break
        rec = best.get(u.frame_id)
        if rec is None:
            best[u.frame_id] = FrameRecord.first(u)
        else:
            rec.update(u)
        finals += u.final
    return best


def in_order(
    records: dict[int, FrameRecord], frames: int, shape: tuple[int, ...]
) -> list[np.ndarray]:
    """Frames 0..frames-1; a frame that never arrived repeats the previous (a freeze)."""
    out = []
    last = np.full(shape, 128, np.uint8)
    for i in range(frames):
        rec = records.get(i)
        if rec is not None and rec.image is not None:
            last = rec.image
        out.append(last)
    return out
