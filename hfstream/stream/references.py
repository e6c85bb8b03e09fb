"""The pictures both ends keep for predicted frames (``hfstream.codec.temporal``), sans-I/O.

The sender keeps the picture each frame it sent shows when it arrives whole
(``SentPictures``); the receiver keeps the pictures of the frames it decoded complete
and lists them in its reports (``DecodedPictures``, ``ReportBuilder.decoded``).
The sender predicts each frame from the newest acknowledged frame it still holds, or,
with ``in_flight_s``, from a newer frame still in flight: one sent less than
``in_flight_s`` ago whose own reference is acknowledged or, in turn, in flight. A lost
packet can then only spoil the frames sent before its loss was known (a frame whose
acknowledgement is overdue ends its chain): no key-frame round trip is needed. Predicting
from the frame just sent instead of one a round trip back makes a predicted frame code
one frame's motion, not several (+0.8 dB on bikes.mp4 at 10 fps and a 100 ms round trip,
docs/notebook/video.md); a frame whose reference the receiver does not hold exactly is
shown from the picture it has and never acknowledged.

Frame ids are compared by their distance back from the newest one (modulo 2**32), so a
stream may run past the id's wrap.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import numpy as np

#: Frames a reference may be behind the frame predicted from it: an acknowledgement
#: older than that (a long outage) leaves the sender without a reference, and it codes an
#: intra frame.
REFERENCE_WINDOW = 16
#: Acknowledged pictures the sender weighs as the reference of a frame (the newest
#: ones): with acknowledgements two frames late, frames predicted from the newest would
#: form two chains that never meet, one of them stuck with a poorer start (the second
#: intra frame, sent before any acknowledgement, gets a smaller budget than the first).
#: Two, so that the receiver still holds the older one when the frame arrives (it keeps
#: ``KEPT_PICTURES`` and may decode two more meanwhile).
REFERENCE_CANDIDATES = 2
#: An older candidate is chosen over the newest only when its own error (against the
#: frame it showed) is this many times lower: the newer picture is closer in content.
BETTER_BY = 2.0
#: In-flight references only while the loss the planner expects is below this: above
#: it, a frame in flight is lost so often that the frames predicted from it are spoiled
#: more than predicting from one frame back gains (bikes.mp4 at 40 %: -0.9 dB Bernoulli,
#: -2.8 dB Gilbert; at 10-30 % -0.2 to +1.5 dB, docs/notebook/video.md).
IN_FLIGHT_MAX_LOSS = 0.35
#: Pictures a receiver keeps (the newest frames decoded complete; at most 50 MB at the
#: largest frame a receiver takes, 2048 x 2048). Its reports list them: the sender
#: predicts from the newest, a frame or two behind what it sends.
KEPT_PICTURES = 4


def shown_error(image: np.ndarray, picture: np.ndarray) -> float:
    """Mean squared error (pixels in [0, 1]) of ``picture`` against ``image``, every
    other pixel each way: how well a sent picture shows its frame."""
    a = image[::2, ::2].astype(np.float32)
    b = picture[::2, ::2].astype(np.float32)
    return float(np.mean(((a - b) / 255) ** 2))


def frames_back(newer: int, older: int) -> int:
    """How many frame ids ``older`` is behind ``newer`` (modulo 2**32)."""
    return (newer - older) & 0xFFFFFFFF


class DecodedPictures:
    """The receiver's side: the pictures of the newest frames decoded complete (exact:
    the sender holds the same), and of the newest frames shown otherwise (a frame predicted
    from one of those is shown from it, and is not exact either)."""

    def __init__(self, keep: int = KEPT_PICTURES) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.keep = keep
        self._pictures: OrderedDict[int, np.ndarray] = OrderedDict()
        self._inexact: OrderedDict[int, np.ndarray] = OrderedDict()

    def add(self, frame_id: int, picture: np.ndarray, *, exact: bool = True) -> None:
        """``picture`` shows ``frame_id``; ``exact``: decoded complete from an exact
        reference (what a report acknowledges)."""
        held = self._pictures if exact else self._inexact
        if exact:
            self._inexact.pop(frame_id, None)
        elif frame_id in self._pictures:
            return  # an exact picture of it is held already
        held[frame_id] = picture
        held.move_to_end(frame_id)
        while len(held) > self.keep:
            held.popitem(last=False)

    def get(self, frame_id: int) -> np.ndarray | None:
        return self._pictures.get(frame_id)

    def matching(self, frame_id: int, size: tuple[int, int]) -> np.ndarray | None:
        """The exact picture of ``frame_id`` if it is held and ``size`` (height, width):
        what a frame of that size is predicted from."""
        picture = self._pictures.get(frame_id)
        return picture if picture is not None and picture.shape[:2] == size else None

    def for_reference(self, frame_id: int, size: tuple[int, int]) -> tuple[np.ndarray | None, bool]:
        """(the picture to decode a frame of ``size`` predicted from ``frame_id`` against,
        whether it is exact): the exact picture, else the one shown of it, else the
        newest one shown of that size (None: none)."""
        exact = self.matching(frame_id, size)
        if exact is not None:
            return exact, True
        shown = self._inexact.get(frame_id)
        if shown is not None and shown.shape[:2] == size:
            return shown, False
        newest = [*self._pictures.items(), *self._inexact.items()]
        for _, picture in sorted(newest, key=lambda kv: frames_back(frame_id, kv[0])):
            if picture.shape[:2] == size:
                return picture, False
        return None, False

    def __len__(self) -> int:
        return len(self._pictures)

    def ids(self) -> list[int]:
        """The frames held exactly, oldest first (what a report acknowledges)."""
        return list(self._pictures)


class SentPictures:
    """The sender's side: the picture each recent frame shows when it arrives whole, and
    which frames the receiver acknowledged."""

    def __init__(self, window: int = REFERENCE_WINDOW, *, in_flight_s: float = 0.0) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        if not in_flight_s >= 0:
            raise ValueError(f"in_flight_s must be at least 0, got {in_flight_s}")
        self.window = window
        self.in_flight_s = in_flight_s
        self._pictures: OrderedDict[int, np.ndarray] = OrderedDict()
        self._acknowledged: set[int] = set()
        self._errors: dict[int, float] = {}
        self._sent_at: dict[int, float] = {}
        self._reference_of: dict[int, int | None] = {}
        self._newest: int | None = None

    def sent(
        self,
        frame_id: int,
        picture: np.ndarray,
        *,
        error: float = 0.0,
        reference: int | None = None,
        now: float = 0.0,
    ) -> None:
        """Frame ``frame_id`` went out at ``now`` (seconds, any clock the caller keeps),
        predicted from ``reference`` (None: intra); ``picture`` is what it shows when
        whole, with ``error`` (mean squared, any scale) against the frame it codes."""
        self._newest = frame_id
        self._errors[frame_id] = error
        self._sent_at[frame_id] = now
        self._reference_of[frame_id] = reference
        self._pictures[frame_id] = picture
        self._pictures.move_to_end(frame_id)
        while len(self._pictures) > self.window:
            old, _ = self._pictures.popitem(last=False)
            self._acknowledged.discard(old)
            self._errors.pop(old, None)
            self._sent_at.pop(old, None)
            self._reference_of.pop(old, None)

    def acknowledge(self, frame_ids: Iterable[int]) -> None:
        """The frames the newest report says the receiver decoded complete. They replace
        the earlier ones: a report lists every frame its receiver still holds, and a
        restarted receiver's lists none of the frames the one before it held. A frame
        acknowledged before its picture is ``sent`` here (a sender that keeps its
        pictures after their packets left) counts once it is (a report holds at most
        ``feedback.MAX_DECODED`` ids)."""
        self._acknowledged = set(frame_ids)

    def trusted(self, frame_id: int, now: float) -> bool:
        """Whether a frame may be predicted from ``frame_id`` at ``now``: it is
        acknowledged, or in flight (sent less than ``in_flight_s`` ago) with a trusted
        reference of its own (or none: an intra frame)."""
        seen: set[int] = set()
        frame: int | None = frame_id
        while frame is not None and frame in self._pictures and frame not in seen:
            if frame in self._acknowledged:
                return True
            if now - self._sent_at[frame] >= self.in_flight_s:
                return False  # its acknowledgement is overdue: taken as lost
            seen.add(frame)
            frame = self._reference_of[frame]
            if frame is None:
                return True  # an intra frame in flight
        return False  # its chain leaves the pictures held

    def reference(
        self,
        now: float = 0.0,
        *,
        loss: float = 0.0,
        size: tuple[int, int] | None = None,
    ) -> tuple[int, np.ndarray] | None:
        """(frame id, picture) of the frame within the window to predict the next frame
        from at ``now`` (``choose_reference`` of the ``trusted`` ones, of ``size``
        (height, width) if given) for a channel that loses ``loss`` of the packets (in
        flight only below ``IN_FLIGHT_MAX_LOSS``); None when there is none: the next
        frame is intra."""
        if self._newest is None:
            return None
        newest = self._newest
        in_flight = self.in_flight_s > 0 and loss < IN_FLIGHT_MAX_LOSS
        held = [
            f
            for f in self._pictures
            if (in_flight or f in self._acknowledged)
            if frames_back(newest, f) < self.window
            and (size is None or self._pictures[f].shape[:2] == size)
            and self.trusted(f, now)
        ]
        if not held:
            return None
        best = choose_reference({f: self._errors[f] for f in held}, newest=newest)
        return best, self._pictures[best]


def choose_reference(errors: dict[int, float], *, newest: int | None = None) -> int:
    """Of the frames in ``errors`` (id -> its picture's error against the frame it
    showed), the one to predict from: the newest (ids counted back from ``newest``,
    default the highest), unless one of the ``REFERENCE_CANDIDATES`` newest is
    ``BETTER_BY`` times better."""
    top = max(errors) if newest is None else newest
    order = sorted(errors, key=lambda f: frames_back(top, f))[:REFERENCE_CANDIDATES]
    best = min(order, key=errors.__getitem__)
    return best if errors[best] * BETTER_BY < errors[order[0]] else order[0]
