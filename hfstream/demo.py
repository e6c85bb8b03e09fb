"""The built-in demo: code a bundled photo in every decode mode and report.

The photo is matplotlib's ``grace_hopper.jpg`` sample (matplotlib is a dependency), so
the demo needs no file of its own and no network.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image

from hfstream import container
from hfstream.codec.hybrid import HybridCodec, to_uint8_image
from hfstream.eval.metrics import all_metrics


def bundled_image() -> np.ndarray:
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return to_uint8_image(Image.open(f))


def run_demo(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    codec = HybridCodec.from_pretrained()
    img = bundled_image()
    print(f"model {codec.name} ({codec.model_id:08x}) loaded in {time.perf_counter() - t0:.1f} s")
    Image.fromarray(img).save(out / "original.png")
    h, w = img.shape[:2]
    print(f"image {w}x{h}, {len(codec.encode(img, '1_1').patches)} patches of 256x256")
    print(
        f"{'decode':34s} {'bytes':>7s} {'bpp':>7s} {'PSNR':>6s} "
        f"{'MS-SSIM':>8s} {'HaarPSI':>8s} {'ms':>6s}"
    )
    cases = [
        ("preview (tier 0 only)", "0", "hybrid", "preview.png"),
        ("continuous only", "0", "continuous", "continuous.png"),
        ("hybrid, dynamic schedule", "auto", "hybrid", "hybrid_auto.png"),
        ("hybrid, 1_9", "1_9", "hybrid", "hybrid_1_9.png"),
        ("hybrid, 1_4", "1_4", "hybrid", "hybrid_1_4.png"),
        ("hybrid, all indices", "1_1", "hybrid", "hybrid_all.png"),
        ("vq only, all indices", "1_1", "vq", "vq_all.png"),
    ]
    for label, schedule, mode, name in cases:
        enc = codec.encode(img, schedule=schedule)
        data = container.write(enc, codec)
        t1 = time.perf_counter()
        dec = codec.decode(container.read(data, codec), mode=mode)
        ms = 1000 * (time.perf_counter() - t1)
        Image.fromarray(dec).save(out / name)
        m = all_metrics(img, dec)
        print(
            f"{label:34s} {len(data):7d} {8 * len(data) / (h * w):7.4f} {m['psnr']:6.2f} "
            f"{m['ms_ssim']:8.4f} {m['haarpsi']:8.4f} {ms:6.0f}"
        )
    print(f"pictures in {out}/")
    return 0
