"""The VQ codebook's reductions (K-means groups of its words, for smaller index maps) and
the tokenizer's words for a batch of patches, full or reduced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hfstream.codec.frames import to_tensor
from hfstream.codec.model_io import split_prefix
from hfstream.codec.tokenizer import Tokenizer


@dataclass(frozen=True)
class ReducedCodebook:
    """A K-means reduction of the codebook: word -> group, group centroids, representatives."""

    groups: torch.Tensor  # (1024,) int64, the reduced word of every full word
    centroids: torch.Tensor  # (K, D) unit vectors, what the decoder embeds for a reduced word
    representatives: torch.Tensor  # (K,) int64, the full word nearest to each centroid

    @property
    def size(self) -> int:
        return int(self.centroids.shape[0])


def load_reductions(
    config: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> dict[int, ReducedCodebook]:
    """The reductions a model bundle ships (``codebook_reductions``), by size."""
    out = {}
    for k in config.get("codebook_reductions", []):
        r = split_prefix(tensors, f"reduction.{k}")
        out[int(k)] = ReducedCodebook(
            r["groups"].long(), r["centroids"], r["representatives"].long()
        )
    return out


@torch.inference_mode()
def tokenize(
    tokenizer: Tokenizer, patches: np.ndarray, reduction: ReducedCodebook | None
) -> torch.Tensor:
    """(B, 16, 16) words of (B, 256, 256, 3) uint8 patches: the nearest full word, or
    the nearest centroid of ``reduction``."""
    z = F.normalize(tokenizer.encoder(to_tensor(patches)), dim=1)
    if reduction is None:
        return tokenizer.codebook.lookup(z)
    return torch.einsum("bdhw,kd->bkhw", z, reduction.centroids).argmax(dim=1)
