"""The continuous picture of a region of patches: their ŷc (borrowed from the neighbours
where a patch's tier 0 is missing), synthesised to the thumbnail and up-sampled to full
size. Every decode mode starts here; ``continuous`` mode ends here."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass

import torch

from hfstream.codec.caches import LRU
from hfstream.codec.continuous import (
    ContinuousCodec,
    fill_missing_blocks,
    fill_missing_pixels,
    from_blocks,
    to_blocks,
)
from hfstream.codec.encoded import EncodedPatch
from hfstream.codec.upsampler import LearnedUpsampler


@dataclass(frozen=True)
class RegionLatents:
    """A region of rows x cols patches as the continuous stream gives it."""

    blocks: torch.Tensor  # (n, M, 4, 4) ŷc per patch, the missing ones borrowed
    frame: torch.Tensor  # (1, M, 4R, 4C) the same blocks as one map
    low: torch.Tensor  # (1, 3, 64R, 64C) the thumbnail, missing patches from their neighbours


@torch.inference_mode()
def region_latents(
    continuous: ContinuousCodec,
    latents: Callable[[list[EncodedPatch]], torch.Tensor],
    patches: list[EncodedPatch],
    cols: int,
    *,
    context: torch.Tensor | None = None,
) -> RegionLatents | None:
    """The region of ``patches`` (row-major, ``cols`` a row) from the ŷc of those with
    tier 0 (``latents``: ``HybridCodec.latents``); None where none has it.

    A patch whose tier 0 is missing borrows ŷc from its neighbours, and its thumbnail is
    filled from their pixels (``fill_missing_pixels``). With ``context`` (1,3,256R,256C)
    in [0, 1], the region's picture from elsewhere (a predicted frame's reference), such
    a patch takes the ŷc and the thumbnail of that picture instead: the coded patches
    beside it are then synthesised and up-sampled next to what will be shown there, not
    next to a guess (4 dB better on a patch between reused ones)."""
    rows = len(patches) // cols
    present = torch.tensor([p.continuous is not None for p in patches])
    has_c = torch.nonzero(present).flatten().tolist()
    if not has_c:
        return None
    own = latents([patches[i] for i in has_c])
    blocks = own.new_zeros((len(patches), *own.shape[1:]))
    blocks[present] = own
    if context is None or bool(present.all()):  # nothing to take from the context
        blocks = fill_missing_blocks(blocks, present, rows, cols)
        frame = from_blocks(blocks, rows, cols)
        low = fill_missing_pixels(continuous.synthesize(frame), present, rows, cols)
        return RegionLatents(blocks, frame, low)
    known = continuous.downsample(context)
    guessed = context_blocks(continuous, known)
    blocks[~present] = guessed[~present].to(blocks.dtype)
    frame = from_blocks(blocks, rows, cols)
    synthesised = continuous.synthesize(frame)
    ph, pw = synthesised.shape[-2] // rows, synthesised.shape[-1] // cols
    mask = present.reshape(1, 1, rows, cols).repeat_interleave(ph, 2).repeat_interleave(pw, 3)
    return RegionLatents(blocks, frame, torch.where(mask, synthesised, known))


# A flat context (a residual frame's zero difference, mid-grey) gives the same ŷc every
# frame: it is analysed once per size and colour (24 ms a 768x512 frame otherwise).
_FLAT_BLOCKS: weakref.WeakKeyDictionary[ContinuousCodec, LRU[tuple, torch.Tensor]] = (
    weakref.WeakKeyDictionary()
)


@torch.inference_mode()
def context_blocks(continuous: ContinuousCodec, known: torch.Tensor) -> torch.Tensor:
    """ŷc blocks (P, M, 4, 4) of the thumbnail ``known`` (1,3,64R,64C) at the top rung:
    what a patch without tier 0 takes from a predicted frame's reference."""
    corner = known[..., :1, :1]
    if not bool((known == corner).all()):
        return to_blocks(continuous.quantized_latent(known, continuous.rungs - 1))
    weights = sum(p._version for p in continuous.parameters())  # trained in place since?
    key = (tuple(known.shape), tuple(corner.flatten().tolist()), weights)
    kept = _FLAT_BLOCKS.setdefault(continuous, LRU(4))
    found = kept.get_many([key])
    if key in found:
        return found[key]
    blocks = to_blocks(continuous.quantized_latent(known, continuous.rungs - 1))
    kept.put_many([(key, blocks)])
    return blocks


@torch.inference_mode()
def continuous_picture(
    continuous: ContinuousCodec,
    upsampler: LearnedUpsampler | None,
    low: torch.Tensor,
    y_hat: torch.Tensor,
) -> torch.Tensor:
    """The thumbnail ``low`` (1,3,h,w) that ``y_hat`` (1,M,h/16,w/16) synthesises, at
    full size (1,3,4h,4w) in [0, 1]: by the learned ``upsampler``, or (None) by the
    ``continuous`` stream's interpolation (``ContinuousCodec.shown``)."""
    if upsampler is None:
        return continuous.shown(low).clamp(0, 1)
    return upsampler(low, y_hat).clamp(0, 1)
