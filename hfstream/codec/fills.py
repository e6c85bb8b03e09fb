"""Filling the indices that did not arrive, and the prior pass that both the index coding
and the ``prior`` fill read.

Fills: ``prior`` (the predictor's arg-max given ŷc alone: the pass that the index priors
already ran, so a receiver that decoded indices fills at no further cost), ``predictor``
(arg-max given ŷc and the known indices, one pass unless ``steps > 1``, then
MaskGIT-style), ``soft`` (one pass; a missing position gets the expected code vector
under the predictor's distribution, the minimum-squared-error guess) and ``nearest``
(the nearest known index). Without ŷc every fill is ``nearest``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from hfstream.codec import index_coding
from hfstream.codec.caches import LRU, digest
from hfstream.codec.codebooks import ReducedCodebook
from hfstream.codec.encoded import MISSING, EncodedPatch
from hfstream.codec.predictor import MaskedTokenPredictor
from hfstream.codec.schedules import GRID
from hfstream.codec.tokenizer import Tokenizer
from hfstream.geometry import TOKENS

FillMethod = Literal["auto", "prior", "predictor", "soft", "nearest"]
FILLS = ("auto", "prior", "predictor", "soft", "nearest")
PRIOR_FILL_CACHE = 1024  # patches whose prior arg-max and confidence are kept (3 KiB each)

PriorFill = tuple[torch.Tensor, torch.Tensor]  # the prior pass's arg-max and its probability


def check_fill(fill: str) -> FillMethod:
    if fill not in FILLS:
        raise ValueError(f'Invalid fill "{fill}", should be one of {", ".join(FILLS)}')
    return fill  # type: ignore[return-value]


def nearest_fill(indices: np.ndarray) -> np.ndarray:
    """Naive fill: each missing index copies its nearest known neighbour (raster tie-break)."""
    known = np.flatnonzero(indices != MISSING)
    if known.size == 0 or known.size == TOKENS:
        return indices.copy()
    rr, cc = np.divmod(np.arange(TOKENS), GRID)
    d = (rr[:, None] - rr[known][None, :]) ** 2 + (cc[:, None] - cc[known][None, :]) ** 2
    return np.where(indices == MISSING, indices[known][d.argmin(axis=1)], indices)


@torch.inference_mode()
def prior_probabilities(
    predictor: MaskedTokenPredictor,
    y_hat: torch.Tensor,
    groups: np.ndarray | None,
    cache: LRU[bytes, PriorFill],
) -> np.ndarray:
    """(B, 256, K) float64 prior of every position given ŷc alone, reproducibly rounded
    (``groups``: a reduced codebook's word of every full word). Each patch's arg-max and
    confidence are kept in ``cache`` for ``prior_fill``."""
    out = []
    # One patch at a time: a batch is faster and gave the same bits here, but MKL does
    # not promise that a row's sums ignore the other rows, and one changed bit anywhere
    # breaks the receiver's ANS decoding.
    for b in range(y_hat.shape[0]):
        logits = predictor.prior_logits(y_hat[b : b + 1])[0].float()
        _keep(cache, y_hat[b], logits)
        out.append(index_coding.probabilities_from_logits(logits.numpy(), groups))
    return np.stack(out)


@torch.inference_mode()
def prior_fill(
    predictor: MaskedTokenPredictor, y_hat: torch.Tensor, cache: LRU[bytes, PriorFill]
) -> PriorFill:
    """The predictor's arg-max given ŷc alone (every index masked) and its probability,
    (B, 256) each, for y_hat (B, M, 4, 4). These are the logits of the index priors, so a
    patch whose priors were computed (and are still in ``cache``) costs no transformer
    pass; the rest run as one batch."""
    keys = [digest(y) for y in y_hat]
    known = cache.get_many(keys)
    todo = [i for i, k in enumerate(keys) if k not in known]
    if todo:
        logits = predictor.prior_logits(y_hat[todo]).float()
        for i, row in zip(todo, logits, strict=True):
            known[keys[i]] = _keep(cache, y_hat[i], row)
    guess = torch.stack([known[k][0] for k in keys])
    sure = torch.stack([known[k][1] for k in keys])
    return guess, sure


def _keep(cache: LRU[bytes, PriorFill], y_hat: torch.Tensor, logits: torch.Tensor) -> PriorFill:
    sure, guess = F.softmax(logits, dim=-1).max(dim=-1)
    cache.put_many([(digest(y_hat), (guess, sure))])
    return guess, sure


@dataclass(frozen=True)
class FilledCodes:
    """A region's index maps as code vectors, the missing ones filled."""

    codes: torch.Tensor  # (n, D, 16, 16) code vectors
    known: torch.Tensor  # (n, 256) bool, the indices that arrived
    confidence: torch.Tensor  # (n, 256) the fill's confidence where it filled, else 1 or 0


@torch.inference_mode()
def fill_codes(
    tokenizer: Tokenizer,
    predictor: MaskedTokenPredictor,
    patches: list[EncodedPatch],
    y_blocks: torch.Tensor | None,
    *,
    reduction: ReducedCodebook | None,
    fill: FillMethod,
    steps: int,
    prior: Callable[[torch.Tensor], PriorFill],
) -> FilledCodes:
    """The code vectors of ``patches``' indices, the missing ones filled by ``fill``
    (not ``auto``) from the patches' ŷc ``y_blocks`` (n, M, 4, 4), or the nearest known
    index where there is none. ``prior``: the prior pass's fill (``prior_fill``, cached)."""
    n = len(patches)
    limit = tokenizer.config.codebook_size if reduction is None else reduction.size
    for i, p in enumerate(patches):
        if int(p.indices.max()) >= limit or int(p.indices.min()) < MISSING:
            raise ValueError(f"patch {i} has an index outside the {limit}-word codebook")
    # Known words as full-codebook ids (the predictor's vocabulary) and as code vectors.
    words = np.stack([p.indices for p in patches])
    known = words != MISSING
    full = words.copy()
    if reduction is not None:
        full[known] = reduction.representatives.numpy()[words[known]]
    full_t = torch.from_numpy(np.where(known, full, 0))
    known_t = torch.from_numpy(known)
    filled = full_t.clone()
    confidence = torch.zeros(known_t.shape)  # of the predictor, where it filled
    if fill == "predictor" and y_blocks is not None:
        filled, confidence = predictor.fill_with_confidence(full_t, known_t, y_blocks, steps=steps)
    elif fill == "prior" and y_blocks is not None:
        guess, sure = prior(y_blocks)
        filled = torch.where(known_t, full_t, guess)
        confidence = torch.where(known_t, torch.ones(()), sure)
    elif fill == "nearest" or y_blocks is None:
        for i in range(n):
            filled[i] = torch.from_numpy(nearest_fill(np.where(known[i], full[i], MISSING)))
    q = tokenizer.codebook.embed(filled.clamp(min=0).reshape(n, GRID, GRID))
    if fill == "soft" and y_blocks is not None:
        probs = torch.softmax(
            predictor(torch.where(known_t, full_t, predictor.mask_id), y_blocks).float(), dim=-1
        )  # (n, 256, V)
        confidence = probs.max(dim=-1).values
        expected = (probs @ tokenizer.codebook.normalized()).transpose(1, 2)
        expected = expected.reshape(n, -1, GRID, GRID)
        q = torch.where(known_t.reshape(-1, 1, GRID, GRID), q, expected)
    if reduction is not None:  # known reduced words decode to their centroid
        cent = reduction.centroids[torch.from_numpy(np.where(known, words, 0))]  # (n, 256, D)
        q_flat = q.flatten(2).transpose(1, 2)
        q = torch.where(known_t[..., None], cent, q_flat).transpose(1, 2).reshape(q.shape)
    return FilledCodes(q, known_t, confidence)
