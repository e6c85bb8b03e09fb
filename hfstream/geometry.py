"""Patch geometry, in one place: a frame is cut into 256 x 256 patches, row-major, the
last row and column edge-padded; each patch has a 16 x 16 map of indices."""

from __future__ import annotations

from fractions import Fraction

PATCH = 256  # pixels per patch side
GRID = 16  # indices per patch side (the VQ encoder's stride is 16)
TOKENS = GRID * GRID  # indices per patch
# A predicted frame's patch reads its reference moved by one vector per block, in
# 1/SUBPEL pixels of the shown picture (``hfstream.codec.motion``).
MOTION_BLOCKS = 2  # blocks per patch side
SUBPEL = 4  # steps per shown pixel of a motion vector
STILL: tuple[tuple[int, int], ...] = ((0, 0),) * (MOTION_BLOCKS * MOTION_BLOCKS)  # no motion
MAX_SIDE = 16384  # pixels per frame side that the wire can declare (2 bytes)
# A frame may be coded at 1/scale of the size it is shown at (``hfstream.codec.scaling``):
# 2 and 4 code it smaller; ``FINE`` codes it at twice its size, so that the continuous
# stream's thumbnail (4x down of the coded picture) is the shown picture 2x down. The
# wire and the .hfs file carry the scale in two bits (``scale_bits``).
FINE = Fraction(1, 2)
Scale = int | Fraction
SCALES: tuple[Scale, ...] = (FINE, 1, 2, 4)
_BITS: dict[Scale, int] = {1: 0, 2: 1, 4: 2, FINE: 3}
_OF_BITS = {bits: scale for scale, bits in _BITS.items()}
# The largest picture (as shown) that coding or decoding a file takes on by default: the
# work and memory of a decode grow with its pixels (``--max-megapixels`` raises it).
DEFAULT_MAX_PIXELS = 16_000_000
# A stream receiver's limit per frame (declared height x width, as shown): a frame over it
# is dropped at its first packet, before it costs a frame slot or a decode. The worst
# frame a key holder can send under it is measured in docs/threat-model.md.
DEFAULT_MAX_FRAME_PIXELS = 2048 * 2048


def scale_bits(scale: Scale) -> int:
    """The two bits that carry ``scale`` on the wire and in the .hfs file."""
    return _BITS[scale]


def scale_of_bits(bits: int) -> Scale:
    """The scale two bits carry (``scale_bits``' inverse)."""
    return _OF_BITS[bits & 3]


def shown_side(coded: int, scale: Scale) -> int:
    """A side of the picture shown, from the side as coded (a ``FINE`` frame's coded
    sides are even)."""
    return int(coded * scale)


def patch_grid(height: int, width: int) -> tuple[int, int]:
    """(rows, cols) of patches covering a ``height`` x ``width`` frame."""
    return -(-height // PATCH), -(-width // PATCH)


def patch_count(height: int, width: int) -> int:
    rows, cols = patch_grid(height, width)
    return rows * cols


MAX_PATCHES = patch_count(MAX_SIDE, MAX_SIDE)
