"""Video frames in and out through PyAV, and a generated test pattern.

``read_frames`` decodes any file FFmpeg reads into H x W x 3 uint8 frames;
``pattern_frames`` makes a moving synthetic sequence when no file is given;
``VideoWriter`` encodes received frames (H.264 by default) to a file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import numpy as np

from hfstream.extras import require

T = TypeVar("T")


def read_frames(path: str | Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    for _, frame in timed_frames(path, max_frames):
        yield frame


def timed_frames(
    path: str | Path, max_frames: int | None = None
) -> Iterator[tuple[float, np.ndarray]]:
    """``path``'s frames with their presentation times in seconds (from the first frame's)."""
    av = require("av", purpose="reading video")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:
        raise ValueError(f"cannot open video {path}: {e.strerror or e}") from None
    with container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        stream = container.streams.video[0]
        rate = float(stream.average_rate or 25.0)
        start = None
        for i, frame in enumerate(container.decode(stream)):
            if max_frames is not None and i >= max_frames:
                return
            t = frame.time if frame.time is not None else i / rate
            start = t if start is None else start
            yield t - start, frame.to_ndarray(format="rgb24")


def video_fps(path: str | Path) -> float:
    av = require("av", purpose="reading video")
    with av.open(str(path)) as c:
        rate = c.streams.video[0].average_rate
        return float(rate) if rate else 25.0


def sample_frames(frames: Iterable[tuple[float, T]], fps: float) -> Iterator[T]:
    """At most one frame per ``1 / fps`` seconds of the source's own times: for each slot
    the first frame at or after its start, the frames between dropped. A clip faster than
    ``fps`` is sampled, not slowed down; a slower one keeps every frame."""
    slot = 1.0 / fps
    due = None  # the next slot's start
    for t, frame in frames:
        if due is not None and t < due - 1e-6:
            continue
        yield frame
        due = (math.floor(t / slot + 1e-6) + 1) * slot


def pattern_frames(frames: int = 30, height: int = 256, width: int = 384) -> Iterator[np.ndarray]:
    """Moving colour gradients, a sliding disc and fine stripes: smooth areas, edges and
    texture, all of which move, so every frame differs."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for t in range(frames):
        r = 127 + 100 * np.sin((xx + 4 * t) / 40.0)
        g = 127 + 100 * np.cos((yy - 3 * t) / 33.0)
        b = 127 + 60 * np.sin((xx + yy) / 25.0 + t / 5.0)
        img = np.stack([r, g, b], axis=-1)
        cx, cy = (40 + 8 * t) % width, height / 2 + 50 * np.sin(t / 6.0)
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 < 35**2
        img[disc] = (235, 200, 40)
        stripes = (yy > height - 60) & ((xx + 2 * t) % 8 < 4)
        img[stripes] = (20, 20, 20)
        yield np.clip(img, 0, 255).astype(np.uint8)


class VideoWriter:
    """Encode frames to a video file; sizes are padded to even numbers for yuv420p."""

    def __init__(self, path: str | Path, fps: float, codec: str = "libx264") -> None:
        self._av = av = require("av", purpose="writing video")
        self.container = av.open(str(path), mode="w")
        self.stream = self.container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        self.stream.pix_fmt = "yuv420p"
        self._size: tuple[int, int] | None = None

    def write(self, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        if self._size is None:
            self._size = (h + h % 2, w + w % 2)
            self.stream.height, self.stream.width = self._size
        ph, pw = self._size
        if (h, w) != (ph, pw):
            image = np.pad(image, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")[:ph, :pw]
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
