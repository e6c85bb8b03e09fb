"""Reading a user's picture for the codec: size limits and conversion notices.

The codec codes 8-bit RGB. Pillow converts anything else quietly; a user who gives a
transparent or grayscale picture should hear that the alpha is dropped or that three
identical channels are coded, so both are said in one line on stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}


def conversion_notice(im: Image.Image, name: str) -> str | None:
    """What converting ``im`` to RGB changes, in words; None when nothing is lost."""
    alpha = im.mode in ALPHA_MODES or "transparency" in im.info
    gray = im.mode in GRAY_MODES
    if alpha and gray:
        return f"{name} is grayscale with an alpha channel: coded as RGB, transparency dropped"
    if alpha:
        return f"{name} has an alpha channel: transparency dropped, only RGB is coded"
    if gray:
        return f"{name} is grayscale: coded as RGB, marked gray (decodes to three equal channels)"
    if im.mode != "RGB":
        return f"{name} is in {im.mode} mode: converted to RGB"
    return None


def check_size(width: int, height: int, name: str, max_megapixels: float) -> None:
    mp = width * height / 1e6
    if mp > max_megapixels:
        raise ValueError(
            f"{name} is {width}x{height} ({mp:.1f} Mpx), more than the {max_megapixels:g} Mpx "
            "limit; raise it with --max-megapixels (coding takes time and memory in "
            "proportion to the pixels)"
        )


def image_size(path: Path) -> tuple[int, int]:
    """Width and height from the file's header, without decoding the pixels."""
    with Image.open(path) as im:
        return im.size


def read_rgb(path: Path, max_megapixels: float, prog: str) -> np.ndarray:
    """The picture as HxWx3 uint8, refusing it before decoding when it is too large."""
    try:
        opened = Image.open(path)
    except UnidentifiedImageError:
        raise ValueError(f"{path} is not an image this Pillow can read") from None
    with opened as im:
        check_size(*im.size, name=str(path), max_megapixels=max_megapixels)
        notice = conversion_notice(im, str(path))
        if notice:
            print(f"{prog}: note: {notice}", file=sys.stderr)
        return np.ascontiguousarray(np.asarray(im.convert("RGB")))
