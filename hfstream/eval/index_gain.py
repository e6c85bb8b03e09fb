"""``python -m hfstream.eval.index_gain DIR``: what each schedule's indices add, in dB.

For every photo, the frame is coded at the default rung and decoded with the continuous
stream alone, then in hybrid mode with each schedule's kept indices (``0``: none, the
predictor fills every index from ŷc). The gain of a schedule is the mean over photos of
its PSNR minus the continuous-only PSNR. ``hfstream.train export`` stores the table in
the model's config as ``index_gain_db``; ``hfstream.planning`` prices indices with it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hfstream.codec.hybrid import HybridCodec, to_uint8_image
from hfstream.codec.schedules import Schedule
from hfstream.eval.metrics import psnr

SCHEDULES = ("0", "1_16", "1_9", "1_4", "1_2", "1_1")


def index_gain_db(
    codec: HybridCodec, images: Sequence[np.ndarray | str | Path], progress: bool = True
) -> dict[str, float]:
    """Mean dB over ``images`` that each schedule adds to the continuous-only picture."""
    gains: dict[str, list[float]] = {s: [] for s in SCHEDULES}
    for image in tqdm(images, desc="index gain", disable=not progress):
        ref = to_uint8_image(image)
        full = codec.encode(ref, "1_1")
        base = psnr(ref, codec.decode(full.without_indices(), mode="continuous"))
        for label in SCHEDULES:
            sched = Schedule.parse(label)
            enc = replace(full, patches=tuple(replace(p, schedule=sched) for p in full.patches))
            gains[label].append(psnr(ref, codec.decode(enc.kept_only(), mode="hybrid")) - base)
    return {s: round(float(np.mean(v)), 3) for s, v in gains.items()}


def spread(files: Sequence[Path], count: int) -> list[np.ndarray]:
    """``count`` photos spread evenly over ``files`` (sorted names group by source), each
    centre-cropped to at most 768x512 so that measuring stays quick."""
    picks = [files[i] for i in np.linspace(0, len(files) - 1, min(count, len(files))).astype(int)]
    out = []
    for f in picks:
        img = to_uint8_image(f)
        h, w = min(img.shape[0], 512), min(img.shape[1], 768)
        top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
        out.append(img[top : top + h, left : left + w])
    return out


def main(argv: list[str] | None = None) -> int:
    from hfstream.train.data import list_images

    p = argparse.ArgumentParser(prog="python -m hfstream.eval.index_gain", description=__doc__)
    p.add_argument("folder", help="photos to measure on")
    p.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    p.add_argument("--photos", type=int, default=8, help="how many, spread over the folder")
    args = p.parse_args(argv)
    images = spread(list_images(args.folder), args.photos)
    print(json.dumps(index_gain_db(HybridCodec.from_pretrained(args.model), images)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
