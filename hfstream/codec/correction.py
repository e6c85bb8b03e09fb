"""The correction decoder: fidelity from ŷc, added into the VQ decoder's up-sampling path.

A copy of the VQ decoder's body, driven by the continuous stream: its input at 16x16 is
ŷc (4x4xM, up-sampled) beside the 64x64 low-resolution picture that ŷc decodes to
(pixel-unshuffled to 48 channels at 16x16), the code vectors the VQ decoder is given, and
two certainty planes: whether each index was received, and how sure the predictor was of
the ones it filled. The VQ decoder is frozen and only sums what this branch adds, so the
branch must see the codes to undo a wrong guess, and their certainty to know where to
lean on ŷc instead. After its stem and after each of its up-sampling layers a 1x1
convolution, initialised to zero, maps its features into the VQ decoder's features at
the same level: at initialisation the hybrid decoder is exactly the plain VQ decoder.

Weights saved before the codes and certainty inputs existed load with those inputs'
stem weights at zero, so such a decoder behaves as it did and can be fine-tuned.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hfstream.codec.tokenizer import Decoder

LOW_CHANNELS = 48  # the 64x64 picture, pixel-unshuffled by 4
CERTAINTY_CHANNELS = 2  # received (0/1), predictor confidence in [0, 1]


class CorrectionDecoder(nn.Module):
    def __init__(self, vq_decoder: Decoder, memory_dim: int) -> None:
        super().__init__()
        self.body = copy.deepcopy(vq_decoder)  # starts from the VQ decoder's weights
        del self.body.head
        width = self.body.stem.out_channels
        code_dim = vq_decoder.stem.in_channels
        self.base_inputs = memory_dim + LOW_CHANNELS
        self.inputs = self.base_inputs + code_dim + CERTAINTY_CHANNELS
        self.body.stem = nn.Conv2d(self.inputs, width, 3, padding=1)
        self.zero_convs = nn.ModuleList(nn.Conv2d(c, c, 1) for c in vq_decoder.level_channels)
        for conv in self.zero_convs:
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        key = prefix + "body.stem.weight"
        w = state_dict.get(key)
        if w is not None and w.shape[1] == self.base_inputs:  # saved before codes/certainty
            pad = w.new_zeros(w.shape[0], self.inputs - w.shape[1], *w.shape[2:])
            state_dict[key] = torch.cat([w, pad], dim=1)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(
        self,
        y_hat: torch.Tensor,
        low: torch.Tensor,
        codes: torch.Tensor,
        certainty: torch.Tensor,
    ) -> list[torch.Tensor]:
        """y_hat (B,M,4,4), its picture low (B,3,64,64), the code vectors (B,D,16,16) and
        the certainty planes (B,2,16,16) -> one feature map per decoder level."""
        up = F.interpolate(y_hat, scale_factor=4.0, mode="nearest")  # (B, M, 16, 16)
        x = torch.cat([up, F.pixel_unshuffle(low * 2 - 1, 4), codes, certainty], dim=1)
        if not torch.is_grad_enabled():
            return self._infer(x)
        h = self.body.stem(x)
        feats = [self.zero_convs[0](h)]
        for i, (stage, upl) in enumerate(zip(self.body.stages, self.body.ups, strict=True)):
            h = upl(stage(h))
            feats.append(self.zero_convs[i + 1](h))
        return feats

    def _infer(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The branch without autograd, on channels-last maps (see ``Decoder._infer``);
        the 1x1 convolutions run as one matrix product over the pixels, which oneDNN
        does not do for them."""
        h = self.body.stem(x.contiguous(memory_format=torch.channels_last))
        feats = [_pointwise(self.zero_convs[0], h)]
        for i, (stage, upl) in enumerate(zip(self.body.stages, self.body.ups, strict=True)):
            h = F.silu(upl[0](stage(h)), inplace=True)
            feats.append(_pointwise(self.zero_convs[i + 1], h))
        return feats


def _pointwise(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution of a channels-last map as a matrix product; channels-last out."""
    weight = conv.weight.reshape(conv.out_channels, conv.in_channels)
    nhwc = x.permute(0, 2, 3, 1)  # contiguous for a channels-last ``x``
    return F.linear(nhwc, weight, conv.bias).permute(0, 3, 1, 2)


def certainty_planes(known: torch.Tensor, confidence: torch.Tensor) -> torch.Tensor:
    """known (B,256) bool and the predictor's confidence (B,256) -> (B,2,16,16).

    A received index has confidence 1 whatever the predictor thought of it."""
    b = known.shape[0]
    side = int(round(known.shape[1] ** 0.5))
    conf = torch.where(known, torch.ones_like(confidence), confidence.float())
    return torch.stack([known.float(), conf], dim=1).reshape(b, 2, side, side)
