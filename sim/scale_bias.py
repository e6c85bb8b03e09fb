"""How far the rung table's estimate of each scale is from the picture it decodes.

python -m sim.scale_bias PHOTOS [--count 20] [--rungs 0,2] [--model DIR] [--scales fine,2,4]

For photos spread over the folder (at most 768x512, centre; sides cut to multiples of
64) and each scale that divides them, every patch at each of ``--rungs``: the PSNR the
rung table predicts (``HybridCodec.rung_table``, its bias correction taken out) and the
PSNR of the decoded continuous picture. ``estimates.SCALED_ERROR_BIAS_DB`` holds, per
scale, the mean of (decoded - predicted) at full size less that at the scale, so the
planner compares scales fairly; a model with a FINE stream carries its own FINE entry
(``add-fine --error-bias-db``).
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from hfstream.codec.estimates import SCALED_ERROR_BIAS_DB
from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.rates import Fixed
from hfstream.codec.scaling import scalable
from hfstream.eval.metrics import psnr
from hfstream.geometry import FINE, SCALES, Scale
from hfstream.media.images import list_images, spread


def predicted_db(mse: float) -> float:
    return float(10 * np.log10(1.0 / max(mse, 1e-12)))


def applied_bias_db(codec: HybridCodec, scale: Scale) -> float:
    """What ``codec.rung_table`` raised the errors of ``scale`` by (taken out again)."""
    own = codec.coder_for(scale).fine_error_bias_db if scale == FINE else None
    return SCALED_ERROR_BIAS_DB.get(scale, 0.0) if own is None else own


def parse_scale(text: str) -> Scale:
    if text.lower() == "fine":
        return FINE
    if text not in ("2", "4"):
        raise SystemExit(f"unknown scale {text!r}: fine, 2 or 4")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.scale_bias", description=__doc__)
    p.add_argument("photos", help="folder of photos")
    p.add_argument("--count", type=int, default=20, help="photos spread over the folder")
    p.add_argument("--rungs", default="0,2", help="rungs to measure, comma-separated")
    p.add_argument("--model", help="model folder (default: the shipped one)")
    p.add_argument(
        "--scales", default="", help="scales besides 1, comma-separated (fine, 2, 4; default all)"
    )
    args = p.parse_args(argv)
    try:
        files = list_images(args.photos)
    except FileNotFoundError as e:
        p.error(str(e))
    rungs = [int(r) for r in args.rungs.split(",")]
    codec = HybridCodec.from_pretrained(args.model)
    scales = [1, *(parse_scale(s) for s in args.scales.split(",") if s)]
    if len(scales) == 1:
        scales = list(SCALES)
    gaps: dict[object, list[float]] = {}
    for photo in spread(files, args.count):
        h, w = photo.shape[0] // 64 * 64, photo.shape[1] // 64 * 64
        image = np.ascontiguousarray(photo[:h, :w])
        for scale in scales:
            if not scalable(h, w, scale):
                continue
            table = codec.rung_table(image, scale)
            bias = 10 ** (applied_bias_db(codec, scale) / 10)
            for rung in rungs:
                enc = codec.encode_tier0(image, rate=Fixed(rung), scale=scale)
                shown = codec.decode(enc, mode="continuous")
                est = predicted_db(float(table.error[:, rung].mean()) / bias)
                gaps.setdefault(scale, []).append(psnr(image, shown) - est)
        print(f"{len(gaps[1]) // len(rungs)} photos", flush=True)
    full = statistics.fmean(gaps[1])
    print("scale  decoded - predicted (dB)  bias against full size (dB)")
    for scale, g in gaps.items():
        print(
            f"{str(scale):>5}  {statistics.fmean(g):+.2f} (sd {statistics.pstdev(g):.2f})"
            f"  {full - statistics.fmean(g):+.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
