"""VMAF (Netflix libvmaf, its built-in ``vmaf_v0.6.1`` model) of a clip against its reference.

The score comes from the ``libvmaf`` filter of the static FFmpeg that the ``imageio-ffmpeg``
package ships (``imageio_ffmpeg.get_ffmpeg_exe()``), so nothing beyond a pip install is
needed. Both clips go to FFmpeg as raw rgb24 files, are converted to yuv420p there (BT.601,
as FFmpeg's ``format`` filter does by default) and compared frame by frame. VMAF runs from
0 to 100, higher is better; its motion feature looks at the reference's previous frame,
so the first frame of a clip (and a lone picture) is scored without motion.
"""

from __future__ import annotations

import functools
import json
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hfstream.extras import require

# libvmaf (in the FFmpeg of imageio-ffmpeg 0.8) crashes on frames under 18 px a side.
MIN_SIDE = 18


@dataclass(frozen=True)
class Vmaf:
    """VMAF of a test clip against its reference: one score per frame, and their mean."""

    frames: list[float]
    mean: float


def ffmpeg_with_libvmaf() -> str:
    """The path of imageio-ffmpeg's FFmpeg, or ``RuntimeError`` if it has no libvmaf."""
    exe = require("imageio_ffmpeg", purpose="VMAF").get_ffmpeg_exe()
    if not _has_libvmaf(exe):
        raise RuntimeError(f"{exe} has no libvmaf filter: VMAF needs an FFmpeg built with it")
    return exe


@functools.cache
def _has_libvmaf(exe: str) -> bool:
    out = subprocess.run(
        [exe, "-hide_banner", "-filters"], capture_output=True, text=True, check=False
    ).stdout
    return any(line.split()[1:2] == ["libvmaf"] for line in out.splitlines())


def _as_clip(frames: np.ndarray | Sequence[np.ndarray], name: str) -> list[np.ndarray]:
    clip = [frames] if isinstance(frames, np.ndarray) and frames.ndim == 3 else list(frames)
    if not clip:
        raise ValueError(f"the {name} clip has no frames")
    shape = clip[0].shape
    for i, f in enumerate(clip):
        if f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
            raise ValueError(f"{name} frame {i} is {f.dtype} {f.shape}, should be uint8 HxWx3")
        if f.shape != shape:
            raise ValueError(f"{name} frame {i} is {f.shape}, frame 0 is {shape}")
    return clip


def _even(frame: np.ndarray) -> np.ndarray:
    """``frame`` with its last row and column repeated where a side is odd (yuv420p
    halves the chroma)."""
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def vmaf(
    reference: np.ndarray | Sequence[np.ndarray],
    test: np.ndarray | Sequence[np.ndarray],
    *,
    threads: int = 1,
) -> Vmaf:
    """VMAF of ``test`` against ``reference``: two clips of as many H x W x 3 uint8 frames,
    or two pictures. All frames must be the same size, at least 18 px a side. An odd side
    is padded to even by repeating the last row or column, in both clips alike."""
    ref, dist = _as_clip(reference, "reference"), _as_clip(test, "test")
    if len(ref) != len(dist):
        raise ValueError(f"the reference has {len(ref)} frames, the test clip {len(dist)}")
    if ref[0].shape != dist[0].shape:
        raise ValueError(f"reference frames are {ref[0].shape}, test frames {dist[0].shape}")
    h, w = ref[0].shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"VMAF needs frames at least {MIN_SIDE}x{MIN_SIDE}, got {w}x{h}")
    exe = ffmpeg_with_libvmaf()
    size = f"{w + w % 2}x{h + h % 2}"
    with tempfile.TemporaryDirectory(prefix="vmaf") as tmp:
        folder = Path(tmp)
        inputs = []
        for name, clip in (("test", dist), ("reference", ref)):
            path = folder / f"{name}.rgb"
            path.write_bytes(b"".join(_even(f).tobytes() for f in clip))
            inputs += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", size, "-i", path.name]
        log = folder / "vmaf.json"
        # A relative log path: the filter graph's syntax would trip on a ':' in a full one.
        graph = (
            "[0:v]format=yuv420p[d];[1:v]format=yuv420p[r];"
            f"[d][r]libvmaf=log_fmt=json:log_path={log.name}:n_threads={threads}"
        )
        cmd = [exe, "-hide_banner", "-loglevel", "error", "-nostdin", *inputs]
        done = subprocess.run(
            [*cmd, "-lavfi", graph, "-f", "null", "-"], capture_output=True, text=True, cwd=folder
        )
        if done.returncode != 0 or not log.exists():
            last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            raise RuntimeError(f"libvmaf failed on {len(ref)} frames of {size}: {last}")
        scores = [float(f["metrics"]["vmaf"]) for f in json.loads(log.read_text())["frames"]]
    if len(scores) != len(ref):
        raise RuntimeError(f"libvmaf scored {len(scores)} frames of {len(ref)}")
    return Vmaf(scores, float(np.mean(scores)))
