"""VMAF through imageio-ffmpeg's FFmpeg: on small synthetic frames, a faithful copy scores
high and a blurred, noisy one clearly lower."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from hfstream.eval.vmaf import Vmaf, vmaf


def moving_gradient(frames: int, height: int, width: int) -> list[np.ndarray]:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    out = []
    for t in range(frames):
        r = 127 + 100 * np.sin((xx + 4 * t) / 9.0)
        g = 127 + 100 * np.cos((yy - 3 * t) / 7.0)
        b = 127 + 60 * np.sin((xx + yy) / 5.0 + t / 3.0)
        out.append(np.stack([r, g, b], axis=-1).round().astype(np.uint8))
    return out


def damaged(frame: np.ndarray, seed: int) -> np.ndarray:
    blurred = np.asarray(Image.fromarray(frame).filter(ImageFilter.GaussianBlur(3)))
    noise = np.random.default_rng(seed).normal(0, 25, frame.shape)
    return np.clip(blurred + noise, 0, 255).astype(np.uint8)


def test_identical_frames_score_high_and_damaged_ones_clearly_lower() -> None:
    clip = moving_gradient(4, 64, 96)
    same = vmaf(clip, clip)
    assert isinstance(same, Vmaf) and len(same.frames) == 4
    assert same.mean > 90 and same.mean == pytest.approx(np.mean(same.frames))
    worse = vmaf(clip, [damaged(f, i) for i, f in enumerate(clip)])
    assert worse.mean < same.mean - 20
    assert all(w < s for w, s in zip(worse.frames, same.frames, strict=True))


def test_one_picture_and_odd_sizes() -> None:
    picture = moving_gradient(1, 37, 51)[0]  # odd on both sides: padded to 38x52
    assert vmaf(picture, picture).frames[0] > 90
    assert vmaf(picture, damaged(picture, 0)).mean < 60


@pytest.mark.parametrize(
    ("ref", "test", "message"),
    [
        (np.zeros((32, 32, 3), np.uint8), np.zeros((32, 34, 3), np.uint8), "reference frames"),
        ([np.zeros((32, 32, 3), np.uint8)] * 2, [np.zeros((32, 32, 3), np.uint8)], "2 frames"),
        (np.zeros((16, 32, 3), np.uint8), np.zeros((16, 32, 3), np.uint8), "at least 18x18"),
        (np.zeros((32, 32, 3)), np.zeros((32, 32, 3)), "should be uint8 HxWx3"),
        ([], [], "has no frames"),
    ],
)
def test_bad_input_is_refused_with_one_line(ref, test, message) -> None:
    with pytest.raises(ValueError, match=message):
        vmaf(ref, test)


def test_an_ffmpeg_without_libvmaf_is_named(monkeypatch) -> None:
    import imageio_ffmpeg

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", lambda: "/bin/true")
    frame = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(RuntimeError, match="/bin/true has no libvmaf filter"):
        vmaf(frame, frame)
