"""A deblocking filter across the 256-px patch borders of a decoded picture.

The decoders run frame-wide, but each patch's latent is still quantised on its own, so a
border can carry a step that neither side's slope explains: what a classic codec's
deblocking filter removes at its block edges. Here, along every patch border, the step
between the two pixels that meet there is compared with the slopes on either side
(over ``SLOPE_SPAN`` pixels); the excess is smoothed along the border (a Gaussian of
``SMOOTHING`` pixels: a quantisation offset varies slowly along a border, texture does
not) and spread as a linear ramp over ``REACH`` pixels on each side instead of one
step. Nothing but the border's neighbourhood changes, and a border whose step the slopes
explain (a smooth gradient crossing it) is left alone.

On the validation photos it leaves PSNR as it was and lowers the worst seams
(docs/notebook/codec-and-models.md, "A deblocking filter"). It runs on the decoded
uint8 picture, after everything the sender and receiver must agree on, so it never
touches bit-exactness.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

PATCH = 256
REACH = 8  # pixels each side of a border over which its excess step is spread
SMOOTHING = 4.0  # Gaussian sigma, in pixels, along the border
SLOPE_SPAN = 3  # the slope each side is taken over this many pixel steps
EDGE = 12.0  # an excess over this (levels of 255) fades out by twice it: a real edge


def _gaussian(sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def _smooth_along(excess: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``excess`` (C, L) smoothed along L, edges replicated."""
    pad = kernel.numel() // 2
    x = F.pad(excess[:, None], (pad, pad), mode="replicate")
    return F.conv1d(x, kernel.view(1, 1, -1))[:, 0]


def _filter_border(strip: torch.Tensor, kernel: torch.Tensor) -> None:
    """Filter, in place, the vertical border in the middle of ``strip`` (C, H, 2 * REACH):
    the ``REACH`` columns on either side of one patch border."""
    j = torch.arange(REACH, dtype=strip.dtype)
    ramp = 0.5 - (j + 0.5) / (2 * REACH)  # weight of the excess at distance j from the border
    p0, q0 = strip[:, :, REACH - 1], strip[:, :, REACH]
    slope_p = (p0 - strip[:, :, REACH - 1 - SLOPE_SPAN]) / SLOPE_SPAN
    slope_q = (strip[:, :, REACH + SLOPE_SPAN] - q0) / SLOPE_SPAN
    excess = _smooth_along((q0 - p0) - 0.5 * (slope_p + slope_q), kernel)  # (C, H)
    excess = excess * ((2 * EDGE - excess.abs()) / EDGE).clamp(0, 1)
    strip[:, :, :REACH] += excess[:, :, None] * ramp.flip(0)
    strip[:, :, REACH:] -= excess[:, :, None] * ramp


def _borders(length: int, patch: int) -> list[int]:
    """The patch borders along a side of ``length`` pixels with room for the filter."""
    return [b for b in range(patch, length, patch) if b - REACH >= 0 and b + REACH <= length]


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) float -> (H, W, C) uint8, rounded."""
    return x.round().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def deblock(picture: np.ndarray, patch: int = PATCH) -> np.ndarray:
    """``picture`` (H, W, 3) uint8 with its patch borders filtered; a new array.

    Borders are every ``patch`` pixels from the top-left corner (the frame's patch grid);
    a picture of one patch comes back unchanged. The vertical borders are filtered first,
    then the horizontal ones over the result. Only the strips of ``REACH`` pixels beside
    the borders are read as floats: the rest of the picture is left as it is, which keeps
    the filter's cost to the borders' (the same pixels as filtering the whole picture in
    floats, a quarter of the time on a 1536x1024 picture)."""
    if picture.ndim != 3 or picture.dtype != np.uint8:
        raise ValueError(
            f"deblock wants an HxWxC uint8 picture, got {picture.dtype} {picture.shape}"
        )
    if patch < 2 * REACH:
        raise ValueError(f"deblock's patch must be at least {2 * REACH} pixels, got {patch}")
    h, w = picture.shape[:2]
    out = picture.copy()
    if h <= patch and w <= patch:
        return out
    kernel = _gaussian(SMOOTHING)
    source = torch.from_numpy(picture).permute(2, 0, 1)  # (C, H, W), uint8, a view
    columns: dict[int, torch.Tensor] = {}
    for b in _borders(w, patch):
        strip = source[:, :, b - REACH : b + REACH].float()
        _filter_border(strip, kernel)
        columns[b] = strip
    rows: dict[int, torch.Tensor] = {}
    for b in _borders(h, patch):
        band = source[:, b - REACH : b + REACH].float()  # (C, 2 * REACH, W)
        for c, strip in columns.items():  # the vertical pass's output where it crosses
            band[:, :, c - REACH : c + REACH] = strip[:, b - REACH : b + REACH]
        across = band.transpose(1, 2).contiguous()
        _filter_border(across, kernel)
        rows[b] = across.transpose(1, 2)
    for b, strip in columns.items():
        out[:, b - REACH : b + REACH] = _to_uint8(strip)
    for b, band in rows.items():
        out[b - REACH : b + REACH] = _to_uint8(band)
    return out
