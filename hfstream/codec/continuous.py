"""The continuous stream: a compressai mean-scale hyperprior on the 4x-downsampled patch.

A 256x256 patch is area-downsampled to 64x64 and coded by ``MeanScaleHyperprior``: the
latent ``y`` is 4x4xM and the hyper-latent ``z`` is 1x1xN, both entropy coded with
compressai's rANS coder. The decoded latent ``y_hat`` (written ŷc in the docs) drives the
predictor and the correction decoder, so the sender and the receiver must obtain the very
same tensor. Entropy decoding is exact; the float parts that feed it (the hyper-synthesis
``h_s``) are run one patch at a time, so the result never depends on how patches were
batched together.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from compressai.models import MeanScaleHyperprior

DOWNSAMPLE = 4
MAX_Y_BYTES = 4096  # a 256x256 patch needs a few hundred; more is refused as forged
MAX_Z_BYTES = 1024


def _padded(string: bytes, limit: int, what: str) -> bytes:
    """Check a string's length and append zeros that compressai's rANS decoder may read.

    compressai's decoder does not check the end of its input: a forged string could make
    it read past it (its escape coding can consume about 16 bytes per byte of input).
    Zeros after the real data keep every such read inside our buffer and end its loops;
    a valid string never reads them, so decoding it is unchanged.
    """
    if not isinstance(string, bytes):
        raise ValueError(f"{what} string must be bytes, got {type(string).__name__}")
    if not 0 < len(string) <= limit:
        raise ValueError(f"{what} string has {len(string)} bytes, allowed 1..{limit}")
    return string + bytes(16 * len(string) + 64)


@dataclass(frozen=True)
class ContinuousConfig:
    n: int = 96  # channels of the transforms and of z
    m: int = 128  # channels of y (the continuous latent the decoder sees)


class ContinuousCodec(MeanScaleHyperprior):
    """``MeanScaleHyperprior`` plus latent-level encode/decode helpers."""

    def __init__(self, config: ContinuousConfig) -> None:
        super().__init__(N=config.n, M=config.m)
        self.config = config

    @staticmethod
    def downsample(patches: torch.Tensor) -> torch.Tensor:
        """(B,3,256,256) in [0,1] -> (B,3,64,64) by box averaging."""
        return F.avg_pool2d(patches, DOWNSAMPLE)

    def _latent_params(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # One patch at a time: conv kernels may pick different summation orders for
        # different batch sizes, and a last-bit change in a scale can flip a CDF index.
        scales, means = [], []
        for i in range(z_hat.shape[0]):
            s, m = self.h_s(z_hat[i : i + 1]).chunk(2, 1)
            scales.append(s)
            means.append(m)
        return torch.cat(scales), torch.cat(means)

    def quantized_latent(self, low: torch.Tensor) -> torch.Tensor:
        """ŷc as ``compress_latent`` followed by ``decompress_latent`` gives it, without
        entropy coding (for training the stages that consume ŷc)."""
        y = self.g_a(low)
        z = self.h_a(y)
        z_hat = self.entropy_bottleneck.quantize(
            z, "dequantize", self.entropy_bottleneck._get_medians()
        )
        _, means = self.h_s(z_hat).chunk(2, 1)
        return self.gaussian_conditional.quantize(y, "dequantize", means)

    @torch.inference_mode()
    def compress_latent(self, low: torch.Tensor) -> list[tuple[bytes, bytes]]:
        """Code each 64x64 patch; returns one ``(y_string, z_string)`` pair per patch."""
        y = self.g_a(low)
        z = self.h_a(y)
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.shape[-2:])
        scales, means = self._latent_params(z_hat)
        indexes = self.gaussian_conditional.build_indexes(scales)
        y_strings = self.gaussian_conditional.compress(y, indexes, means=means)
        return list(zip(y_strings, z_strings, strict=True))

    @torch.inference_mode()
    def decompress_latent(
        self, strings: list[tuple[bytes, bytes]], latent_hw: tuple[int, int] = (4, 4)
    ) -> torch.Tensor:
        """Rebuild ``y_hat`` (B,M,h,w) from the per-patch string pairs."""
        z_hw = (latent_hw[0] // 4, latent_hw[1] // 4)
        y_strings = [_padded(s[0], MAX_Y_BYTES, "y") for s in strings]
        z_strings = [_padded(s[1], MAX_Z_BYTES, "z") for s in strings]
        z_hat = self.entropy_bottleneck.decompress(z_strings, z_hw)
        scales, means = self._latent_params(z_hat)
        indexes = self.gaussian_conditional.build_indexes(scales)
        return self.gaussian_conditional.decompress(y_strings, indexes, means=means)

    @torch.inference_mode()
    def synthesize(self, y_hat: torch.Tensor) -> torch.Tensor:
        """ŷc -> the 64x64 low-resolution picture, clamped to [0,1]."""
        return self.g_s(y_hat).clamp(0, 1)
