"""The pictures both ends keep for predicted frames (``hfstream.codec.temporal``), sans-I/O.

The sender keeps the picture each frame it sent shows when it arrives whole
(``SentPictures``); the receiver keeps the pictures of the frames it decoded complete
and lists them in its reports (``DecodedPictures``, ``ReportBuilder.decoded``).
The sender predicts each frame from the newest acknowledged frame it still holds, so a
lost packet can only spoil the frames sent before its loss was known: no key-frame round
trip is needed, and no picture is ever predicted from one the receiver does not have.

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
    """The receiver's side: the pictures of the newest frames decoded complete."""

    def __init__(self, keep: int = KEPT_PICTURES) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.keep = keep
        self._pictures: OrderedDict[int, np.ndarray] = OrderedDict()

    def add(self, frame_id: int, picture: np.ndarray) -> None:
        self._pictures[frame_id] = picture
        self._pictures.move_to_end(frame_id)
        while len(self._pictures) > self.keep:
            self._pictures.popitem(last=False)

    def get(self, frame_id: int) -> np.ndarray | None:
        return self._pictures.get(frame_id)

    def matching(self, frame_id: int, size: tuple[int, int]) -> np.ndarray | None:
        """The picture of ``frame_id`` if it is held and ``size`` (height, width): what a
        frame of that size may be predicted from."""
        picture = self._pictures.get(frame_id)
        return picture if picture is not None and picture.shape[:2] == size else None

    def __len__(self) -> int:
        return len(self._pictures)

    def ids(self) -> list[int]:
        """The frames held, oldest first (what a report acknowledges)."""
        return list(self._pictures)


class SentPictures:
    """The sender's side: the picture each recent frame shows when it arrives whole, and
    which frames the receiver acknowledged."""

    def __init__(self, window: int = REFERENCE_WINDOW) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self.window = window
        self._pictures: OrderedDict[int, np.ndarray] = OrderedDict()
        self._acknowledged: set[int] = set()
        self._errors: dict[int, float] = {}
        self._newest: int | None = None

    def sent(self, frame_id: int, picture: np.ndarray, *, error: float = 0.0) -> None:
        """Frame ``frame_id`` went out; ``picture`` is what it shows when whole, with
        ``error`` (mean squared, any scale) against the frame it codes."""
        self._newest = frame_id
        self._errors[frame_id] = error
        self._pictures[frame_id] = picture
        self._pictures.move_to_end(frame_id)
        while len(self._pictures) > self.window:
            old, _ = self._pictures.popitem(last=False)
            self._acknowledged.discard(old)
            self._errors.pop(old, None)

    def acknowledge(self, frame_ids: Iterable[int]) -> None:
        """The frames the newest report says the receiver decoded complete. They replace
        the earlier ones: a report lists every frame its receiver still holds, and a
        restarted receiver's lists none of the frames the one before it held."""
        self._acknowledged = {f for f in frame_ids if f in self._pictures}

    def reference(self) -> tuple[int, np.ndarray] | None:
        """(frame id, picture) of the acknowledged frame within the window to predict
        the next frame from (``choose_reference``); None when there is none: the next
        frame is intra."""
        if self._newest is None or not self._acknowledged:
            return None
        newest = self._newest
        held = [f for f in self._acknowledged if frames_back(newest, f) < self.window]
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
