"""``python -m sim.temporal_coding --video CLIP``: three ways to code a changed patch of a
predicted frame, rung by rung, at the same strings.

For frames ``t`` of the clip (every ``--step``-th from ``--back``), the reference is frame
``t - back`` decoded at ``--reference-rung``, and each patch of frame ``t`` is aligned with
it by the codec's motion search. Every patch is then coded (none reused), at each rung:

- ``intra``: its own strings, decoded as an intra frame;
- ``synthesis``: the same strings decoded as a predicted frame, through the model's
  temporal synthesis (conditional on the aligned reference, plus each patch's motion entry;
  only for a model that has one);
- ``residual``: the difference from the aligned reference coded by the model's residual
  stream (its picture stream where it has none) and added back (a residual predicted
  frame, ``codec.temporal.residual_picture``).

``reuse`` is the aligned reference alone (0 bytes). Prints mean bytes per frame and
PSNR per rung and method, and for ``intra`` and ``residual`` the PSNR that the rung
table predicts (``est``, what ``planning.temporal`` plans with), with the mean of
decoded less predicted: how far the planner's two estimates are from what decodes.
"""

from __future__ import annotations

import sys

import numpy as np

import hfstream.arguments as a
from sim import cli


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
    from hfstream.codec.motion import motion_picture, search
    from hfstream.codec.rates import Fixed, PerPatch
    from hfstream.codec.temporal import (
        RESIDUAL_GAIN,
        predicted,
        residual_picture,
    )
    from hfstream.eval.metrics import psnr
    from hfstream.geometry import FINE
    from hfstream.media.video import read_frames
    from hfstream.planning.temporal import motion_entry_bytes

    scale = FINE if args.scale == "fine" else 1
    codec = HybridCodec.from_pretrained(args.model)
    frames = list(read_frames(args.video, args.frames))
    rungs = codec.continuous.rungs
    methods = ("intra", "synthesis", "residual") if codec.temporal else ("intra", "residual")
    rows: dict[str, list[list[tuple[int, float]]]] = {
        m: [[] for _ in range(rungs)] for m in methods
    }
    reuse = []
    estimated: dict[str, list[list[float]]] = {m: [[] for _ in range(rungs)] for m in rows}
    for t in range(args.back, len(frames), args.step):
        image = frames[t]
        ref_enc = codec.encode_tier0(
            frames[t - args.back], rate=Fixed(args.reference_rung), scale=scale
        )
        reference = codec.decode(ref_enc)
        grid = ref_enc.grid
        motion, _, _ = search(image, reference, grid, scale)
        aligned = motion_picture(reference, motion, grid, scale)
        diff = residual_picture(image, aligned)
        coder = codec.residual_coder
        tables = {
            "intra": codec.rung_table(image, scale).error,
            "residual": coder.rung_table(diff, scale).error * RESIDUAL_GAIN**2,
        }
        for r in range(rungs):
            for m, table in tables.items():
                estimated[m][r].append(float(-10 * np.log10(table[:, r].mean())))
            # Every patch at the rung (no quality floor, which would lift the residual's).
            rate = PerPatch((r,) * (grid[0] * grid[1]))
            enc = codec.encode_tier0(image, rate=rate, scale=scale)
            size = sum(q.continuous_bytes for q in enc.patches)
            rows["intra"][r].append((size, psnr(image, codec.decode(enc))))
            frame = predicted(enc, set(), reference=t - args.back, motion=motion)
            moves = int(motion_entry_bytes(motion).sum())
            if "synthesis" in rows:
                shown = codec.decode(frame, reference=reference)
                rows["synthesis"][r].append((size + moves, psnr(image, shown)))
            renc = coder.encode_tier0(diff, rate=rate, scale=scale)
            rsize = sum(q.continuous_bytes for q in renc.patches)
            rframe = predicted(renc, set(), reference=t - args.back, motion=motion, residual=True)
            rebuilt = codec.decode(rframe, reference=reference)
            rows["residual"][r].append((rsize + moves, psnr(image, rebuilt)))
        reuse.append(psnr(image, aligned))
        print(f"frame {t} done", file=sys.stderr)
    print(f"reuse (0 B): {np.mean(reuse):.2f} dB over {len(reuse)} frames")
    names = [f"{m} B / dB" + (" (est)" if m in tables else "") for m in rows]
    print("| rung | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(rows))
    for r in range(rungs):
        cells = []
        for m in rows:
            size, quality = np.mean([b for b, _ in rows[m][r]]), np.mean([q for _, q in rows[m][r]])
            est = f" ({np.mean(estimated[m][r]):.2f})" if m in tables else ""
            cells.append(f"{size:.0f} / {quality:.2f}{est}")
        print(f"| {r} | " + " | ".join(cells) + " |")
    for m in tables:
        pairs = [zip(rows[m][r], estimated[m][r], strict=True) for r in range(rungs)]
        gaps = [q - e for pair in pairs for (_, q), e in pair]
        print(f"{m}: decoded - estimated {np.mean(gaps):+.2f} dB (sd {np.std(gaps):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
