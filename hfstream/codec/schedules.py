"""Mask schedules: which of a patch's 16x16 indices are sent (kept) and which withheld.

Structured lattices, so that every withheld position has a kept neighbour close by:

========  ==================================================  ==========
schedule  kept positions on the 16x16 map                     kept
========  ==================================================  ==========
``1_1``   all                                                 256 (100 %)
``1_2``   checkerboard, (row + col) even                      128 (50 %)
``1_4``   one per 2x2 cell, rows and cols 0, 2, ..., 14       64 (25 %)
``1_9``   one per 3x3 cell, rows and cols 0, 3, ..., 15       36 (14.1 %)
``1_16``  one per 4x4 cell, rows and cols 1, 5, 9, 13         16 (6.25 %)
``0``     none: the continuous stream alone                   0
========  ==================================================  ==========

16 is not a multiple of 3, so ``1_9`` keeps a 6x6 lattice (the last row and column at 15)
rather than exactly a ninth. Wire ids are fixed here, never derived from list order.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from hfstream.geometry import GRID
from hfstream.protocol.schedules import Schedule

__all__ = ["GRID", "Schedule", "kept_mask", "kept_positions", "withheld_positions"]


@cache
def _mask(schedule: Schedule) -> np.ndarray:
    r, c = np.mgrid[0:GRID, 0:GRID]
    if schedule == Schedule.NONE:
        m = np.zeros((GRID, GRID), bool)
    elif schedule == Schedule.ALL:
        m = np.ones((GRID, GRID), bool)
    elif schedule == Schedule.HALF:
        m = (r + c) % 2 == 0
    elif schedule == Schedule.QUARTER:
        m = (r % 2 == 0) & (c % 2 == 0)
    elif schedule == Schedule.NINTH:
        m = (r % 3 == 0) & (c % 3 == 0)
    elif schedule == Schedule.SIXTEENTH:
        m = (r % 4 == 1) & (c % 4 == 1)
    else:  # pragma: no cover - IntEnum is closed
        raise ValueError(f"Unknown schedule {schedule!r}")
    m.setflags(write=False)
    return m


def kept_mask(schedule: Schedule) -> np.ndarray:
    """(16, 16) read-only bool array, True where the index is sent in tier 1."""
    return _mask(Schedule.parse(schedule))


def kept_positions(schedule: Schedule) -> np.ndarray:
    """Flat positions (row * 16 + col) of the kept indices, in raster order."""
    return np.flatnonzero(kept_mask(schedule).ravel())


def withheld_positions(schedule: Schedule) -> np.ndarray:
    """Flat positions of the withheld indices (tier 2), in raster order."""
    return np.flatnonzero(~kept_mask(schedule).ravel())
