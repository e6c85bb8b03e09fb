"""Patch geometry, in one place: a frame is cut into 256 x 256 patches, row-major, the
last row and column edge-padded; each patch has a 16 x 16 map of indices."""

from __future__ import annotations

PATCH = 256  # pixels per patch side
GRID = 16  # indices per patch side (the VQ encoder's stride is 16)
TOKENS = GRID * GRID  # indices per patch
MAX_SIDE = 16384  # pixels per frame side that the wire can declare (2 bytes)
# A frame may be coded at 1/scale of the size it is shown at (``hfstream.codec.scaling``);
# the wire and the .hfs file carry log2 of the scale in two bits.
SCALES = (1, 2, 4)
# The largest picture (as shown) that coding or decoding a file takes on by default: the
# work and memory of a decode grow with its pixels (``--max-megapixels`` raises it).
DEFAULT_MAX_PIXELS = 16_000_000
# A stream receiver's limit per frame (declared height x width, as shown): a frame over it
# is dropped at its first packet, before it costs a frame slot or a decode. The worst
# frame a key holder can send under it is measured in docs/threat-model.md.
DEFAULT_MAX_FRAME_PIXELS = 2048 * 2048


def patch_grid(height: int, width: int) -> tuple[int, int]:
    """(rows, cols) of patches covering a ``height`` x ``width`` frame."""
    return -(-height // PATCH), -(-width // PATCH)


def patch_count(height: int, width: int) -> int:
    rows, cols = patch_grid(height, width)
    return rows * cols


MAX_PATCHES = patch_count(MAX_SIDE, MAX_SIDE)
