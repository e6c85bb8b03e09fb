"""The VQ tokenizer: 256x256 patch -> 16x16 indices into a 1024-word codebook -> patch.

Lean by design so it trains on a CPU: stride-2 convolutions at high resolution and
residual blocks only at 32x32 and 16x16. The codebook is low-dimensional and
l2-normalised (lookup by cosine similarity), which keeps most words in use; words that
go unused are restarted from encoder outputs during training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hfstream.codec.tiling import PatchGroupNorm


@dataclass(frozen=True)
class TokenizerConfig:
    codebook_size: int = 1024
    code_dim: int = 32  # dimension of a codebook word
    widths: tuple[int, ...] = (32, 64, 128, 192)  # at 128, 64, 32 and 16 px
    res_blocks_16: int = 2  # residual blocks at 16x16, in the encoder and in the decoder
    res_blocks_32: int = 1  # residual blocks at 32x32


class ResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            PatchGroupNorm(8, ch),
            nn.SiLU(),
            nn.Conv2d(ch, ch, 3, padding=1),
            PatchGroupNorm(8, ch),
            nn.SiLU(),
            nn.Conv2d(ch, ch, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return x + self.body(x)
        # Inference: the same sums, with activations in place (no new full-size buffers).
        gn1, _, conv1, gn2, _, conv2 = self.body
        h = conv1(F.silu(gn1(x), inplace=True))
        return conv2(F.silu(gn2(h), inplace=True)).add_(x)


class Encoder(nn.Module):
    def __init__(self, c: TokenizerConfig) -> None:
        super().__init__()
        w = c.widths
        layers: list[nn.Module] = [nn.Conv2d(3, w[0], 4, stride=2, padding=1), nn.SiLU()]
        for i in range(1, len(w)):
            layers += [nn.Conv2d(w[i - 1], w[i], 4, stride=2, padding=1), nn.SiLU()]
            if i == len(w) - 2:
                layers += [ResBlock(w[i]) for _ in range(c.res_blocks_32)]
            if i == len(w) - 1:
                layers += [ResBlock(w[i]) for _ in range(c.res_blocks_16)]
        layers += [PatchGroupNorm(8, w[-1]), nn.SiLU(), nn.Conv2d(w[-1], c.code_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)  # (B, code_dim, H/16, W/16)


class Upsample(nn.Module):
    """2x up-sampling by a 4x4 transposed convolution (2.25x cheaper than nearest + 3x3)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Decoder(nn.Module):
    """Code vectors -> picture. ``features`` (from the correction decoder) are added after
    the 16x16 stem and after every up-sampling layer."""

    def __init__(self, c: TokenizerConfig) -> None:
        super().__init__()
        w = list(reversed(c.widths))  # 192, 128, 64, 32
        self.stem = nn.Conv2d(c.code_dim, w[0], 3, padding=1)
        self.stages = nn.ModuleList()
        self.ups = nn.ModuleList()
        outs = w[1:] + [w[-1]]
        for i, cin in enumerate(w):
            n_blocks = [c.res_blocks_16, c.res_blocks_32][i] if i < 2 else 0
            blocks = [ResBlock(cin) for _ in range(n_blocks)]
            self.stages.append(nn.Sequential(*blocks))
            self.ups.append(nn.Sequential(Upsample(cin, outs[i]), nn.SiLU()))
        self.head = nn.Conv2d(w[-1], 3, 3, padding=1)

    @property
    def level_channels(self) -> list[int]:
        """Channels of the stem output and of each up-sampling layer's output."""
        return [self.stem.out_channels] + [up[0].conv.out_channels for up in self.ups]

    def forward(self, q: torch.Tensor, features: list[torch.Tensor] | None = None) -> torch.Tensor:
        if not torch.is_grad_enabled():
            return self._infer(q, features)
        h = self.stem(q)
        if features is not None:
            h = h + features[0]
        for i, (stage, up) in enumerate(zip(self.stages, self.ups, strict=True)):
            h = up(stage(h))
            if features is not None:
                h = h + features[i + 1]
        return (self.head(h) + 1) / 2  # (B, 3, H, W), about [0, 1]

    def features(self, q: torch.Tensor, ups: int) -> torch.Tensor:
        """The decoder's feature map after its first ``ups`` up-sampling layers (no
        correction features): what the codes mean, before the last layers draw pixels.
        Run frame-wide inside ``patch_grid`` as the whole decoder is."""
        if not 0 <= ups <= len(self.ups):
            raise ValueError(f"Invalid ups {ups}, should be in [0, {len(self.ups)}]")
        grad = torch.is_grad_enabled()
        h = self.stem(q if grad else q.contiguous(memory_format=torch.channels_last))
        for stage, up in list(zip(self.stages, self.ups, strict=True))[:ups]:
            h = up(stage(h)) if grad else F.silu(up[0](stage(h)), inplace=True)
        return h

    def _infer(self, q: torch.Tensor, features: list[torch.Tensor] | None) -> torch.Tensor:
        """``forward`` without autograd: channels-last maps (oneDNN's convolutions and
        transposed convolutions then skip their layout conversions, which cost as much as
        the arithmetic at 256x256) and in-place activations and sums. The output is
        channels-last too."""
        h = self.stem(q.contiguous(memory_format=torch.channels_last))
        if features is not None:
            h.add_(features[0])
        for i, (stage, up) in enumerate(zip(self.stages, self.ups, strict=True)):
            h = F.silu(up[0](stage(h)), inplace=True)
            if features is not None:
                h.add_(features[i + 1])
        return self.head(h).add_(1).div_(2)


class Codebook(nn.Module):
    """l2-normalised codebook with nearest-word lookup by cosine similarity."""

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(size, dim))

    def normalized(self) -> torch.Tensor:
        return F.normalize(self.weight, dim=1)

    def lookup(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D, h, w) encoder output -> (B, h, w) indices."""
        zn = F.normalize(z, dim=1)
        sim = torch.einsum("bdhw,kd->bkhw", zn, self.normalized())
        return sim.argmax(dim=1)

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, h, w) indices -> (B, D, h, w) code vectors."""
        return self.normalized()[idx].permute(0, 3, 1, 2)


class Tokenizer(nn.Module):
    def __init__(self, config: TokenizerConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.codebook = Codebook(config.codebook_size, config.code_dim)
        self.decoder = Decoder(config)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) in [0,1] -> (B,H/16,W/16) int64 indices."""
        return self.codebook.lookup(self.encoder(x))

    def decode_indices(
        self, idx: torch.Tensor, features: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        return self.decoder(self.codebook.embed(idx), features)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass: (reconstruction, vq loss, indices), straight-through gradients."""
        z = F.normalize(self.encoder(x), dim=1)
        idx = self.codebook.lookup(z)
        q = self.codebook.embed(idx)
        vq_loss = F.mse_loss(q, z.detach()) + 0.25 * F.mse_loss(z, q.detach())
        q_st = z + (q - z).detach()
        return self.decoder(q_st), vq_loss, idx
