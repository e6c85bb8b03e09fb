"""The hybrid picture through the index refiner: the continuous picture plus what the
indices add to it (``hfstream.codec.refiner``). The path of every model that has one."""

from __future__ import annotations

import torch

from hfstream.codec.refiner import VQ_UPS, IndexRefiner
from hfstream.codec.tiling import patch_grid
from hfstream.codec.tokenizer import Tokenizer


@torch.inference_mode()
def refined_picture(
    refiner: IndexRefiner,
    tokenizer: Tokenizer,
    picture: torch.Tensor,
    *,
    codes: torch.Tensor,
    certainty: torch.Tensor,
    grid: tuple[int, int],
) -> torch.Tensor:
    """The continuous ``picture`` (1,3,H,W) of ``grid`` (rows, cols) patches refined by
    their code vectors (1,D,H/16,W/16) and certainty planes (1,2,H/16,W/16), read
    through the VQ decoder's first layers (``VQ_UPS``)."""
    with patch_grid(*grid):
        features = tokenizer.decoder.features(codes, VQ_UPS)
    return refiner(picture, codes, certainty, features)
