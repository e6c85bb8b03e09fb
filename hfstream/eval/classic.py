"""JPEG, WebP and AVIF at a byte budget, each at its best downscale factor.

At the rates hfstream works at (about 0.05 bpp) these codecs cannot reach the budget at
full resolution, so a practical user downscales first. For each codec and each factor in
``FACTORS`` the largest quality whose file fits the budget is found by bisection; the
picture is upscaled back (bicubic) and the factor with the best PSNR is kept.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from hfstream.eval.metrics import psnr

FACTORS = (1, 2, 4, 8)
CODECS = {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}


@dataclass(frozen=True)
class ClassicResult:
    codec: str
    factor: int
    quality: int
    bytes: int
    image: np.ndarray


def encode_pillow(img: Image.Image, fmt: str, quality: int) -> bytes:
    buf = io.BytesIO()
    opts: dict = {"quality": quality}
    if fmt == "JPEG":
        opts["optimize"] = True
    if fmt == "WEBP":
        opts["method"] = 6
    if fmt == "AVIF":
        opts["speed"] = 6
    img.save(buf, format=fmt, **opts)
    return buf.getvalue()


def encode_at(ref: np.ndarray, codec: str, factor: int, quality: int) -> bytes:
    """``ref`` downscaled by ``factor`` and coded with ``codec`` at ``quality``: the file
    behind a ``ClassicResult``."""
    h, w = ref.shape[:2]
    small = Image.fromarray(ref).resize(
        (max(1, round(w / factor)), max(1, round(h / factor))), Image.Resampling.LANCZOS
    )
    return encode_pillow(small, CODECS[codec], quality)


def fit_budget(ref: np.ndarray, codec: str, budget: int) -> ClassicResult | None:
    """Best-PSNR encoding of ``ref`` with ``codec`` in at most ``budget`` bytes, or None."""
    fmt = CODECS[codec]
    h, w = ref.shape[:2]
    src = Image.fromarray(ref)
    best: ClassicResult | None = None
    best_psnr = -1.0
    for f in FACTORS:
        small = src.resize((max(1, round(w / f)), max(1, round(h / f))), Image.Resampling.LANCZOS)
        lo, hi, found = 0, 100, None
        while lo <= hi:
            q = (lo + hi) // 2
            data = encode_pillow(small, fmt, q)
            if len(data) <= budget:
                found, lo = (q, data), q + 1
            else:
                hi = q - 1
        if found is None:
            continue
        with Image.open(io.BytesIO(found[1])) as im:
            dec = im.convert("RGB").resize((w, h), Image.Resampling.BICUBIC)
        out = np.asarray(dec)
        p = psnr(ref, out)
        if p > best_psnr:
            best_psnr = p
            best = ClassicResult(codec, f, found[0], len(found[1]), out)
    return best
