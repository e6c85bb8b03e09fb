"""The scales a live sender codes its predicted frames at, by the time it has.

A predicted frame at ``FINE`` shows more than one at full size (0.4-0.7 dB on a 768x512
clip) but takes about ``FINE_COST`` times as long to plan, code and decode, on both
ends. A live sender that cannot code a frame in its interval skips the frames whose
slots pass meanwhile, so it codes ``FINE`` only while such a frame fits the interval
and ``LIVE_SCALES`` otherwise. It starts below ``FINE``, the cheap way, and goes up as
soon as its own timings say that ``FINE`` would keep up. Sans-I/O: the sender gives it
the seconds each predicted frame took.
"""

from __future__ import annotations

from dataclasses import dataclass

from hfstream.geometry import FINE, SCALES, Scale
from hfstream.planning.temporal import LIVE_SCALES

#: A fast predicted frame's seconds at ``FINE`` against at full size (768x512, one
#: thread: 1.37-1.73 s against 0.64-0.74 s to plan and code, 0.57-0.65 s against
#: 0.16-0.23 s to decode; docs/notebook/video.md).
FINE_COST = 2.5


@dataclass
class LiveScales:
    """The newest predicted frame's seconds and scale, and the scales of the next."""

    last: tuple[float, Scale] | None = None

    def scales(self, interval_s: float) -> tuple[Scale, ...]:
        """The scales the next predicted frame may be coded at, for a frame every
        ``interval_s`` seconds."""
        if self.last is None:
            return LIVE_SCALES
        seconds, scale = self.last
        at_fine = seconds if scale == FINE else seconds * FINE_COST
        return SCALES if at_fine <= interval_s else LIVE_SCALES

    def coded(self, seconds: float, scale: Scale) -> None:
        """A predicted frame at ``scale`` took ``seconds`` to code (the sender's own
        decode of it runs beside the next frame's coding)."""
        self.last = (seconds, scale)
