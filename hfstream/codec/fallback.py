"""A fallback picture for patches whose tier 0 is lost.

A patch's tier 0 carries everything its picture needs: when it is lost and cannot be
rebuilt, the decoder borrows the neighbours' latents, which gives back the colours
around it but not its subject. Under heavy loss that one patch rules the frame's quality.

The fallback is the whole frame's tier 0 coded again at a quarter of its size in each
direction (``FALLBACK_SCALE``), at rung 0: a small string, one packet for a 768x512
frame. It travels as tier 0 in packets of its own (``PacketType.FALLBACK``), so a loss
that takes a patch's packet seldom takes it too, and the decoder shows its up-scaled
picture where a patch's own tier 0 is missing, faded out over a few pixels into the
patches that came. The frame planner sends it only where its expected gain under the
reported loss pays for its bytes. What it costs and gives on the validation photos:
docs/notebook/loss-sweeps.md.

The blending here is pure numpy; coding the small frame asks the codec for tier 0 alone
(``Tier0Encoder``), so this module does not import the codec.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

import numpy as np
from PIL import Image, ImageFilter

from hfstream.codec.encoded import EncodedImage
from hfstream.codec.rates import PerPatch, RungChoice
from hfstream.codec.scaling import scalable
from hfstream.geometry import PATCH, Scale, patch_count

FALLBACK_SCALE = 4
# The fallback fades out over this many pixels into the patches that came: their first
# pixels next to a lost patch carry some of its borrowed latent (the decoders are
# convolutional), so the lost patch is all fallback up to its border and the fade lies
# beyond it.
BLEND_PX = 16


def fallback_scale(enc: EncodedImage) -> int | None:
    """The scale ``enc``'s fallback is coded at, None where it has none: the frame must
    be coded above that scale and its shown sides divisible by it."""
    height, width = enc.shown_size
    ok = enc.scale < FALLBACK_SCALE and scalable(height, width, FALLBACK_SCALE)
    return FALLBACK_SCALE if ok else None


class Tier0Encoder(Protocol):
    """What the fallback needs of a codec (``HybridCodec`` is one)."""

    def encode_tier0(
        self,
        image: np.ndarray,
        *,
        rate: RungChoice | None = None,
        codebook_size: int | None = None,
        scale: Scale = 1,
    ) -> EncodedImage: ...


def encode_fallback(codec: Tier0Encoder, image: np.ndarray, enc: EncodedImage) -> EncodedImage:
    """``enc`` (a coding of ``image``) with its fallback: ``image`` coded at
    ``FALLBACK_SCALE``, tier 0 alone, at the lowest rung."""
    scale = fallback_scale(enc)
    if scale is None:
        raise ValueError(
            f"a frame shown at {enc.shown_size} from 1/{enc.scale} has no fallback: its sides "
            f"must be divisible by {FALLBACK_SCALE} and its scale below it"
        )
    return replace(enc, fallback=encode_small(codec, image, scale, enc.codebook_size))


def encode_small(
    codec: Tier0Encoder,
    image: np.ndarray,
    scale: Scale = FALLBACK_SCALE,
    codebook_size: int | None = None,
) -> EncodedImage:
    """``image`` coded at 1/``scale``, tier 0 alone, every patch at rung 0 (no quality
    floor: the fallback is the cheapest picture of the frame)."""
    height, width = image.shape[0] // scale, image.shape[1] // scale
    rungs = (0,) * patch_count(height, width)
    return codec.encode_tier0(image, rate=PerPatch(rungs), codebook_size=codebook_size, scale=scale)


def lost_mask(enc: EncodedImage) -> np.ndarray:
    """(rows, cols) bool: the patches of ``enc`` without tier 0."""
    rows, cols = enc.grid
    return np.array([p.continuous is None for p in enc.patches]).reshape(rows, cols)


def patch_weights(lost: np.ndarray, scale: Scale, height: int, width: int) -> np.ndarray:
    """(height, width) float32 in [0, 1]: how much of the fallback to show at each pixel
    of a picture shown at ``scale`` times its patches' size, 1 inside lost patches and
    fading to 0 over ``BLEND_PX`` pixels into the patches that came."""
    side = int(PATCH * scale)
    mask = np.kron(lost.astype(np.uint8) * 255, np.ones((side, side), np.uint8))
    mask = mask[:height, :width]
    if lost.all() or not lost.any():
        return mask.astype(np.float32) / 255
    half = BLEND_PX // 2
    grown = Image.fromarray(mask).filter(ImageFilter.MaxFilter(2 * half + 1))
    soft = grown.filter(ImageFilter.BoxBlur(half))
    return np.asarray(soft, np.float32) / 255


def blend_fallback(
    picture: np.ndarray, fallback: np.ndarray, lost: np.ndarray, scale: Scale
) -> np.ndarray:
    """``picture`` (shown size, uint8) with ``fallback`` (the fallback's picture, same size)
    shown over the ``lost`` patches."""
    w = patch_weights(lost, scale, *picture.shape[:2])[..., None]
    out = picture.astype(np.float32) * (1 - w) + fallback.astype(np.float32) * w
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def patch_errors(
    image: np.ndarray, picture: np.ndarray, grid: tuple[int, int], scale: Scale
) -> np.ndarray:
    """(rows * cols,) mean squared error (pixels in [0, 1]) of ``picture`` against
    ``image`` over each patch of a frame coded at 1/``scale`` (what the planner prices a
    lost patch at when the fallback arrives)."""
    rows, cols = grid
    side = int(PATCH * scale)
    diff = (image.astype(np.float64) - picture.astype(np.float64)) / 255
    sq = (diff**2).mean(axis=2)
    out = np.empty(rows * cols)
    for r in range(rows):
        for c in range(cols):
            out[r * cols + c] = sq[r * side : (r + 1) * side, c * side : (c + 1) * side].mean()
    return out
