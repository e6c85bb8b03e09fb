"""Coding a frame below the size it is shown at.

When a frame's budget cannot carry its lowest rung with any protection (a busy texture
under heavy loss, or a budget under the ladder's lowest rung), coding it at half its
size in each direction costs about a third of the bytes: the sender codes the
down-scaled frame and marks the scale (``EncodedImage.scale``, two bits on the wire and
in the ``.hfs`` file), and the receiver up-scales what it decodes. Only sides that the
scale divides are coded so, so the shown size is exact.

``FINE`` goes the other way, for budgets above the full-size ladder: the frame is coded
at twice its size, each pixel repeated 2x2, so that the continuous stream's 4x box
down-sampling gives the shown picture 2x down, and the receiver brings that thumbnail
back with the 2x up-sampler (``codec.upsampler``; a 2x box down of the coded-size
picture where the model has none). Such a frame carries tier 0 alone.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from hfstream.geometry import FINE, SCALES, Scale


def check_scale(scale: Scale) -> Scale:
    if scale not in SCALES:
        raise ValueError(f"Invalid scale {scale}, should be one of {', '.join(map(str, SCALES))}")
    return scale


def scalable(height: int, width: int, scale: Scale) -> bool:
    """Whether a ``height`` x ``width`` frame can be coded at 1/``scale`` of its size."""
    return scale == FINE or (height % scale == 0 and width % scale == 0)


def downscale(image: np.ndarray, scale: Scale) -> np.ndarray:
    """HxWx3 uint8 -> (H/scale)x(W/scale)x3 (Lanczos: sharper than a box at the same
    size, which the continuous stream's own box down-sampling then averages); ``FINE``:
    each pixel repeated 2x2."""
    check_scale(scale)
    if scale == 1:
        return image
    if scale == FINE:
        return np.ascontiguousarray(image.repeat(2, axis=0).repeat(2, axis=1))
    h, w = image.shape[:2]
    if not scalable(h, w, scale):
        raise ValueError(f"a {w}x{h} frame cannot be coded at 1/{scale}: {scale} must divide both")
    small = Image.fromarray(image).resize((w // scale, h // scale), Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(small))


def upscale(image: np.ndarray, scale: Scale) -> np.ndarray:
    """The decoded picture at the size it is shown (bicubic; ``FINE``: a 2x box down)."""
    check_scale(scale)
    if scale == 1:
        return image
    if scale == FINE:
        h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
        # The four pixels of each 2x2 block added as slices: numpy's reduction over two
        # axes of a strided view is ten times slower for the same sums.
        q = image[:h, :w].astype(np.uint16)
        quads = q[0::2, 0::2] + q[0::2, 1::2] + q[1::2, 0::2] + q[1::2, 1::2]
        return ((quads + 2) >> 2).astype(np.uint8)
    h, w = image.shape[:2]
    big = Image.fromarray(image).resize((w * scale, h * scale), Image.Resampling.BICUBIC)
    return np.ascontiguousarray(np.asarray(big))
