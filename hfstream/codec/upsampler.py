"""The learned up-sampler: the continuous stream's thumbnail back at full size.

The continuous stream codes a 4x-downsampled picture. Bicubic interpolation brings it
back at full size blurred; this small network adds the detail that the thumbnail and its
latent imply: a residual over the bicubic picture, predicted at thumbnail resolution and
spread over each 4x4 block of output pixels by a pixel shuffle. Besides the thumbnail it
reads ŷc itself (one 1x1 projection per 4x4 latent position, spread over the 64x64
pixels that position codes), which says more about texture than three colour planes do.

Its last convolution starts at zero, so an untrained up-sampler is exactly bicubic. It
has no normalisation and no per-patch state: run over a whole frame it joins patches as
smoothly as the thumbnail does. It decodes only what tier 0 already carries, so it
changes no bit on the wire and a model without one still decodes the same streams.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

SCALE = 4  # the continuous stream's usual down-sampling
SCALES = (2, 4)  # what an up-sampler may bring back: the 4x thumbnail, or the 2x one
LATENT_STRIDE = 16  # thumbnail pixels per latent position, each way


@dataclass(frozen=True)
class UpsamplerConfig:
    latent_channels: int = 128  # M of the continuous stream
    width: int = 32
    blocks: int = 4
    scale: int = SCALE  # output pixels per thumbnail pixel, each way

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"up-sampler scale must be one of {SCALES}, got {self.scale}")


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last layout when no gradient is taken: oneDNN's convolutions
    then skip a layout conversion per call (about a third of the refiner's time on a
    768x512 frame). Training keeps the default layout."""
    return x if torch.is_grad_enabled() else x.contiguous(memory_format=torch.channels_last)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a ReLU between, added to the input."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return x + self.conv2(F.relu(self.conv1(x)))
        # Inference: the activation and the sum in place, on maps that are not kept.
        return self.conv2(F.relu(self.conv1(x), inplace=True)).add_(x)


class LearnedUpsampler(nn.Module):
    def __init__(self, config: UpsamplerConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.stem = nn.Conv2d(3, w, 3, padding=1)
        self.latent = nn.Conv2d(config.latent_channels, w, 1)
        self.body = nn.Sequential(*(ResidualBlock(w) for _ in range(config.blocks)))
        self.head = nn.Conv2d(w, 3 * config.scale * config.scale, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, low: torch.Tensor, y_hat: torch.Tensor) -> torch.Tensor:
        """low (B,3,h,w) in [0,1] and its ŷc (B,M,h/16,w/16) -> (B,3,sh,sw), not clamped,
        for the configured scale s."""
        if y_hat.shape[-2] * LATENT_STRIDE != low.shape[-2] or (
            y_hat.shape[-1] * LATENT_STRIDE != low.shape[-1]
        ):
            raise ValueError(
                f"latent {tuple(y_hat.shape[-2:])} does not match thumbnail {tuple(low.shape[-2:])}"
            )
        h = self.stem(channels_last(low * 2 - 1))
        h = h + F.interpolate(self.latent(y_hat), scale_factor=LATENT_STRIDE, mode="nearest")
        h = self.body(h)
        scale = self.config.scale
        detail = F.pixel_shuffle(self.head(h), scale)
        base = F.interpolate(low, scale_factor=scale, mode="bicubic", align_corners=False)
        return base + detail
