"""Motion for reused patches: each patch of a predicted frame may show the reference
shifted by a whole-pixel vector (``codec.temporal``), so that a pan or a shaking hand
costs a few bytes per patch instead of its strings.

The search is cheap and runs on the sender alone: the frame's global shift (phase
correlation of the two pictures' gray levels, which finds a pan of any length), then per
patch the best of no motion and that shift, refined over ``REFINE`` pixels around it by
mean squared error. The receiver only copies pixels.
"""

from __future__ import annotations

import numpy as np

from hfstream.geometry import PATCH, Scale

MAX_MOTION = 128  #: largest shift a patch may have, in shown pixels, per axis
REFINE = 2  #: pixels searched around each candidate shift
# Pixels a shift brings in from outside the picture are unknown to both ends. Repeating
# the edge pixel draws streaks across them, which a residual frame's coded difference
# cannot remove (it codes the low frequencies); the edge's mean over this many pixels
# along it is smooth, and closer to whatever came in.
EDGE_SMOOTHING = 17


def global_shift(image: np.ndarray, reference: np.ndarray) -> tuple[int, int]:
    """(dy, dx) such that ``image[y, x]`` is best matched by ``reference[y + dy, x + dx]``,
    by phase correlation, within ``MAX_MOTION``."""
    a = image.astype(np.float32).mean(axis=2)
    b = reference.astype(np.float32).mean(axis=2)
    a -= a.mean()
    b -= b.mean()
    window = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1])).astype(np.float32)
    fa, fb = np.fft.rfft2(a * window), np.fft.rfft2(b * window)
    cross = fb * np.conj(fa)
    cross /= np.maximum(np.abs(cross), 1e-6)
    corr = np.fft.irfft2(cross, s=a.shape)
    dy, dx = np.unravel_index(int(np.argmax(corr)), corr.shape)
    h, w = a.shape
    dy = dy - h if dy > h // 2 else dy
    dx = dx - w if dx > w // 2 else dx
    return int(np.clip(dy, -MAX_MOTION, MAX_MOTION)), int(np.clip(dx, -MAX_MOTION, MAX_MOTION))


def _smoothed(line: np.ndarray) -> np.ndarray:
    """``line`` (N, 3) averaged over ``EDGE_SMOOTHING`` pixels along it (ends repeated)."""
    half = EDGE_SMOOTHING // 2
    padded = np.pad(line.astype(np.float32), ((half, half), (0, 0)), mode="edge")
    sums = np.cumsum(np.pad(padded, ((1, 0), (0, 0))), axis=0)
    mean = (sums[EDGE_SMOOTHING:] - sums[:-EDGE_SMOOTHING]) / EDGE_SMOOTHING
    if np.issubdtype(line.dtype, np.integer):
        mean = np.round(mean)
    return mean.astype(line.dtype)


def shifted(
    reference: np.ndarray, top: int, left: int, *, size: tuple[int, int], motion: tuple[int, int]
) -> np.ndarray:
    """The ``size`` region of ``reference`` at (``top`` + dy, ``left`` + dx). Where it
    reaches outside the picture, each pixel is the nearest edge pixel averaged along the
    edge (``EDGE_SMOOTHING``), the same at both ends."""
    h, w = reference.shape[:2]
    want_rows = np.arange(top, top + size[0]) + motion[0]
    want_cols = np.arange(left, left + size[1]) + motion[1]
    rows, cols = np.clip(want_rows, 0, h - 1), np.clip(want_cols, 0, w - 1)
    block = reference[rows[:, None], cols[None, :]]
    out_rows, out_cols = rows != want_rows, cols != want_cols
    if not (out_rows.any() or out_cols.any()):
        return block
    block = block.copy()
    for edge in np.unique(rows[out_rows]):  # rows past the top or the bottom edge
        block[out_rows & (rows == edge)] = _smoothed(reference[edge])[cols]
    for edge in np.unique(cols[out_cols]):  # columns past the left or the right edge
        block[:, out_cols & (cols == edge)] = _smoothed(reference[:, edge])[rows][:, None]
    return block


def patch_regions(shape: tuple[int, ...], grid: tuple[int, int], scale: Scale):
    """(patch, top, left, height, width) of each patch's region of the shown picture."""
    side = int(PATCH * scale)
    h, w = shape[:2]
    rows, cols = grid
    for r in range(rows):
        for c in range(cols):
            top, left = r * side, c * side
            yield r * cols + c, top, left, min(side, h - top), min(side, w - left)


def search(
    image: np.ndarray, reference: np.ndarray, grid: tuple[int, int], scale: Scale
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each patch of ``image`` coded at 1/``scale``: the best shift of ``reference``
    ((P, 2) int, (dy, dx)), its mean squared error and that of no shift ((P,) each,
    pixels in [0, 1], measured on every other pixel each way)."""
    if image.shape != reference.shape:
        raise ValueError(f"the reference is {reference.shape}, the frame {image.shape}")
    g = global_shift(image, reference)
    img = image.astype(np.float32) / 255
    ref = reference.astype(np.float32) / 255
    count = grid[0] * grid[1]
    motion = np.zeros((count, 2), int)
    best_error = np.empty(count)
    still_error = np.empty(count)
    for p, top, left, hh, ww in patch_regions(image.shape, grid, scale):
        # Every other pixel each way: a quarter of the work, and the same choice of
        # shift on anything but stripes two pixels wide.
        target = img[top : top + hh : 2, left : left + ww : 2]

        def error(m: tuple[int, int]) -> float:
            block = shifted(ref, top, left, size=(hh, ww), motion=m)[::2, ::2]  # noqa: B023
            diff = target - block  # noqa: B023
            return float(np.mean(diff * diff))

        still_error[p] = error((0, 0))
        tried = {(0, 0): still_error[p], g: error(g)}
        centre = min(tried, key=tried.__getitem__)
        for dy in range(-REFINE, REFINE + 1):
            for dx in range(-REFINE, REFINE + 1):
                m = (
                    int(np.clip(centre[0] + dy, -MAX_MOTION, MAX_MOTION)),
                    int(np.clip(centre[1] + dx, -MAX_MOTION, MAX_MOTION)),
                )
                if m not in tried:
                    tried[m] = error(m)
        m = min(tried, key=tried.__getitem__)
        motion[p], best_error[p] = m, tried[m]
    return motion, best_error, still_error


def motion_picture(
    reference: np.ndarray, motion: np.ndarray, grid: tuple[int, int], scale: Scale
) -> np.ndarray:
    """The reference with each patch's region shifted by its vector of ``motion`` (P, 2):
    what a predicted frame shows where a patch has no tier 0."""
    if not motion.any():
        return reference
    out = np.empty_like(reference)
    for p, top, left, hh, ww in patch_regions(reference.shape, grid, scale):
        m = (int(motion[p, 0]), int(motion[p, 1]))
        out[top : top + hh, left : left + ww] = shifted(
            reference, top, left, size=(hh, ww), motion=m
        )
    return out
