"""Motion for predicted frames: each patch of a predicted frame reads its reference moved
by one vector per block (``MOTION_BLOCKS`` x ``MOTION_BLOCKS`` blocks a patch), in
quarter pixels (``SUBPEL``), so that a pan or a shaking hand costs a few bytes per patch
instead of its strings, and what a residual frame codes is only what motion cannot
explain.

The search runs on the sender alone: the frame's global shift (phase correlation of the
two pictures' gray levels, which finds a pan of any length), then per patch the best of
no motion and that shift, refined over ``REFINE`` pixels around it; then per block,
around the patch's vector, the best whole pixel and the best half and quarter pixel
about it. A patch keeps one vector for all its blocks unless its blocks' own vectors
lower its error by ``SPLIT_GAIN`` (four vectors cost six more bytes on the wire).

The receiver moves pixels by integer arithmetic alone (``shifted``): a fractional
vector reads the bilinear mix of four pixels, with weights in 1/16 and rounding fixed,
so both ends show the very same picture on any machine.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from hfstream.geometry import MOTION_BLOCKS, PATCH, SUBPEL, Scale

MAX_MOTION = 128  #: largest shift a block may have, in shown pixels, per axis
REFINE = 2  #: whole pixels searched around each candidate shift of a patch
BLOCKS = MOTION_BLOCKS * MOTION_BLOCKS  #: vectors per patch
# A patch's blocks take their own vectors only where that lowers the patch's error by this
# share: below it, the six bytes a split costs buy more as strings.
SPLIT_GAIN = 0.05
# Pixels a shift brings in from outside the picture are unknown to both ends. Repeating
# the edge pixel draws streaks across them, which a residual frame's coded difference
# cannot remove (it codes the low frequencies); the edge's mean over this many pixels
# along it is smooth, and closer to whatever came in.
EDGE_SMOOTHING = 17
_LIMIT = MAX_MOTION * SUBPEL


def _gray(picture: np.ndarray, step: int) -> np.ndarray:
    """Gray levels of ``picture``, averaged over ``step`` x ``step`` blocks."""
    h, w = picture.shape[0] // step * step, picture.shape[1] // step * step
    blocks = picture[:h, :w].reshape(h // step, step, w // step, step, -1)
    return blocks.mean(axis=(1, 3, 4), dtype=np.float32)


def global_shift(image: np.ndarray, reference: np.ndarray, *, step: int = 1) -> tuple[int, int]:
    """(dy, dx) in whole pixels such that ``image[y, x]`` is best matched by
    ``reference[y + dy, x + dx]``, by phase correlation, within ``MAX_MOTION``; with
    ``step``, on pictures ``step`` times smaller (a multiple of ``step``: the search
    around it finds the pixel)."""
    a, b = _gray(image, step), _gray(reference, step)
    a -= a.mean()
    b -= b.mean()
    window = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1])).astype(np.float32)
    fa, fb = np.fft.rfft2(a * window), np.fft.rfft2(b * window)
    cross = fb * np.conj(fa)
    cross /= np.maximum(np.abs(cross), 1e-6)
    corr = np.fft.irfft2(cross, s=a.shape)
    dy, dx = np.unravel_index(int(np.argmax(corr)), corr.shape)
    h, w = a.shape
    dy = (dy - h if dy > h // 2 else dy) * step
    dx = (dx - w if dx > w // 2 else dx) * step
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


class Extended:
    """A reference with ``margin`` pixels on every side filled as ``shifted`` fills what
    lies outside the picture, built once: every region moved within the margin is then a
    slice of it (the motion search reads thousands; the same pixels as the picture's own
    ``shifted``)."""

    def __init__(self, reference: np.ndarray, margin: int = MAX_MOTION + 2) -> None:
        h, w = reference.shape[:2]
        rows = np.clip(np.arange(-margin, h + margin), 0, h - 1)
        cols = np.clip(np.arange(-margin, w + margin), 0, w - 1)
        # Edge padding is a few times faster than indexing by ``rows`` and ``cols``; its
        # margins are all overwritten below.
        pad = ((margin, margin), (margin, margin)) + ((0, 0),) * (reference.ndim - 2)
        pixels = np.pad(reference, pad, mode="edge")
        pixels[:margin] = _smoothed(reference[0])[cols]
        pixels[margin + h :] = _smoothed(reference[h - 1])[cols]
        pixels[:, :margin] = _smoothed(reference[:, 0])[rows][:, None]
        pixels[:, margin + w :] = _smoothed(reference[:, w - 1])[rows][:, None]
        self.reference, self.pixels, self.margin = reference, pixels, margin

    def region(
        self, top: int, left: int, size: tuple[int, int], motion: tuple[int, int]
    ) -> np.ndarray:
        """``_moved_whole`` of the reference, as a view where the margin allows."""
        y, x = top + motion[0] + self.margin, left + motion[1] + self.margin
        if 0 <= y <= self.pixels.shape[0] - size[0] and 0 <= x <= self.pixels.shape[1] - size[1]:
            return self.pixels[y : y + size[0], x : x + size[1]]
        return _moved_whole(self.reference, top, left, size, motion)


def _moved_whole(
    reference: np.ndarray | Extended,
    top: int,
    left: int,
    size: tuple[int, int],
    motion: tuple[int, int],
) -> np.ndarray:
    """The ``size`` region of ``reference`` at (``top`` + dy, ``left`` + dx), whole
    pixels; outside the picture, the nearest edge smoothed along it."""
    if isinstance(reference, Extended):
        return reference.region(top, left, size, motion)
    h, w = reference.shape[:2]
    y, x = top + motion[0], left + motion[1]
    if 0 <= y <= h - size[0] and 0 <= x <= w - size[1]:
        return reference[y : y + size[0], x : x + size[1]]  # inside: a view, no copy
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


def shifted(
    reference: np.ndarray | Extended,
    top: int,
    left: int,
    *,
    size: tuple[int, int],
    motion: tuple[int, int],
    step: int = 1,
) -> np.ndarray:
    """The ``size`` region of ``reference`` at (``top``, ``left``) moved by ``motion``
    (dy, dx) in 1/``SUBPEL`` pixels, every ``step``-th pixel each way. Between pixels it
    is their bilinear mix, exact in integers for an integer ``reference``; where it
    reaches outside the picture, each pixel is the nearest edge pixel averaged along the
    edge (``EDGE_SMOOTHING``), the same at both ends."""
    whole_y, frac_y = divmod(int(motion[0]), SUBPEL)
    whole_x, frac_x = divmod(int(motion[1]), SUBPEL)
    hh, ww = size
    if not (frac_y or frac_x):
        return _moved_whole(reference, top, left, size, (whole_y, whole_x))[::step, ::step]
    big = _moved_whole(reference, top, left, (hh + 1, ww + 1), (whole_y, whole_x))
    wide = np.int32 if np.issubdtype(big.dtype, np.integer) else np.float32
    corners = (
        ((SUBPEL - frac_y) * (SUBPEL - frac_x), 0, 0),
        ((SUBPEL - frac_y) * frac_x, 0, 1),
        (frac_y * (SUBPEL - frac_x), 1, 0),
        (frac_y * frac_x, 1, 1),
    )
    total = sum(
        # No copy of a float picture (the motion search's): the same values.
        weight * big[dy : dy + hh : step, dx : dx + ww : step].astype(wide, copy=False)
        for weight, dy, dx in corners
        if weight
    )
    if np.issubdtype(big.dtype, np.integer):
        area = SUBPEL * SUBPEL
        return ((total + area // 2) // area).astype(big.dtype)
    return (total / (SUBPEL * SUBPEL)).astype(big.dtype)


def patch_regions(
    shape: tuple[int, ...], grid: tuple[int, int], scale: Scale
) -> Iterator[tuple[int, int, int, int, int]]:
    """(patch, top, left, height, width) of each patch's region of the shown picture."""
    side = int(PATCH * scale)
    h, w = shape[:2]
    rows, cols = grid
    for r in range(rows):
        for c in range(cols):
            top, left = r * side, c * side
            yield r * cols + c, top, left, min(side, h - top), min(side, w - left)


def block_regions(
    top: int, left: int, size: tuple[int, int], scale: Scale
) -> Iterator[tuple[int, int, int, int, int]]:
    """(block, top, left, height, width) of each motion block of the patch whose region
    is ``size`` at (``top``, ``left``); blocks wholly outside the picture are left out."""
    side = int(PATCH * scale) // MOTION_BLOCKS
    for b in range(BLOCKS):
        by, bx = divmod(b, MOTION_BLOCKS)
        y, x = by * side, bx * side
        if y < size[0] and x < size[1]:
            yield b, top + y, left + x, min(side, size[0] - y), min(side, size[1] - x)


def _clipped(m: tuple[int, int]) -> tuple[int, int]:
    return int(np.clip(m[0], -_LIMIT, _LIMIT)), int(np.clip(m[1], -_LIMIT, _LIMIT))


def _best_around(
    error, centre: tuple[int, int], radius: int, unit: int, tried: dict
) -> tuple[int, int]:
    """The vector of least ``error`` among ``centre`` + (dy, dx) * ``unit`` for dy, dx in
    -``radius``..``radius`` and those in ``tried`` (vector -> error, updated)."""
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            m = _clipped((centre[0] + dy * unit, centre[1] + dx * unit))
            if m not in tried:
                tried[m] = error(m)
    return min(tried, key=tried.__getitem__)


def _refined(error, start: tuple[int, int], tried: dict) -> tuple[int, int]:
    """From ``start``: the best whole pixel next to it, then the best half, then quarter
    pixel about that."""
    best = _best_around(error, start, 1, SUBPEL, tried)
    unit = SUBPEL // 2
    while unit:
        best = _best_around(error, best, 1, unit, tried)
        unit //= 2
    return best


def search(
    image: np.ndarray,
    reference: np.ndarray,
    grid: tuple[int, int],
    scale: Scale,
    *,
    split: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each patch of ``image`` coded at 1/``scale``: the vector of each of its blocks
    ((P, ``BLOCKS``, 2) int, (dy, dx) in 1/``SUBPEL`` pixels), the patch's mean squared
    error with them and that of no motion ((P,) each, pixels in [0, 1], measured on every
    other pixel each way). Without ``split``, one vector a patch (its blocks never
    searched on their own: a fifth of the time), chosen on gray levels (a third of the
    work again); its errors are still the colour pictures'."""
    if image.shape != reference.shape:
        raise ValueError(f"the reference is {reference.shape}, the frame {image.shape}")
    g = tuple(v * SUBPEL for v in global_shift(image, reference, step=1 if split else 2))
    img = image.astype(np.float32) / 255
    # Without ``split`` the colour pictures are read twice a patch: not worth extending.
    colour_ref = reference.astype(np.float32) / 255
    ref = Extended(colour_ref) if split else colour_ref
    if split:
        seen, seen_ref = img, ref
    else:
        seen = img.mean(axis=2, keepdims=True)
        seen_ref = Extended(reference.astype(np.float32).mean(axis=2, keepdims=True) / 255)
    count = grid[0] * grid[1]
    motion = np.zeros((count, BLOCKS, 2), int)
    best_error = np.empty(count)
    still_error = np.empty(count)
    for p, top, left, hh, ww in patch_regions(image.shape, grid, scale):
        blocks = list(block_regions(top, left, (hh, ww), scale))

        def sum_error(
            m: tuple[int, int], y: int, x: int, bh: int, bw: int, colour: bool = False
        ) -> float:
            # Every other pixel each way: a quarter of the work, and the same choice of
            # vector on anything but stripes two pixels wide.
            source, target = (ref, img) if colour else (seen_ref, seen)
            moved = shifted(source, y, x, size=(bh, bw), motion=m, step=2)
            diff = target[y : y + bh : 2, x : x + bw : 2] - moved
            return float(np.sum(diff * diff))

        def patch_error(m: tuple[int, int]) -> float:
            return sum_error(m, top, left, hh, ww)  # noqa: B023

        values = float(len(range(0, hh, 2)) * len(range(0, ww, 2)) * seen.shape[2])
        tried = {(0, 0): patch_error((0, 0))}
        still_error[p] = tried[(0, 0)] / values
        tried[_clipped(g)] = patch_error(_clipped(g))
        centre = min(tried, key=tried.__getitem__)
        centre = _best_around(patch_error, centre, REFINE, SUBPEL, tried)
        single = _refined(patch_error, centre, tried)
        split_vectors, split_error = [], 0.0
        for _, y, x, bh, bw in blocks if split else []:
            own = {}

            def block_error(m: tuple[int, int]) -> float:
                return sum_error(m, y, x, bh, bw)  # noqa: B023

            vector = _refined(block_error, single, own)
            split_vectors.append(vector)
            split_error += own[vector]
        if split and split_error < tried[single] * (1 - SPLIT_GAIN):
            motion[p] = single  # blocks left out of the picture keep the patch's vector
            for (b, *_), vector in zip(blocks, split_vectors, strict=True):
                motion[p, b] = vector
            best_error[p] = split_error / values
        else:
            motion[p], best_error[p] = single, tried[single] / values
        if not split:  # chosen on gray levels: the errors the plan weighs are in colour
            colour_values = values * image.shape[2]
            still_error[p] = sum_error((0, 0), top, left, hh, ww, colour=True) / colour_values
            best_error[p] = sum_error(single, top, left, hh, ww, colour=True) / colour_values
    return motion, best_error, still_error


def motion_picture(
    reference: np.ndarray, motion: np.ndarray, grid: tuple[int, int], scale: Scale
) -> np.ndarray:
    """The reference with each block of each patch moved by its vector of ``motion``
    ((P, ``BLOCKS``, 2), 1/``SUBPEL`` pixels): what a predicted frame shows where a patch
    has no tier 0."""
    if not motion.any():
        return reference
    out = np.empty_like(reference)
    source = Extended(reference)
    for p, top, left, hh, ww in patch_regions(reference.shape, grid, scale):
        for b, y, x, bh, bw in block_regions(top, left, (hh, ww), scale):
            m = (int(motion[p, b, 0]), int(motion[p, b, 1]))
            out[y : y + bh, x : x + bw] = shifted(source, y, x, size=(bh, bw), motion=m)
    return out


def as_vectors(motion: np.ndarray) -> tuple[tuple[int, int], ...]:
    """One patch's row of ``motion`` (``BLOCKS``, 2) as the tuple ``EncodedPatch`` holds."""
    return tuple((int(dy), int(dx)) for dy, dx in motion)
