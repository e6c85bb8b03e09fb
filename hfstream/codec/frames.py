"""A frame as the codec sees it: an image cut into patches, and the bands of patch rows
that frame-wide passes run over.

Frames are coded and decoded whole (no seams), but a pass over a large frame runs over
bands of patch rows, with one row of context above and below, so memory stays bounded
(``row_bands``). ``FrameBands`` keeps each band's thumbnail and its analysis, so an
encode computes them once however often it asks."""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from hfstream.codec.caches import LRU
from hfstream.codec.continuous import ContinuousCodec
from hfstream.geometry import MAX_SIDE, PATCH, patch_grid

# Frames up to this many patches are one band; larger ones go in bands of patch rows.
FRAME_PATCHES = 24


def to_uint8_image(image: np.ndarray | Image.Image | str | Path) -> np.ndarray:
    """Accept an array, a PIL image or a path; return a contiguous HxWx3 uint8 array."""
    if isinstance(image, (str, Path)):
        with Image.open(image) as im:
            image = np.asarray(im.convert("RGB"))
    elif isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image must be HxWx3, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {arr.dtype}")
    h, w = arr.shape[:2]
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise ValueError(f"image size {w}x{h} is outside 1..{MAX_SIDE} per side")
    return np.ascontiguousarray(arr)


def is_gray(arr: np.ndarray) -> bool:
    """Whether an HxWx3 picture has three equal channels."""
    return bool((arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all())


def to_gray(arr: np.ndarray) -> np.ndarray:
    """An HxWx3 uint8 picture with its three channels replaced by their mean."""
    mean = np.round(arr.mean(axis=2, dtype=np.float32)).astype(np.uint8)
    return np.repeat(mean[..., None], 3, axis=2)


def split_patches(arr: np.ndarray) -> np.ndarray:
    """HxWx3 -> (P, 256, 256, 3), edge-padded to whole patches, row-major."""
    h, w = arr.shape[:2]
    rows, cols = patch_grid(h, w)
    padded = np.pad(arr, ((0, rows * PATCH - h), (0, cols * PATCH - w), (0, 0)), mode="edge")
    return (
        padded.reshape(rows, PATCH, cols, PATCH, 3)
        .transpose(0, 2, 1, 3, 4)
        .reshape(-1, PATCH, PATCH, 3)
    )


def merge_patches(patches: np.ndarray, height: int, width: int) -> np.ndarray:
    """(P, 256, 256, 3) row-major -> the ``height`` x ``width`` picture they cover."""
    rows, cols = patch_grid(height, width)
    full = patches.reshape(rows, cols, PATCH, PATCH, 3).transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(full.reshape(rows * PATCH, cols * PATCH, 3)[:height, :width])


def row_bands(rows: int, cols: int) -> list[tuple[int, int, int, int]]:
    """Bands of patch rows for frame-wide passes: ``(lo, hi, start, stop)``, run over rows
    ``lo..hi`` (context included), keep rows ``start..stop``."""
    if rows * cols <= FRAME_PATCHES:
        return [(0, rows, 0, rows)]
    band = max(1, FRAME_PATCHES // cols - 2)
    return [
        (max(0, r - 1), min(rows, r + band + 1), r, min(rows, r + band))
        for r in range(0, rows, band)
    ]


def to_tensor(patches: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(patches).permute(0, 3, 1, 2).float().div(255.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) float in [0, 1] -> (B, H, W, 3) uint8, rounded."""
    return (x.clamp(0, 1) * 255.0).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def band_tensor(patches: np.ndarray, lo: int, hi: int, cols: int) -> torch.Tensor:
    """Patch rows lo..hi of a frame's (P,256,256,3) patches as one (1,3,H,W) picture."""
    band = patches[lo * cols : hi * cols]
    img = band.reshape(hi - lo, cols, PATCH, PATCH, 3).transpose(0, 2, 1, 3, 4)
    img = img.reshape((hi - lo) * PATCH, cols * PATCH, 3)
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float().div(255.0)


class FrameBands:
    """A frame's row bands (``row_bands``) as thumbnails and their analysis, each computed
    once however often an encode asks (rung table, quality floor, then coding)."""

    def __init__(self, continuous: ContinuousCodec, image: np.ndarray) -> None:
        """``image``: the frame as coded, HxWx3 uint8."""
        self.continuous = continuous
        self.patches = split_patches(image)
        self.rows, self.cols = patch_grid(*image.shape[:2])
        self.size: tuple[int, int] = image.shape[:2]  # the picture inside the padded patches
        self._seen: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def __iter__(self) -> Iterator[tuple[int, int, int, int]]:
        return iter(row_bands(self.rows, self.cols))

    def full(self, lo: int, hi: int) -> torch.Tensor:
        """Patch rows lo..hi at full size, (1,3,H,W)."""
        return band_tensor(self.patches, lo, hi, self.cols)

    def valid(self, lo: int, hi: int) -> tuple[int, int]:
        """The rows and columns of ``full(lo, hi)`` that are picture, not padding."""
        return min(self.size[0] - lo * PATCH, (hi - lo) * PATCH), self.size[1]

    def thumbnail(self, lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Patch rows lo..hi as the continuous stream's thumbnail and its analysis y."""
        if (lo, hi) not in self._seen:
            low = ContinuousCodec.downsample(self.full(lo, hi))
            self._seen[lo, hi] = low, self.continuous.analyse(low)
        return self._seen[lo, hi]


# The last frames each continuous codec was asked about: a plan's rung table, its coding
# and any recoding of one frame then analyse it once (768x512: 50 ms a time).
_RECENT_BANDS: weakref.WeakKeyDictionary[ContinuousCodec, LRU[bytes, FrameBands]] = (
    weakref.WeakKeyDictionary()
)
RECENT_BANDS = 2
#: Frames larger than this (bytes of the coded picture) are not kept: each kept one holds
#: its patches, about its own size (1280x720 at ``FINE``: 11 MB).
RECENT_BANDS_MAX_BYTES = 16 << 20


def frame_bands(continuous: ContinuousCodec, image: np.ndarray) -> FrameBands:
    """``FrameBands(continuous, image)``, the very same object while ``image`` (its
    pixels, not the array) is among the last ``RECENT_BANDS`` asked of ``continuous``
    (up to ``RECENT_BANDS_MAX_BYTES``)."""
    image = np.ascontiguousarray(image)
    if image.nbytes > RECENT_BANDS_MAX_BYTES:
        return FrameBands(continuous, image)
    key = hashlib.blake2b(image.tobytes(), digest_size=16)
    # The weights' in-place versions too: a model trained or loaded in place since
    # analyses afresh.
    weights = sum(p._version for p in continuous.parameters())
    key.update(repr((image.shape, image.dtype.str, weights)).encode())
    recent = _RECENT_BANDS.setdefault(continuous, LRU(RECENT_BANDS))
    found = recent.get_many([key.digest()])
    if found:
        return found[key.digest()]
    bands = FrameBands(continuous, image)
    recent.put_many([(key.digest(), bands)])
    return bands
