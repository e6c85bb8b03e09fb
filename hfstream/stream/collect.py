"""Receiver-side bookkeeping for sequences: the best picture of each frame, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
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
    capture_time: float = 0.0  # unix seconds, the sender's clock (``FrameUpdate``)

    @classmethod
    def first(cls, u: FrameUpdate) -> FrameRecord:
        """The record of a frame as its first picture ``u`` left it."""
        return cls(
            u.frame_id, u.stage, u.latency_s, u.latency_s, 1, u.image, u.capture_latency_s,
            u.capture_latency_s, u.capture_time,
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


def capture_fps(records: Iterable[FrameRecord]) -> float | None:
    """The sender's frame rate as the frames' capture times tell it (None: fewer than two
    distinct times). Capture times are whole ms on the wire and skipped or lost frames
    leave gaps of several frame times, so the rate is the number of the shortest gaps
    that fit in the whole span, over the span; within 1 % of a whole number it is that."""
    times = sorted({r.capture_time for r in records})
    gaps = [b - a for a, b in zip(times, times[1:], strict=False) if b - a >= 0.001]
    if not gaps:
        return None
    span = times[-1] - times[0]
    fps = round(span / min(gaps)) / span
    return float(round(fps)) if abs(fps - round(fps)) < 0.01 * fps else fps


def on_timeline(records: dict[int, FrameRecord], fps: float) -> list[np.ndarray]:
    """The pictures at ``fps`` on the capture timeline, from the first frame received:
    each frame takes the slot of its capture time, and a slot no frame took (a frame
    skipped, lost, or not sent) repeats the picture before it, so the video lasts as long
    as the capture did."""
    shown = [r for r in records.values() if r.image is not None]
    if not shown:
        return []
    start = min(r.capture_time for r in shown)
    slots: dict[int, np.ndarray] = {}
    for r in sorted(shown, key=lambda r: r.capture_time):
        slots[round((r.capture_time - start) * fps)] = r.image
    out = [slots[0]]
    for slot in range(1, max(slots) + 1):
        out.append(slots.get(slot, out[-1]))
    return out
