"""A channel-wise context model over the continuous stream's hyperprior (after Minnen &
Singh 2020): each slice of ŷ's channels is coded with a Gaussian whose mean and scale
the hyperprior gives and a small network corrects from the slices decoded before it.

It changes the entropy model alone. The symbols stay ``round(y - μ)`` with μ the
hyperprior's mean, so ŷ, the synthesis and every picture stay bit for bit as they are;
only the probabilities the coder gives each symbol (and so its bytes) move. Each slice's
network sees the hyperprior's mean and log-scale of its own channels and the symbols of
every earlier slice over the patch's 4x4 block (all decoded before it, so a decoder
derives the same parameters). Its last convolution starts at zero: an untrained context
model is the hyperprior itself.

Measured, not yet in the codec's coding path: ``python -m sim.context_model`` trains one
on a frozen stream and reports the bits it saves (docs/notebook/rate-and-planner.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

SCALE_BOUND = 0.11  # the stream's lowest scale (compressai's GaussianConditional)
LIKELIHOOD_BOUND = 1e-9
INPUT_GAIN = 0.1


@dataclass(frozen=True)
class ChannelContextConfig:
    m: int = 128  # channels of ŷ
    slices: int = 4
    width: int = 96


class ChannelContext(nn.Module):
    def __init__(self, config: ChannelContextConfig) -> None:
        super().__init__()
        if config.m % config.slices:
            raise ValueError(f"{config.slices} slices do not divide {config.m} channels")
        self.config = config
        per = config.m // config.slices
        self.per = per
        self.nets = nn.ModuleList()
        for i in range(config.slices):
            inputs = 2 * per + i * per
            net = nn.Sequential(
                nn.Conv2d(inputs, config.width, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(config.width, config.width, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(config.width, 2 * per, 3, padding=1),
            )
            nn.init.zeros_(net[-1].weight)
            nn.init.zeros_(net[-1].bias)
            self.nets.append(net)

    def forward(
        self, symbols: torch.Tensor, means: torch.Tensor, scales: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(offsets, scales), each (P, M, 4, 4): the Gaussian of each symbol
        ``round(y - μ)`` (``symbols``, float) given the hyperprior's ``means`` and
        ``scales`` (P, M, 4, 4), as an offset from μ and a scale."""
        offsets, out_scales = [], []
        for i, net in enumerate(self.nets):
            own = slice(i * self.per, (i + 1) * self.per)
            # Inputs near unit size: means and symbols reach tens at the top rungs.
            parts = [INPUT_GAIN * means[:, own], torch.log(scales[:, own].clamp(min=SCALE_BOUND))]
            if i:
                parts.append(INPUT_GAIN * symbols[:, : i * self.per])
            delta_mean, delta_log_scale = net(torch.cat(parts, 1)).chunk(2, 1)
            offsets.append(delta_mean)
            out_scales.append(scales[:, own] * torch.exp(delta_log_scale.clamp(-4, 4)))
        return torch.cat(offsets, 1), torch.cat(out_scales, 1)


def symbol_bits(symbols: torch.Tensor, offsets: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Bits (P,) of each patch's symbols under Gaussians of ``offsets`` and ``scales``,
    each symbol's probability the mass of its unit bin, bounded as the stream bounds it."""
    scales = scales.clamp(min=SCALE_BOUND)
    centred = (symbols - offsets).abs()
    upper = 0.5 * torch.erfc(-(0.5 - centred) / (scales * math.sqrt(2)))
    lower = 0.5 * torch.erfc(-(-0.5 - centred) / (scales * math.sqrt(2)))
    likelihood = (upper - lower).clamp(min=LIKELIHOOD_BOUND)
    return -torch.log2(likelihood).flatten(1).sum(1)
