"""The index refiner: what the VQ indices add to the continuous picture.

The continuous stream alone already gives a full-size picture (thumbnail, learned
up-sampler). The indices are worth their bytes only by what they add to *that* picture,
so the refiner predicts a residual over it and starts from zero: an untrained refiner
shows the continuous picture exactly, and training can only teach it to use the codes
where they are right.

Inputs, frame-wide: the continuous picture, pixel-unshuffled by 4 to thumbnail
resolution; the frozen VQ decoder's features at that same resolution (its first two
up-samplings: what the codes mean, learnt when the tokenizer was, before its last layers
draw pixels; ``VQ_UPS``); and at 1/16 resolution the code vectors (received or filled by
the predictor) beside two certainty planes (received; the predictor's confidence), so
that the refiner knows which codes are guesses. A few residual blocks mix the codes with
their neighbours at 1/16, a pixel shuffle spreads each position over the 4x4 thumbnail
pixels it covers, and residual blocks at thumbnail resolution join the three. The
residual comes back to full size by a pixel shuffle. The refiner itself has no
normalisation and no per-patch state, so it adds no seam.

It replaces the correction decoder plus the whole VQ decoder (the slowest part of the
older hybrid path, docs/notebook/speed.md) with half the VQ decoder and one small network
over the picture the receiver already has.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hfstream.codec.correction import CERTAINTY_CHANNELS
from hfstream.codec.upsampler import ResidualBlock, channels_last

SCALE = 4  # full-size pixels per thumbnail pixel, each way
CODE_STRIDE = 4  # thumbnail pixels per code position, each way (16 px at full size)
VQ_UPS = 2  # the VQ decoder's up-samplings (2x each) from code to thumbnail resolution


@dataclass(frozen=True)
class RefinerConfig:
    code_dim: int = 32  # D of the tokenizer's codebook
    vq_channels: int = 64  # of the VQ decoder's features after VQ_UPS up-samplings
    width: int = 48
    code_blocks: int = 2  # residual blocks at code resolution
    blocks: int = 4  # residual blocks at thumbnail resolution


class IndexRefiner(nn.Module):
    def __init__(self, config: RefinerConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.code_stem = nn.Conv2d(config.code_dim + CERTAINTY_CHANNELS, w, 3, padding=1)
        self.code_body = nn.Sequential(*(ResidualBlock(w) for _ in range(config.code_blocks)))
        self.code_spread = nn.Conv2d(w, w * CODE_STRIDE * CODE_STRIDE, 1)
        self.picture_stem = nn.Conv2d(3 * SCALE * SCALE, w, 3, padding=1)
        self.vq_stem = nn.Conv2d(config.vq_channels, w, 3, padding=1)
        self.body = nn.Sequential(*(ResidualBlock(w) for _ in range(config.blocks)))
        self.head = nn.Conv2d(w, 3 * SCALE * SCALE, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(
        self,
        picture: torch.Tensor,
        codes: torch.Tensor,
        certainty: torch.Tensor,
        vq_features: torch.Tensor,
    ) -> torch.Tensor:
        """picture (B,3,H,W) in [0,1], codes (B,D,H/16,W/16), certainty (B,2,H/16,W/16),
        the VQ decoder's features (B,C,H/4,W/4) -> the refined picture (B,3,H,W), not
        clamped."""
        side = SCALE * CODE_STRIDE
        if (
            codes.shape[-2] * side != picture.shape[-2]
            or codes.shape[-1] * side != (picture.shape[-1])
        ):
            raise ValueError(
                f"codes {tuple(codes.shape[-2:])} do not match picture {tuple(picture.shape[-2:])}"
            )
        c = torch.cat([codes, certainty.to(codes.dtype)], dim=1)
        c = self.code_body(self.code_stem(channels_last(c)))
        c = F.pixel_shuffle(self.code_spread(c), CODE_STRIDE)
        if vq_features.shape[-2:] != c.shape[-2:]:
            raise ValueError(
                f"VQ features {tuple(vq_features.shape[-2:])} do not match thumbnail "
                f"{tuple(c.shape[-2:])}"
            )
        h = self.picture_stem(channels_last(F.pixel_unshuffle(picture * 2 - 1, SCALE))) + c
        h = h + self.vq_stem(vq_features)
        return picture + F.pixel_shuffle(self.head(self.body(h)), SCALE)
