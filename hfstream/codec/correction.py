"""The correction decoder: fidelity from ŷc, added into the VQ decoder's up-sampling path.

A copy of the VQ decoder's body, driven by the continuous stream instead of code vectors:
its input at 16x16 is ŷc (4x4xM, up-sampled) beside the 64x64 low-resolution picture that
ŷc decodes to (pixel-unshuffled to 48 channels at 16x16). After its stem and after each
of its up-sampling layers a 1x1 convolution, initialised to zero, maps its features into
the VQ decoder's features at the same level. At initialisation the hybrid decoder is
therefore exactly the plain VQ decoder, and training (with the VQ decoder frozen) only
has to learn what the indices miss.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from hfstream.codec.tokenizer import Decoder


class CorrectionDecoder(nn.Module):
    def __init__(self, vq_decoder: Decoder, memory_dim: int) -> None:
        super().__init__()
        self.body = copy.deepcopy(vq_decoder)  # starts from the VQ decoder's weights
        del self.body.head
        width = self.body.stem.out_channels
        self.body.stem = nn.Conv2d(memory_dim + 48, width, 3, padding=1)
        self.zero_convs = nn.ModuleList(nn.Conv2d(c, c, 1) for c in vq_decoder.level_channels)
        for conv in self.zero_convs:
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, y_hat: torch.Tensor, low: torch.Tensor) -> list[torch.Tensor]:
        """y_hat (B,M,4,4) and its picture low (B,3,64,64) -> one feature map per level."""
        up = F.interpolate(y_hat, scale_factor=4.0, mode="nearest")  # (B, M, 16, 16)
        h = self.body.stem(torch.cat([up, F.pixel_unshuffle(low * 2 - 1, 4)], dim=1))
        feats = [self.zero_convs[0](h)]
        for i, (stage, upl) in enumerate(zip(self.body.stages, self.body.ups, strict=True)):
            h = upl(stage(h))
            feats.append(self.zero_convs[i + 1](h))
        return feats
