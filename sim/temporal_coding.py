"""``python -m sim.temporal_coding --video CLIP``: three ways to code a changed patch of a
predicted frame, rung by rung, at the same strings.

For frames ``t`` of the clip (every ``--step``-th from ``--back``), the reference is frame
``t - back`` decoded at ``--reference-rung``, and each patch of frame ``t`` is aligned with
it by the codec's motion search. Every patch is then coded (none reused), at each rung:

- ``intra``: its own strings, decoded as an intra frame;
- ``synthesis``: the same strings decoded as a predicted frame, through the model's
  temporal synthesis (conditional on the aligned reference; 6 bytes of motion a patch;
  only for a model that has one);
- ``residual``: the difference from the aligned reference coded with the same model and
  added back (a residual predicted frame, ``codec.temporal.residual_picture``): residual
  coding with the intra model, which was never trained on differences.

``reuse`` is the aligned reference alone (0 bytes). Prints mean bytes per frame and
PSNR per rung and method.
"""

from __future__ import annotations

import sys

import numpy as np

import hfstream.arguments as a
from sim import cli

MOTION_BYTES = 6


def main(argv: list[str] | None = None) -> int:
    p = cli.parser("python -m sim.temporal_coding", __doc__)
    p.add_argument("--video", required=True, help="a video file")
    p.add_argument("--frames", type=a.positive_int, default=30, help="frames of the clip read")
    p.add_argument("--back", type=a.positive_int, default=2, help="frames to the reference")
    p.add_argument("--step", type=a.positive_int, default=4, help="frames between samples")
    p.add_argument("--reference-rung", type=int, default=3, help="rung of the reference")
    p.add_argument("--scale", choices=("1", "fine"), default="1", help="coded size")
    p.add_argument("--model", help="model folder (default: the shipped model)")
    args = p.parse_args(argv)
    from hfstream.codec.hybrid import HybridCodec
    from hfstream.codec.motion import search
    from hfstream.codec.rates import Fixed, PerPatch
    from hfstream.codec.temporal import moved_reference, predicted, residual_picture
    from hfstream.eval.metrics import psnr
    from hfstream.geometry import FINE
    from hfstream.media.video import read_frames

    scale = FINE if args.scale == "fine" else 1
    codec = HybridCodec.from_pretrained(args.model)
    frames = list(read_frames(args.video, args.frames))
    rungs = codec.continuous.rungs
    methods = ("intra", "synthesis", "residual") if codec.temporal else ("intra", "residual")
    rows: dict[str, list[list[tuple[int, float]]]] = {
        m: [[] for _ in range(rungs)] for m in methods
    }
    reuse = []
    for t in range(args.back, len(frames), args.step):
        image = frames[t]
        ref_enc = codec.encode_tier0(
            frames[t - args.back], rate=Fixed(args.reference_rung), scale=scale
        )
        reference = codec.decode(ref_enc)
        grid = ref_enc.grid
        motion, _, _ = search(image, reference, grid, scale)
        for r in range(rungs):
            # Every patch at the rung (no quality floor, which would lift the residual's).
            rate = PerPatch((r,) * (grid[0] * grid[1]))
            enc = codec.encode_tier0(image, rate=rate, scale=scale)
            size = sum(q.continuous_bytes for q in enc.patches)
            rows["intra"][r].append((size, psnr(image, codec.decode(enc))))
            frame = predicted(enc, set(), reference=t - args.back, motion=motion)
            moves = int(np.count_nonzero(motion.any(axis=1)))
            if "synthesis" in rows:
                shown = codec.decode(frame, reference=reference)
                rows["synthesis"][r].append((size + MOTION_BYTES * moves, psnr(image, shown)))
            aligned = moved_reference(frame, reference)
            renc = codec.encode_tier0(residual_picture(image, aligned), rate=rate, scale=scale)
            rsize = sum(q.continuous_bytes for q in renc.patches)
            rframe = predicted(renc, set(), reference=t - args.back, motion=motion, residual=True)
            rebuilt = codec.decode(rframe, reference=reference)
            rows["residual"][r].append((rsize + MOTION_BYTES * moves, psnr(image, rebuilt)))
        reuse.append(psnr(image, moved_reference(frame, reference)))
        print(f"frame {t} done", file=sys.stderr)
    print(f"reuse (0 B): {np.mean(reuse):.2f} dB over {len(reuse)} frames")
    print("| rung | " + " | ".join(f"{m} B / dB" for m in rows) + " |")
    print("|---|" + "---:|" * len(rows))
    for r in range(rungs):
        cells = [
            f"{np.mean([b for b, _ in rows[m][r]]):.0f} / {np.mean([q for _, q in rows[m][r]]):.2f}"
            for m in rows
        ]
        print(f"| {r} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
