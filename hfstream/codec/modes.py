"""Which picture a frame is shown as: the rule behind ``decode(mode="auto")``, in one place.

The hybrid picture costs a receiver several times the continuous picture's time (index
priors, the fill, the refiner; docs/notebook/speed.md), so a schedule must add a visible
gain over the continuous picture to be shown, or planned. Torch-free."""

from __future__ import annotations

from typing import Literal

import numpy as np

from hfstream.codec.encoded import MISSING, EncodedImage
from hfstream.codec.schedules import Schedule, kept_positions
from hfstream.geometry import TOKENS

DecodeMode = Literal["continuous", "vq", "hybrid", "auto"]
MODES = ("continuous", "vq", "hybrid", "auto")
# dB a schedule must add over the continuous picture for its frames to be shown hybrid.
MIN_SHOWN_GAIN_DB = 0.1


def check_mode(mode: str) -> DecodeMode:
    if mode not in MODES:
        raise ValueError(f'Invalid mode "{mode}", should be continuous, vq, hybrid or auto')
    return mode  # type: ignore[return-value]


def shown_gains(index_gain_db: dict[str, float] | None) -> dict[str, float] | None:
    """``index_gain_db`` (label -> dB the schedule adds, as the model measured it) with
    every gain below ``MIN_SHOWN_GAIN_DB`` as 0: what a schedule adds to the picture shown
    in ``auto`` mode, and what the frame planner may count on. None stays None."""
    if index_gain_db is None:
        return None
    return {s: g if g >= MIN_SHOWN_GAIN_DB else 0.0 for s, g in index_gain_db.items()}


def gain_at_share(gains: dict[str, float], share: float) -> float:
    """The gain of the densest schedule in ``gains`` (label -> dB) whose kept share of
    index positions is at most ``share`` (0 when none is)."""
    fitting = [
        (len(kept_positions(Schedule.parse(label))), gain)
        for label, gain in gains.items()
        if len(kept_positions(Schedule.parse(label))) <= share * TOKENS + 1e-6
    ]
    return max(fitting)[1] if fitting else 0.0


def auto_mode(
    enc: EncodedImage, gains: dict[str, float] | None, index_share: float | None = None
) -> DecodeMode:
    """``hybrid``, or ``continuous`` when the indices that arrived add nothing by the
    ``gains`` (``shown_gains``; None: unknown, always ``hybrid``). A frame without any
    tier 0 is ``hybrid``: its indices are all there is.

    What the indices add is read off the share of index positions known among the
    patches with tier 0 (``index_share``, or counted in ``enc``): the gain of the
    densest schedule that keeps no more than that share. So a ``1_4`` frame whose
    withheld indices (tier 2) also arrived is shown as the ``1_1`` frame it now is,
    and one that lost its tier 1 as what is left of it."""
    present = [p for p in enc.patches if p.continuous is not None]
    if gains is None or not present:
        return "hybrid"
    if index_share is None:
        index_share = float(np.mean([(p.indices != MISSING).mean() for p in present]))
    return "continuous" if gain_at_share(gains, index_share) <= 0 else "hybrid"
