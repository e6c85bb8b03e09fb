"""Decoding one region of patches (a band of patch rows, ``frames.row_bands``) in the mode
asked for: the continuous picture, the VQ decoder's picture of the indices, or the hybrid
picture (through the index refiner, or the legacy correction decoder).

Indices are filled patch by patch (each with its own ŷc); the conv decoders then run
over the whole region with per-patch normalisation (``codec.tiling``), so no seam
shows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import torch

from hfstream.codec.codebooks import ReducedCodebook
from hfstream.codec.continuous import ContinuousCodec
from hfstream.codec.continuous_picture import continuous_picture, region_latents
from hfstream.codec.correction import CorrectionDecoder, certainty_planes
from hfstream.codec.encoded import EncodedImage, EncodedPatch
from hfstream.codec.fallback import lost_mask
from hfstream.codec.fills import FillMethod, PriorFill, fill_codes
from hfstream.codec.frames import row_bands, to_tensor, to_uint8
from hfstream.codec.legacy import corrected_picture
from hfstream.codec.modes import DecodeMode
from hfstream.codec.predictor import MaskedTokenPredictor
from hfstream.codec.refined_picture import refined_picture
from hfstream.codec.refiner import IndexRefiner
from hfstream.codec.temporal import paste_patches
from hfstream.codec.tiling import from_tiles, patch_grid
from hfstream.codec.tokenizer import Tokenizer
from hfstream.codec.upsampler import LearnedUpsampler
from hfstream.geometry import PATCH


class DecoderParts(Protocol):
    """What a region's decoding reads of the codec (``HybridCodec`` is one)."""

    model_id: int
    tokenizer: Tokenizer
    continuous: ContinuousCodec
    predictor: MaskedTokenPredictor
    upsampler: LearnedUpsampler | None
    refiner: IndexRefiner | None
    correction: CorrectionDecoder | None

    def latents(self, patches: list[EncodedPatch]) -> torch.Tensor: ...

    def prior_fill(self, y_hat: torch.Tensor) -> PriorFill: ...


@torch.inference_mode()
def decode_region(
    parts: DecoderParts,
    patches: Sequence[EncodedPatch],
    cols: int,
    *,
    reduction: ReducedCodebook | None,
    mode: DecodeMode,
    fill: FillMethod,
    steps: int,
    context: np.ndarray | None = None,
) -> np.ndarray:
    """Decode ``patches`` (row-major, ``cols`` a row) as one picture, (rows*256,
    cols*256, 3) uint8. ``mode`` is not ``auto`` and ``fill`` not ``auto``. ``context``:
    the region's picture (same size, uint8) that patches without tier 0 will show
    (``region_latents``)."""
    patches = list(patches)
    rows = len(patches) // cols
    seen = None if context is None else to_tensor(context[None])
    region = region_latents(parts.continuous, parts.latents, patches, cols, context=seen)
    if mode == "continuous":
        if region is None:
            return np.full((rows * PATCH, cols * PATCH, 3), 128, np.uint8)
        return to_uint8(
            continuous_picture(parts.continuous, parts.upsampler, region.low, region.frame)
        )[0]
    filled = fill_codes(
        parts.tokenizer,
        parts.predictor,
        patches,
        None if region is None else region.blocks,
        reduction=reduction,
        fill=fill,
        steps=steps,
        prior=parts.prior_fill,
    )
    codes = from_tiles(filled.codes.contiguous(), rows, cols)
    if mode == "hybrid" and region is not None:
        certainty = from_tiles(certainty_planes(filled.known, filled.confidence), rows, cols)
        if parts.refiner is not None:
            base = continuous_picture(parts.continuous, parts.upsampler, region.low, region.frame)
            out = refined_picture(
                parts.refiner,
                parts.tokenizer,
                base,
                codes=codes,
                certainty=certainty,
                grid=(rows, cols),
            )
            return to_uint8(out)[0]
        if parts.correction is None:
            raise ValueError(
                f"model {parts.model_id:08x} has neither an index refiner nor a correction "
                "decoder: no hybrid picture"
            )
        out = corrected_picture(
            parts.correction,
            parts.tokenizer,
            region,
            codes=codes,
            certainty=certainty,
            grid=(rows, cols),
        )
    else:
        with patch_grid(rows, cols):
            out = parts.tokenizer.decoder(codes, None)
    picture = to_uint8(out)[0]
    if region is None:  # nothing to go on at all: mid-grey, as a blank patch
        for i in range(len(patches)):
            if not bool(filled.known[i].any()):
                r, c = divmod(i, cols)
                picture[r * PATCH : (r + 1) * PATCH, c * PATCH : (c + 1) * PATCH] = 128
    return picture


def decode_bands(
    parts: DecoderParts,
    enc: EncodedImage,
    *,
    reduction: ReducedCodebook | None,
    mode: DecodeMode,
    fill: FillMethod,
    steps: int,
    context: np.ndarray | None = None,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Every patch of ``enc`` decoded band by band (``frames.row_bands``), (rows*256,
    cols*256, 3) uint8. With ``context`` (a predicted frame's moved reference at the coded
    size, padded to the grid: ``temporal.coded_reference``), patches without tier 0 show
    it, and bands without any tier 0 are not decoded. ``progress``: called with the
    number of patches just done."""
    rows, cols = enc.grid
    picture = np.empty((rows * PATCH, cols * PATCH, 3), np.uint8)
    lost = lost_mask(enc)
    for lo, hi, start, stop in row_bands(rows, cols):
        if context is None or not lost[start:stop].all():
            band = decode_region(
                parts,
                enc.patches[lo * cols : hi * cols],
                cols,
                reduction=reduction,
                mode=mode,
                fill=fill,
                steps=steps,
                context=None
                if context is None
                else np.ascontiguousarray(context[lo * PATCH : hi * PATCH]),
            )
            picture[start * PATCH : stop * PATCH] = band[(start - lo) * PATCH : (stop - lo) * PATCH]
        if progress is not None:
            progress((stop - start) * cols)
    if context is not None:
        # The deblocking filter then sees the reference beside the coded patches.
        paste_patches(picture, context, lost)
    return picture
