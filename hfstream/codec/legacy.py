"""The hybrid picture of models without an index refiner: the VQ decoder, with what the
correction decoder draws from ŷc added into its up-sampling path
(``hfstream.codec.correction``). Only such models load the correction decoder."""

from __future__ import annotations

import torch

from hfstream.codec.continuous_picture import RegionLatents
from hfstream.codec.correction import CorrectionDecoder
from hfstream.codec.model_io import ModelBundle, split_prefix
from hfstream.codec.tiling import patch_grid
from hfstream.codec.tokenizer import Tokenizer


def load_correction(
    bundle: ModelBundle, tokenizer: Tokenizer, memory_dim: int
) -> CorrectionDecoder:
    """The correction decoder a model bundle ships, over ``tokenizer``'s VQ decoder, for a
    continuous latent of ``memory_dim`` channels."""
    correction = CorrectionDecoder(tokenizer.decoder, memory_dim)
    correction.load_state_dict(split_prefix(bundle.tensors, "correction"))
    return correction


@torch.inference_mode()
def corrected_picture(
    correction: CorrectionDecoder,
    tokenizer: Tokenizer,
    region: RegionLatents,
    *,
    codes: torch.Tensor,
    certainty: torch.Tensor,
    grid: tuple[int, int],
) -> torch.Tensor:
    """The VQ decoder's picture (1,3,H,W) of ``grid`` (rows, cols) patches' code vectors
    (1,D,H/16,W/16), corrected from ``region``'s ŷc and thumbnail, leaning on them where
    the certainty planes (1,2,H/16,W/16) say the codes are guesses."""
    with patch_grid(*grid):
        features = correction(region.frame, region.low, codes, certainty)
        return tokenizer.decoder(codes, features)
