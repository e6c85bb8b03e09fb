"""Short clips with known motion, made from still photos, and windows of real clips: the
sequences that the temporal stage's data is coded from.

A photo becomes a clip by moving a window over it: a pan at a steady speed, a slow zoom,
a slow rotation and a change of exposure, each frame drawn with a bicubic affine warp (so
the motion is sub-pixel, as a camera's is). Half the clips also carry a second photo's
crop moving across the frame on its own path (an object in front of the background).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from hfstream.media.images import list_images
from hfstream.media.video import read_frames


def _affine(
    center: tuple[float, float], zoom: float, angle: float, size: tuple[int, int]
) -> tuple[float, ...]:
    """PIL's inverse affine map: output pixel -> photo pixel, for a window of ``size``
    (w, h) centred on ``center``, ``zoom`` photo pixels per output pixel, turned by
    ``angle`` radians."""
    w, h = size
    c, s = math.cos(angle) * zoom, math.sin(angle) * zoom
    cx, cy = center
    return (c, -s, cx - c * w / 2 + s * h / 2, s, c, cy - s * w / 2 - c * h / 2)


def photo_clip(
    photo: Image.Image,
    overlay: Image.Image | None,
    *,
    frames: int,
    size: tuple[int, int],
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """``frames`` frames of ``size`` (w, h), HxWx3 uint8, moving over ``photo``."""
    w, h = size
    pw, ph = photo.size
    zoom = float(rng.uniform(0.6, 1.0)) * min(pw / (w * 1.3), ph / (h * 1.3), 1.6)
    speed = rng.normal(0.0, 5.0, 2)  # output pixels a frame
    zoom_rate = float(rng.uniform(-0.015, 0.015))
    spin = float(rng.uniform(-0.01, 0.01))
    gain_rate = float(rng.uniform(-0.03, 0.03))
    cx, cy = pw / 2 + rng.uniform(-0.1, 0.1) * pw, ph / 2 + rng.uniform(-0.1, 0.1) * ph
    angle, gain = 0.0, 1.0
    side = int(min(w, h) * rng.uniform(0.25, 0.5))
    patch = None if overlay is None else overlay.resize((side, side), Image.Resampling.BICUBIC)
    ox, oy = rng.uniform(0, w - side), rng.uniform(0, h - side)
    ov = rng.normal(0.0, 8.0, 2)
    out = []
    for _ in range(frames):
        frame = photo.transform(
            (w, h),
            Image.Transform.AFFINE,
            _affine((cx, cy), zoom, angle, (w, h)),
            resample=Image.Resampling.BICUBIC,
        )
        if patch is not None:
            frame.paste(patch, (int(ox), int(oy)))
        pixels = np.asarray(frame, np.float32) * gain
        out.append(np.clip(pixels + 0.5, 0, 255).astype(np.uint8))
        cx += speed[0] * zoom
        cy += speed[1] * zoom
        zoom *= 1 + zoom_rate
        angle += spin
        gain *= 1 + gain_rate
        ox = float(np.clip(ox + ov[0], 0, w - side))
        oy = float(np.clip(oy + ov[1], 0, h - side))
    return out


def photo_clips(
    folder: str | Path, *, count: int, frames: int, size: tuple[int, int], seed: int
) -> Iterator[list[np.ndarray]]:
    """``count`` clips from random photos of ``folder``."""
    rng = np.random.default_rng(seed)
    paths = list_images(folder)
    if not paths:
        raise FileNotFoundError(f"no image in {folder}")
    for _ in range(count):
        with Image.open(paths[rng.integers(len(paths))]) as im:
            photo = im.convert("RGB")
        overlay = None
        if rng.random() < 0.5:
            with Image.open(paths[rng.integers(len(paths))]) as im:
                overlay = im.convert("RGB")
        yield photo_clip(photo, overlay, frames=frames, size=size, rng=rng)


def video_windows(
    path: str | Path, *, count: int, frames: int, size: tuple[int, int], seed: int
) -> Iterator[list[np.ndarray]]:
    """``count`` runs of ``frames`` consecutive frames of the clip at ``path``, each cut to
    a random window of ``size`` (w, h) (the whole frame where it is smaller)."""
    rng = np.random.default_rng(seed)
    clip = list(read_frames(path))
    if len(clip) < frames:
        raise ValueError(f"{path} has {len(clip)} frames, fewer than {frames}")
    w, h = size
    for _ in range(count):
        start = int(rng.integers(0, len(clip) - frames + 1))
        height, width = clip[0].shape[:2]
        y = int(rng.integers(0, max(1, height - h + 1)))
        x = int(rng.integers(0, max(1, width - w + 1)))
        yield [np.ascontiguousarray(f[y : y + h, x : x + w]) for f in clip[start : start + frames]]
