"""Video frames in and out through PyAV, and a generated test pattern.

``read_frames`` decodes any file FFmpeg reads into H x W x 3 uint8 frames;
``pattern_frames`` makes a moving synthetic sequence when no file is given;
``VideoWriter`` encodes received frames (H.264 by default) to a file.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from hfstream.extras import require


def read_frames(path: str | Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    av = require("av", purpose="reading video")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:
        raise ValueError(f"cannot open video {path}: {e}") from None
    with container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        for i, frame in enumerate(container.decode(video=0)):
            if max_frames is not None and i >= max_frames:
                return
            yield frame.to_ndarray(format="rgb24")


def video_fps(path: str | Path) -> float:
    av = require("av", purpose="reading video")
    with av.open(str(path)) as c:
        rate = c.streams.video[0].average_rate
        return float(rate) if rate else 25.0


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
