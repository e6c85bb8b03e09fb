"""What each schedule's indices add over the continuous stream, in dB: measured for a
model at export (``index_gain_db``, stored in its config) and read by the planner, which
counts a schedule's gain only for the indices that arrive."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from hfstream.codec.schedules import Schedule

if TYPE_CHECKING:
    from hfstream.codec.hybrid import HybridCodec

SCHEDULES = ("0", "1_16", "1_9", "1_4", "1_2", "1_1")  # sparse to dense
# What each schedule adds over the continuous stream, in dB of full-resolution PSNR, for
# a model whose config does not say: model a182b405 on 8 training photos
# (``python -m hfstream.eval.index_gain ../shared/data/photos/train``).
DEFAULT_INDEX_GAIN_DB = {
    "0": 0.062,
    "1_16": 0.113,
    "1_9": 0.183,
    "1_4": 0.254,
    "1_2": 0.561,
    "1_1": 1.458,
}


def _psnr(ref: np.ndarray, out: np.ndarray) -> float:
    mse = float(np.mean((ref.astype(np.float64) - out.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def index_gain_db(
    codec: HybridCodec, images: Sequence[np.ndarray | str | Path], progress: bool = True
) -> dict[str, float]:
    """Mean dB over ``images`` that each schedule adds to the continuous-only picture."""
    # Imported here: the codec's frames load torch, and the planner reads the gains
    # without it.
    from hfstream.codec.frames import to_uint8_image

    gains: dict[str, list[float]] = {s: [] for s in SCHEDULES}
    for image in tqdm(images, desc="index gain", disable=not progress):
        ref = to_uint8_image(image)
        full = codec.encode(ref, "1_1")
        base = _psnr(ref, codec.decode(full.without_indices(), mode="continuous"))
        for label in SCHEDULES:
            sched = Schedule.parse(label)
            enc = replace(full, patches=tuple(replace(p, schedule=sched) for p in full.patches))
            gains[label].append(_psnr(ref, codec.decode(enc.kept_only(), mode="hybrid")) - base)
    return {s: round(float(np.mean(v)), 3) for s, v in gains.items()}
