"""Frame-wide convolution with per-patch normalisation statistics.

The decoders are convolutional, so they can run over a whole frame's maps at once: a
convolution near a patch border then sees the neighbouring patch instead of zero
padding, and no 256-px seam shows. Their GroupNorm layers are the one thing that is not
local: over a whole frame they would mix the statistics of every patch, which the
decoders never met in training on single patches. ``PatchGroupNorm`` normalises each
patch's tile of the map on its own, exactly as a single-patch pass would, while every
other layer runs frame-wide. The tile grid is set for a block of code with
``patch_grid(rows, cols)``; it is a context variable, so decodes in different threads
or tasks never see each other's grid.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

import torch
from torch import nn

_GRID: ContextVar[tuple[int, int]] = ContextVar("hfstream_patch_grid", default=(1, 1))


@contextlib.contextmanager
def patch_grid(rows: int, cols: int) -> Iterator[None]:
    """Within this block, every ``PatchGroupNorm`` sees its input as rows x cols patches."""
    if rows < 1 or cols < 1:
        raise ValueError(f"Invalid patch grid {rows}x{cols}, both must be at least 1")
    token = _GRID.set((rows, cols))
    try:
        yield
    finally:
        _GRID.reset(token)


def to_tiles(x: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """(B, C, R*h, C*w) -> (B*R*C, C, h, w), tiles row-major."""
    b, c, hh, ww = x.shape
    h, w = hh // rows, ww // cols
    return (
        x.reshape(b, c, rows, h, cols, w)
        .permute(0, 2, 4, 1, 3, 5)
        .reshape(b * rows * cols, c, h, w)
    )


def from_tiles(t: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Inverse of ``to_tiles``."""
    n, c, h, w = t.shape
    b = n // (rows * cols)
    return (
        t.reshape(b, rows, cols, c, h, w)
        .permute(0, 3, 1, 4, 2, 5)
        .reshape(b, c, rows * h, cols * w)
    )


class PatchGroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` with statistics per patch tile (same parameters, same state dict)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows, cols = _GRID.get()
        if rows == cols == 1:
            return super().forward(x)
        if x.shape[-2] % rows or x.shape[-1] % cols:
            raise ValueError(f"a {tuple(x.shape[-2:])} map does not split into {rows}x{cols} tiles")
        return from_tiles(super().forward(to_tiles(x, rows, cols)), rows, cols)
