"""``python -m sim.still_scene PHOTO...``: how fast a still scene refines itself.

Each photo (cropped to ``--size``) is sent as a clip of ``--frames`` identical frames over
a clean channel at ``--bpp`` per frame, with predicted frames (``sim.temporal_video``,
acknowledgements a ``--rtt-ms`` round trip later). Prints each frame's PSNR and, for
comparison, the picture of the ladder's top rung at the ``FINE`` scale: the best a
still patch can become.
"""

from __future__ import annotations

import sys

import numpy as np

import hfstream.arguments as a
from sim import cli


def main(argv: list[str] | None = None) -> int:
    p = cli.parser("python -m sim.still_scene", __doc__)
    p.add_argument("photos", nargs="+", help="images")
    p.add_argument("--frames", type=a.positive_int, default=20, help="frames of each clip")
    p.add_argument("--bpp", type=a.positive_float, default=0.05, help="budget per frame")
    p.add_argument("--size", default="512x768", help="HxW crop of each photo")
    p.add_argument("--fps", type=a.positive_int, default=10, help="frame rate")
    p.add_argument("--rtt-ms", type=a.positive_float, default=100.0, help="round trip")
    args = p.parse_args(argv)
    try:
        height, width = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        p.error(f'--size must be HxW, e.g. 512x768, got "{args.size}"')
    from hfstream.codec.frames import to_uint8_image
    from hfstream.codec.hybrid import HybridCodec
    from hfstream.codec.rates import Fixed
    from hfstream.eval.metrics import psnr
    from hfstream.geometry import FINE
    from sim.loss import NoLoss
    from sim.temporal_video import hfstream_temporal_deliver

    codec = HybridCodec.from_pretrained()
    for path in args.photos:
        try:
            image = to_uint8_image(path)[:height, :width]
        except (OSError, ValueError) as e:
            p.error(f"{path}: {e}")
        image = np.ascontiguousarray(image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2])
        budget = int(args.bpp * image.shape[0] * image.shape[1] / 8)
        clip = [image] * args.frames
        d = hfstream_temporal_deliver(
            codec, clip, budget, NoLoss(), fps=args.fps, rtt_ms=args.rtt_ms
        )
        top = codec.continuous.rungs - 1
        best = codec.decode(codec.encode_tier0(image, rate=Fixed(top), scale=FINE))
        per_frame = " ".join(f"{psnr(image, s):.2f}" for s in d.shown)
        print(f"{path}: {per_frame} dB; FINE top rung {psnr(image, best):.2f} dB ({d.detail})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
