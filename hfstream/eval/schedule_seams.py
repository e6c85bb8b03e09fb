"""``python -m hfstream.eval.schedule_seams DIR``: one schedule's hybrid picture, per photo.

Each photo is coded at ``--schedule`` (at the default rungs, or with ``--rung R`` asked
for every patch; the quality floor may raise it), its kept indices written as an
``.hfs`` file and decoded in ``hybrid`` mode and as the continuous picture of the same
stream. Printed per photo and as means: the file's bytes, both PSNRs and the hybrid
picture's seam ratio over the original's (``hfstream.eval.metrics.seam_ratio``).
``--refine-steps`` refines the continuous latent at encode time. ``--bytes N`` fits each
photo's file to N bytes: the largest continuous budget (``encode(rate=Budget(..))``,
from rung 0 up) whose unrefined file fits is searched, then coded refined; a photo whose
lowest rungs (after the quality floor) do not fit stays above N.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hfstream.codec.frames import to_uint8_image
from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.rates import Budget, Fixed
from hfstream.eval.metrics import psnr, seam_ratio
from hfstream.files import container


@dataclass(frozen=True)
class ScheduleRow:
    name: str
    bytes: int
    hybrid_psnr: float
    continuous_psnr: float
    seam_ratio: float  # the hybrid picture's, over the original's


def measure(
    codec: HybridCodec,
    image: np.ndarray,
    schedule: str,
    rung: int | None,
    *,
    name: str = "",
    refine_steps: int = 0,
    target_bytes: int | None = None,
) -> ScheduleRow:
    budget = None
    if target_bytes is not None:
        budget = fit_continuous_budget(codec, image, schedule, target_bytes)
        rung = 0 if rung is None else rung
    rate = Fixed(rung) if budget is None else Budget(budget, rung)
    enc = codec.encode(image, schedule, rate=rate, refine_steps=refine_steps).kept_only()
    hybrid = codec.decode(enc, mode="hybrid")
    continuous = codec.decode(enc, mode="continuous")
    return ScheduleRow(
        name,
        len(container.write(enc, codec)),
        psnr(image, hybrid),
        psnr(image, continuous),
        seam_ratio(hybrid) / seam_ratio(image),
    )


def fit_continuous_budget(
    codec: HybridCodec, image: np.ndarray, schedule: str, target_bytes: int
) -> int:
    """The largest continuous budget (bytes, to 12 B) whose ``.hfs`` file at ``schedule``,
    every patch from rung 0, fits ``target_bytes`` unrefined (the smallest tried if none)."""
    lo, hi, best = 64, 8192, 64
    while hi - lo > 12:
        mid = (lo + hi) // 2
        enc = codec.encode(image, schedule, rate=Budget(mid, rung=0)).kept_only()
        if len(container.write(enc, codec)) <= target_bytes:
            best, lo = mid, mid
        else:
            hi = mid
    return best


def main(argv: Sequence[str] | None = None) -> int:
    from hfstream.media.images import list_images

    p = argparse.ArgumentParser(prog="python -m hfstream.eval.schedule_seams", description=__doc__)
    p.add_argument("folder", help="photos to measure on")
    p.add_argument("--schedule", default="1_4")
    p.add_argument("--rung", type=int, default=None, help="ask this rung for every patch")
    p.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    p.add_argument(
        "--refine-steps", type=int, default=0, help="the encoder's refinement of the latent"
    )
    p.add_argument("--bytes", type=int, default=None, help="fit each photo's file to N bytes")
    args = p.parse_args(argv)
    if args.bytes is not None and args.bytes <= 0:
        p.error(f"--bytes must be positive, got {args.bytes}")
    try:
        paths = list_images(args.folder)
    except FileNotFoundError as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return 2
    codec = HybridCodec.from_pretrained(args.model)
    rows = []
    for path in paths:
        row = measure(
            codec,
            to_uint8_image(path),
            args.schedule,
            args.rung,
            name=Path(path).name,
            refine_steps=args.refine_steps,
            target_bytes=args.bytes,
        )
        rows.append(row)
        print(
            f"{row.name:40s} {row.bytes:6d} B  hybrid {row.hybrid_psnr:6.2f} dB  "
            f"continuous {row.continuous_psnr:6.2f} dB  seams {row.seam_ratio:.2f}",
            flush=True,
        )
    seams = [r.seam_ratio for r in rows]
    print(
        f"{len(rows)} photos, {args.schedule}: {np.mean([r.bytes for r in rows]):.0f} B, "
        f"hybrid {np.mean([r.hybrid_psnr for r in rows]):.2f} dB, continuous "
        f"{np.mean([r.continuous_psnr for r in rows]):.2f} dB, seams {np.mean(seams):.2f} "
        f"mean, {max(seams):.2f} worst"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
