"""What the receiver decodes next: the decode policy, sans I/O.

Everything that decides which frame the receiver decodes, which it gives up and when lives
here; the asyncio ``Receiver`` only feeds it and runs the decodes it hands out. Nothing
here touches a clock or the event loop: time comes in as ``now``.

The rules:

- Frames with data not decoded yet wait in a bounded queue (``queue_size``). A frame
  already waiting is not queued twice: the data it gets meanwhile joins its next decode.
- When the queue is full, the frame whose first packet came earliest gives way (the
  waiting one, or the new one if it is no newer): under overload the newest frames win.
  Counted in ``decodes_skipped`` (a frame may give way more than once).
- In order (``live=False``): the decoder takes the frames in the order they were queued.
- Live (``live=True``): the decoder takes the newest frame only (frame ids are serial
  numbers modulo 2**32) and skips every other waiting one. A frame older than the newest
  frame shown is skipped too, when it is queued or when it would be decoded: no frame is
  ever shown after a newer one. Skipped frames that were never shown are counted in
  ``frames_skipped`` and recorded (the newest 1024, with the session each belonged to).
- Live: an incomplete newest frame waits ``settle_s`` after its first packet for the rest
  of its packets, so that one decode (most of a frame's cost at the receiver) is not spent
  on a part of it; a complete frame, or any frame once the input has ended, waits for
  nothing.

    scheduler = DecodeScheduler(queue_size=32, live=True, settle_s=0.1)
    scheduler.add(frame)                    # -> [Queued(7)], [Skipped(3)], [Evicted(2), ...]
    skipped, decision = scheduler.next(now) # Decode(frame) | Wait(until) | Idle() | Ended()
    scheduler.shown(frame_id)               # a picture of it went to the consumer
    scheduler.decode_done(frame_id)         # the decode ``next`` handed out is over
    scheduler.finished(frame_id)            # no more pictures of it
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

from hfstream.protocol.reassembly import FrameState

SKIPPED_KEPT = 1024  # skipped frames whose ids are kept (``skipped``)


def newer(a: int, b: int) -> bool:
    """Frame ``a`` comes after ``b``: frame ids are serial numbers modulo 2**32."""
    return 0 < (a - b) & 0xFFFFFFFF < 1 << 31


# ---------------------------------------------------------------- what ``add`` reports
@dataclass(frozen=True)
class Queued:
    """The frame joined the queue: a decode of it will be handed out."""

    frame_id: int


@dataclass(frozen=True)
class Skipped:
    """Live: a newer frame won; this frame gets no (further) picture."""

    frame_id: int


@dataclass(frozen=True)
class Evicted:
    """The queue was full: this frame's waiting decode was given up (it may be queued
    again when more of its data comes)."""

    frame_id: int


# ---------------------------------------------------------------- what ``next`` decides
@dataclass(frozen=True)
class Decode:
    """Decode this frame now; it has left the queue and is the active decode until
    ``decode_done``."""

    frame: FrameState


@dataclass(frozen=True)
class Wait:
    """Live: the newest frame is settling. Ask again at ``until`` (the receiver's clock),
    or sooner when more data comes."""

    until: float


@dataclass(frozen=True)
class Idle:
    """Nothing to decode until more data comes."""


@dataclass(frozen=True)
class Ended:
    """The input has ended and every decode is done: no picture will follow."""


Decision = Decode | Wait | Idle | Ended


class DecodeScheduler:
    """The decode queue and the live policy (module docstring). Every container is
    bounded: the queue by ``queue_size``, the shown marks by the frames the receiver holds
    (``finished`` drops a frame's), the skipped record by ``SKIPPED_KEPT``."""

    def __init__(self, *, queue_size: int, live: bool = False, settle_s: float = 0.0) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}")
        if not settle_s >= 0:
            raise ValueError(f"settle_s must be at least 0, got {settle_s}")
        self.queue_size = queue_size
        self.live = live
        self.settle_s = settle_s
        # Waiting frames in the order they were queued (the in-order decode order).
        self._pending: OrderedDict[int, FrameState] = OrderedDict()
        self.active: int | None = None  # the frame being decoded
        self.newest_shown: int | None = None  # live: older frames are never shown
        self._shown: set[int] = set()  # frames with a picture, until ``finished``
        self.input_ended = False
        self.session_id = 0  # recorded with each skipped frame
        self.decodes_skipped = 0  # decodes given up in a full queue (a frame may be twice)
        self.frames_shown = 0  # frames with at least one picture
        self.frames_skipped = 0  # live: frames with data never shown, a newer one won
        self.skipped: deque[tuple[int, int]] = deque(maxlen=SKIPPED_KEPT)  # (session, id)

    # ------------------------------------------------------------ questions
    def __len__(self) -> int:
        """Frames waiting for a decode."""
        return len(self._pending)

    def __contains__(self, frame_id: object) -> bool:
        """``frame_id`` is waiting for a decode."""
        return frame_id in self._pending

    def holds(self, frame_id: int) -> bool:
        """``frame_id`` is waiting or being decoded: its decode state is still needed."""
        return frame_id in self._pending or frame_id == self.active

    @property
    def idle(self) -> bool:
        """No decode running or waiting."""
        return self.active is None and not self._pending

    def stale(self, frame_id: int) -> bool:
        """Older than the newest frame shown."""
        return self.newest_shown is not None and newer(self.newest_shown, frame_id)

    # ------------------------------------------------------------ input
    def add(self, frame: FrameState) -> list[Queued | Skipped | Evicted]:
        """``frame`` has data not decoded yet. Returns what became of it (and of the
        frame it displaced): the receiver finishes a ``Skipped`` frame and drops an
        ``Evicted`` frame's decode state if nothing else holds it."""
        frame_id = frame.frame_id
        if frame_id in self._pending:
            return []  # its next decode takes the new data too
        if self.live and self.stale(frame_id):
            return [self._skip(frame_id)]
        out: list[Queued | Skipped | Evicted] = []
        if len(self._pending) >= self.queue_size:
            # Full: the earliest opened of the waiting frames and this one gives way.
            oldest = min(self._pending.values(), key=lambda f: f.opened_at)
            self.decodes_skipped += 1
            if frame.opened_at <= oldest.opened_at:
                return [Evicted(frame_id)]
            del self._pending[oldest.frame_id]
            out.append(Evicted(oldest.frame_id))
        self._pending[frame_id] = frame
        out.append(Queued(frame_id))
        return out

    def new_session(self, session_id: int) -> None:
        """A new sender session: its frame ids start over, so its frame 0 is not stale."""
        self.session_id = session_id
        self.newest_shown = None

    def end_of_input(self) -> None:
        """No more data will come: settling frames wait no longer, and once the queue is
        empty ``next`` says ``Ended``."""
        self.input_ended = True

    # ------------------------------------------------------------ decoding
    def next(self, now: float) -> tuple[list[Skipped], Decision]:
        """The frames given up now (live: every waiting frame but the newest) and what to
        do: decode a frame, wait for the newest to settle, or nothing."""
        assert self.active is None, f"frame {self.active} is still being decoded"
        if not self._pending:
            return [], Ended() if self.input_ended else Idle()
        if not self.live:
            _, frame = self._pending.popitem(last=False)
            self.active = frame.frame_id
            return [], Decode(frame)
        newest = next(iter(self._pending))
        for frame_id in self._pending:
            if newer(frame_id, newest):
                newest = frame_id
        # A frame that became stale while waiting (a newer one was shown meanwhile) goes
        # as well: no frame is shown after a newer one.
        skipped = [self._skip(f) for f in list(self._pending) if f != newest or self.stale(newest)]
        if newest not in self._pending:
            return skipped, Ended() if self.input_ended else Idle()
        frame = self._pending[newest]
        until = frame.opened_at + self.settle_s
        if not (frame.complete or until <= now or self.input_ended):
            return skipped, Wait(until)
        del self._pending[newest]
        self.active = newest
        return skipped, Decode(frame)

    def shown(self, frame_id: int) -> None:
        """A picture of ``frame_id`` went to the consumer."""
        if frame_id not in self._shown:
            self._shown.add(frame_id)
            self.frames_shown += 1
        if not self.stale(frame_id):
            self.newest_shown = frame_id

    def decode_done(self, frame_id: int) -> None:
        """The decode ``next`` handed out has ended (the frame may be waiting again, with
        data that came during the decode)."""
        assert self.active == frame_id, f"frame {frame_id} is not being decoded"
        self.active = None

    def finished(self, frame_id: int) -> None:
        """No more pictures of ``frame_id``: it leaves the queue and the shown marks."""
        self._pending.pop(frame_id, None)
        self._shown.discard(frame_id)

    # ------------------------------------------------------------ the skipped record
    def skipped_in(self, session_id: int) -> list[int]:
        """The ids of the skipped frames (of the newest ``SKIPPED_KEPT``) of one session:
        streams that follow each other can overlap, and both number their frames from 0."""
        return [frame_id for s, frame_id in self.skipped if s == session_id]

    def _skip(self, frame_id: int) -> Skipped:
        self._pending.pop(frame_id, None)
        if frame_id not in self._shown:
            self.frames_skipped += 1
            self.skipped.append((self.session_id, frame_id))
        return Skipped(frame_id)
