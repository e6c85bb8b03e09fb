"""The masked-token predictor: fills every missing index of a 16x16 map in one pass.

Each of the 256 positions is either a known codebook index or ``[MASK]``. Every layer
self-attends over the positions and cross-attends to the 16 features of the continuous
latent ŷc (4x4xM); ŷc is also added, up-sampled, to each position's input, so even a
fully masked map gets a picture-specific prediction. Trained with random and structured
masks, so a position withheld by the schedule and one lost on the network look the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class PredictorConfig:
    vocab: int = 1024  # codebook size; index ``vocab`` is [MASK]
    grid: int = 16  # the index map is grid x grid
    memory_dim: int = 128  # channels of ŷc
    memory_grid: int = 4  # ŷc is memory_grid x memory_grid
    d_model: int = 192
    layers: int = 6
    heads: int = 6
    mlp_ratio: int = 4


class MaskedTokenPredictor(nn.Module):
    def __init__(self, config: PredictorConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        d = c.d_model
        self.mask_id = c.vocab
        self.tok_emb = nn.Embedding(c.vocab + 1, d)
        self.row_emb = nn.Parameter(torch.randn(c.grid, d) * 0.02)
        self.col_emb = nn.Parameter(torch.randn(c.grid, d) * 0.02)
        self.mem_in = nn.Linear(c.memory_dim, d)
        self.mem_pos = nn.Parameter(torch.randn(c.memory_grid**2, d) * 0.02)
        self.local_in = nn.Linear(c.memory_dim, d)
        self.blocks = nn.ModuleList(
            nn.TransformerDecoderLayer(
                d,
                c.heads,
                dim_feedforward=c.mlp_ratio * d,
                dropout=0.0,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(c.layers)
        )
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, c.vocab)

    def forward(self, idx: torch.Tensor, y_hat: torch.Tensor) -> torch.Tensor:
        """idx (B, 256), ``mask_id`` where unknown; y_hat (B, M, 4, 4) -> logits (B, 256, V)."""
        c = self.config
        b = idx.shape[0]
        pos = (self.row_emb[:, None, :] + self.col_emb[None, :, :]).reshape(c.grid**2, -1)
        up = F.interpolate(y_hat, size=(c.grid, c.grid), mode="nearest")  # (B, M, 16, 16)
        local = self.local_in(up.flatten(2).transpose(1, 2))  # (B, 256, d)
        h = self.tok_emb(idx) + pos + local
        mem = self.mem_in(y_hat.flatten(2).transpose(1, 2)) + self.mem_pos  # (B, 16, d)
        for block in self.blocks:
            h = block(h, mem)
        return self.head(self.norm(h)).reshape(b, c.grid**2, c.vocab)

    @torch.no_grad()
    def fill(
        self, idx: torch.Tensor, known: torch.Tensor, y_hat: torch.Tensor, steps: int = 1
    ) -> torch.Tensor:
        """Replace every unknown index by a prediction; known ones are kept as they are."""
        return self.fill_with_confidence(idx, known, y_hat, steps)[0]

    @torch.no_grad()
    def fill_with_confidence(
        self, idx: torch.Tensor, known: torch.Tensor, y_hat: torch.Tensor, steps: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fill every unknown index; also return how sure the predictor was of each.

        idx, known: (B, 256) int64 / bool. ``steps == 1`` is one forward pass with arg-max.
        ``steps > 1`` is MaskGIT-style: at each step the most confident predictions are
        fixed (a cosine share of what is missing) and the rest predicted again.
        Confidence (B, 256) is the probability of the chosen word when it was chosen,
        1 where the index was known.
        """
        assert steps >= 1, f"steps must be at least 1, got {steps}"
        idx = torch.where(known, idx, torch.full_like(idx, self.mask_id))
        known = known.clone()
        chosen_conf = torch.ones(idx.shape, dtype=torch.float32, device=idx.device)
        missing0 = (~known).sum(dim=1)
        for s in range(steps):
            logits = self(idx, y_hat)
            conf, pred = F.softmax(logits.float(), dim=-1).max(dim=-1)
            if s == steps - 1:
                return torch.where(known, idx, pred), torch.where(known, chosen_conf, conf)
            # How many positions stay masked after this step (cosine schedule).
            still = torch.floor(missing0 * math.cos(math.pi / 2 * (s + 1) / steps)).long()
            conf = conf.masked_fill(known, -1.0)
            order = conf.argsort(dim=1, descending=True)
            n_fix = (~known).sum(dim=1) - still
            rank = torch.empty_like(order)
            rank.scatter_(1, order, torch.arange(order.shape[1]).expand_as(order))
            fix = (rank < n_fix[:, None]) & ~known
            idx = torch.where(fix, pred, idx)
            chosen_conf = torch.where(fix, conf, chosen_conf)
            known = known | fix
        raise AssertionError("unreachable")

    @torch.no_grad()
    def prior_logits(self, y_hat: torch.Tensor) -> torch.Tensor:
        """Logits of every position given ŷc alone (all masked): the index-coding prior."""
        b = y_hat.shape[0]
        idx = torch.full((b, self.config.grid**2), self.mask_id, dtype=torch.long)
        return self(idx.to(y_hat.device), y_hat)
