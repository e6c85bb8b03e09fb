"""Temporal synthesis: a predicted frame's coded patches, sharpened from its reference.

A patch that a predicted frame codes is decoded from its own strings, as in an intra
frame: at 0.05 bpp that is a 2x- or 4x-down picture brought back up, without the detail
the reference picture already holds for the same content. This network reads the
decoded picture and the reference picture moved by the frame's motion vectors (both at
the shown size) and adds to the decoded picture what the reference shows that agrees
with it (the temporal context of the synthesis, as in conditional video coding). It runs
after the decoder and changes no bit on the wire.

Its cost is kept low by working on 4x4 blocks folded into channels (a pixel unshuffle):
every convolution runs at a sixteenth of the pixels, which still lets it see a few
pixels of misalignment between the two pictures. Its last convolution starts at zero,
so an untrained network shows the decoded picture unchanged. Its output becomes the
next frame's reference, so what it recovers accumulates over frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hfstream.codec.upsampler import ResidualBlock, channels_last


@dataclass(frozen=True)
class TemporalConfig:
    width: int = 64
    blocks: int = 4
    fold: int = 4  # pixels folded into channels, each way


class TemporalSynthesis(nn.Module):
    def __init__(self, config: TemporalConfig) -> None:
        super().__init__()
        self.config = config
        # What it adds to a coded patch, in dB of its error, as measured when the model was
        # made (``train add-temporal``): the planner counts on it when it weighs coding a
        # patch against reusing the reference (0: not measured).
        self.gain_db = 0.0
        f, w = config.fold, config.width
        self.stem = nn.Conv2d(9 * f * f, w, 3, padding=1)
        self.body = nn.Sequential(*(ResidualBlock(w) for _ in range(config.blocks)))
        self.head = nn.Conv2d(w, 3 * f * f, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, decoded: torch.Tensor, moved: torch.Tensor) -> torch.Tensor:
        """decoded and moved (B,3,H,W) in [0,1] -> (B,3,H,W), not clamped."""
        if decoded.shape != moved.shape:
            raise ValueError(f"decoded {tuple(decoded.shape)} and reference {tuple(moved.shape)}")
        f = self.config.fold
        h, w = decoded.shape[-2:]
        x = torch.cat([decoded, moved, moved - decoded], 1) * 2 - 1
        pad = (0, -w % f, 0, -h % f)
        x = F.pad(x, pad, mode="replicate") if any(pad) else x
        x = F.pixel_unshuffle(x, f)
        y = self.head(self.body(F.relu(self.stem(channels_last(x)))))
        return decoded + F.pixel_shuffle(y, f)[..., :h, :w]


MARGIN = 16  # pixels of context read around the region the network changes


@torch.inference_mode()
def synthesize(
    network: TemporalSynthesis, decoded: np.ndarray, moved: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """``decoded`` (HxWx3 uint8) with the pixels where ``mask`` (HxW bool) is set taken from
    the network's output; it reads only the box around them, ``MARGIN`` wider."""
    if not mask.any():
        return decoded
    ys, xs = np.nonzero(mask)
    y0, y1 = max(0, ys.min() - MARGIN), min(mask.shape[0], ys.max() + 1 + MARGIN)
    x0, x1 = max(0, xs.min() - MARGIN), min(mask.shape[1], xs.max() + 1 + MARGIN)

    def tensor(a: np.ndarray) -> torch.Tensor:
        box = np.ascontiguousarray(a[y0:y1, x0:x1])
        return torch.from_numpy(box).permute(2, 0, 1)[None].float().div_(255.0)

    out = network(tensor(decoded), tensor(moved))
    pixels = out[0].clamp_(0, 1).mul_(255).round_().byte().permute(1, 2, 0).numpy()
    result = decoded.copy()
    box = mask[y0:y1, x0:x1]
    result[y0:y1, x0:x1][box] = pixels[box]
    return result
