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

from hfstream.codec.hybrid import HybridCodec
from hfstream.media.images import spread
from hfstream.planning.gains import index_gain_db


def main(argv: list[str] | None = None) -> int:
    from hfstream.media.images import list_images

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
