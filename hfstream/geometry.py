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


def patch_grid(height: int, width: int) -> tuple[int, int]:
    """(rows, cols) of patches covering a ``height`` x ``width`` frame."""
    return -(-height // PATCH), -(-width // PATCH)


def patch_count(height: int, width: int) -> int:
    rows, cols = patch_grid(height, width)
    return rows * cols


MAX_PATCHES = patch_count(MAX_SIDE, MAX_SIDE)
