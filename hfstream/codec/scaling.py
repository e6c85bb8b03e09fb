"""Coding a frame below the size it is shown at.

When a frame's budget cannot carry its lowest rung with any protection (a busy texture
under heavy loss, or a budget under the ladder's lowest rung), coding it at half its
size in each direction costs about a third of the bytes: the sender codes the
down-scaled frame and marks the scale (``EncodedImage.scale``, two bits on the wire and
in the ``.hfs`` file), and the receiver up-scales what it decodes. Only sides that the
scale divides are coded so, so the shown size is exact.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from hfstream.geometry import SCALES


def check_scale(scale: int) -> int:
    if scale not in SCALES:
        raise ValueError(f"Invalid scale {scale}, should be one of {', '.join(map(str, SCALES))}")
    return scale


def scalable(height: int, width: int, scale: int) -> bool:
    """Whether a ``height`` x ``width`` frame can be coded at 1/``scale`` of its size."""
    return height % scale == 0 and width % scale == 0


def downscale(image: np.ndarray, scale: int) -> np.ndarray:
    """HxWx3 uint8 -> (H/scale)x(W/scale)x3 (Lanczos: sharper than a box at the same
    size, which the continuous stream's own box down-sampling then averages)."""
    check_scale(scale)
    if scale == 1:
        return image
    h, w = image.shape[:2]
    if not scalable(h, w, scale):
        raise ValueError(f"a {w}x{h} frame cannot be coded at 1/{scale}: {scale} must divide both")
    small = Image.fromarray(image).resize((w // scale, h // scale), Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(small))


def upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """The decoded picture at the size it is shown (bicubic)."""
    check_scale(scale)
    if scale == 1:
        return image
    h, w = image.shape[:2]
    big = Image.fromarray(image).resize((w * scale, h * scale), Image.Resampling.BICUBIC)
    return np.ascontiguousarray(np.asarray(big))
