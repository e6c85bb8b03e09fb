"""Folders of photos: listing them, and a few spread over a folder for quick measurements."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def list_images(folder: str | Path) -> list[Path]:
    root = Path(folder)
    if not root.is_dir():
        kinds = ", ".join(sorted(IMAGE_SUFFIXES))
        raise FileNotFoundError(f'no folder "{root}": a folder of images ({kinds}) is expected')
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f'No images ({", ".join(sorted(IMAGE_SUFFIXES))}) in "{root}"')
    return files


def spread(files: Sequence[Path], count: int) -> list[np.ndarray]:
    """``count`` photos spread evenly over ``files`` (sorted names group by source), each
    centre-cropped to at most 768x512 so that measuring stays quick."""
    picks = [files[i] for i in np.linspace(0, len(files) - 1, min(count, len(files))).astype(int)]
    out = []
    for f in picks:
        with Image.open(f) as im:
            img = np.asarray(im.convert("RGB"))
        h, w = min(img.shape[0], 512), min(img.shape[1], 768)
        top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
        out.append(img[top : top + h, left : left + w])
    return out
