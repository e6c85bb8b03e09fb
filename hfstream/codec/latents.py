"""Tier 0 both ways: a frame's thumbnail coded to per-patch strings, and strings decoded
back to ŷc, bit for bit as the other end computes it (the index priors are computed from
ŷc, so one changed bit breaks the receiver's index decoding)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from hfstream.codec.caches import LRU
from hfstream.codec.continuous import ContinuousCodec
from hfstream.codec.encoded import EncodedPatch
from hfstream.codec.frames import FrameBands
from hfstream.codec.refinement import refine_latent
from hfstream.codec.upsampler import LearnedUpsampler

BATCH = 8  # patches per forward pass
LATENT_CACHE = 1024  # patches whose ŷc is kept (8 KiB each)

LatentKey = tuple[bytes, bytes, int]  # a patch's y and z strings and their rung


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the continuous stream's coding on one thread.

    Its float parts (the hyper-synthesis that gives ŷc's means and scales) come out with
    different last bits on 1 and 2 threads, and ŷc must be bit-identical at the sender
    and the receiver: the index priors are computed from it. Those parts run one 4x4
    patch at a time, so a second thread hardly helps them anyway. The setting is the
    calling thread's (OpenMP), so other threads are not slowed."""
    old = torch.get_num_threads()
    if old == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@torch.inference_mode()
def compress_frame(
    continuous: ContinuousCodec,
    upsampler: LearnedUpsampler | None,
    bands: FrameBands,
    rungs: list[int],
    *,
    refine_steps: int = 0,
    refine_progress: Callable[[int], None] | None = None,
) -> list[tuple[bytes, bytes]]:
    """Each patch's (y, z) strings at its rung, the analysis (and, with ``refine_steps``,
    the refinement through ``upsampler``) run over whole bands of patch rows, on every
    thread: only what follows it must match the receiver bit for bit."""
    cols = bands.cols
    strings: list[tuple[bytes, bytes]] = []
    for lo, hi, start, stop in bands:
        low, y = bands.thumbnail(lo, hi)
        if refine_steps:
            y = refine_latent(
                continuous,
                upsampler,
                bands.full(lo, hi),
                low,
                y=y,
                rungs=rungs[lo * cols : hi * cols],
                steps=refine_steps,
                valid=bands.valid(lo, hi),
                progress=refine_progress,
            )
        with one_thread():
            coded = continuous.compress_frame(low, rungs[lo * cols : hi * cols], y=y)
        strings += coded[(start - lo) * cols : (stop - lo) * cols]
    return strings


@torch.inference_mode()
def decode_latents(
    continuous: ContinuousCodec,
    patches: list[EncodedPatch],
    cache: LRU[LatentKey, torch.Tensor],
) -> torch.Tensor:
    """ŷc of patches whose tier 0 is present, (B, M, 4, 4), through ``cache``.

    Entropy decoding is exact and ``decompress_latent`` runs its float parts one patch
    at a time (and here on one thread, see ``one_thread``), so a cached ŷc is the very
    tensor a fresh decode would give."""
    assert all(p.continuous is not None for p in patches), "every patch needs its strings"
    keys = [(*p.continuous, p.rung) for p in patches]  # type: ignore[misc]
    known = cache.get_many(keys)
    todo = list(dict.fromkeys(k for k in keys if k not in known))
    for i in range(0, len(todo), BATCH):
        chunk = todo[i : i + BATCH]
        with one_thread():
            y_hat = continuous.decompress_latent(
                [(y, z) for y, z, _ in chunk], [r for _, _, r in chunk]
            )
        known.update(zip(chunk, y_hat, strict=True))
    cache.put_many((k, known[k]) for k in keys)
    return torch.stack([known[k] for k in keys])
