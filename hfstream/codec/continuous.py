"""The continuous stream: a compressai mean-scale hyperprior on the 4x-downsampled picture.

A 256x256 patch is area-downsampled to 64x64; its latent ``y`` is 4x4xM and its
hyper-latent ``z`` 1x1xN, both entropy coded with compressai's rANS coder, one string pair
per patch, so a lost packet costs only its own patch. The decoded latent ``y_hat``
(written ŷc in the docs) drives the predictor and the correction decoder, so the sender
and the receiver must obtain the very same tensor: entropy decoding is exact, and the
float parts that feed it (the hyper-synthesis ``h_s``) run one patch at a time, so the
result never depends on how patches were batched together.

Two things are frame-wide rather than per patch, because they need no bit-exactness:

- the analysis ``g_a`` runs on the whole (padded) thumbnail, so a patch's ``y`` is made
  knowing its neighbours;
- the synthesis ``g_s`` runs on the whole frame's ``y_hat`` map, so the picture has no
  256-px seams. A patch whose strings were lost gets ``y_hat`` borrowed from its
  neighbours (``fill_missing_blocks``: what the predictor and the up-sampler read), and
  its thumbnail filled smoothly from theirs (``fill_missing_pixels``).

**The rate ladder.** A model with ``rungs > 1`` is one network with a gain vector per
rung (Cui et al., "Asymmetric gained deep image compression", CVPR 2021): the latent is
multiplied channel-wise by ``gain[r]`` before quantisation and by ``inverse_gain[r]``
after it, so a larger gain means finer quantisation and more bytes. The rung travels with
each patch; ``y_hat`` is always in the same (un-gained) space, so the predictor and the
correction decoder serve every rung. ``rungs == 1`` is the single-rate stream of models
before the ladder, with no gains at all.

``extended_below`` adds rungs under the lowest trained one by scaling its gains down
(coarser quantisation, fewer bytes): the gains interpolate smoothly between trained
rungs, and a short extrapolation costs little against a trained rung (measured in
docs/notebook/codec-and-models.md, v7). They give the planner cheap tier-0 strings to
protect under loss.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hfstream.codec import rans
from hfstream.codec.tiling import from_tiles, to_tiles

with warnings.catch_warnings():
    # compressai pulls in torch_geometric, whose import-time torch.jit.script calls make
    # torch print a deprecation warning on every CLI run; it says nothing about hfstream.
    warnings.filterwarnings(
        "ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning
    )
    from compressai.models import MeanScaleHyperprior

DOWNSAMPLE = 4
LATENT_STRIDE = 16  # of g_a, on the thumbnail: a 64x64 patch thumbnail has a 4x4 latent
BLOCK = 4  # latent rows/cols per 256-px patch
MAX_Y_BYTES = 4096  # a 256x256 patch needs a few hundred; more is refused as forged
MAX_Z_BYTES = 1024
REFERENCE_LMBDA = 0.004  # the rate the single-rate stream was trained at
# What rANS adds to the information content of a patch's two strings (state flush and
# rounding), measured over the validation photos at every rung: 88 bits on average.
STRING_OVERHEAD_BITS = 88.0


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
    rungs: int = 1  # rungs of the rate ladder (1: a single-rate stream, no gains)
    default_rung: int = 1  # where encoding starts when no rung or budget is given


def ladder_lmbdas(rungs: int, lowest: float = 0.0016, ratio: float = 2.0) -> list[float]:
    """The rate-distortion trade-off of every rung, lowest rate first."""
    return [lowest * ratio**r for r in range(rungs)]


def to_blocks(y: torch.Tensor) -> torch.Tensor:
    """(B, M, 4R, 4C) frame latents -> (B*R*C, M, 4, 4) per-patch blocks, row-major."""
    return to_tiles(y, y.shape[-2] // BLOCK, y.shape[-1] // BLOCK)


def from_blocks(blocks: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Inverse of ``to_blocks``: (B*R*C, M, 4, 4) -> (B, M, 4R, 4C)."""
    return from_tiles(blocks, rows, cols)


def to_blocks_image(x: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """(1, C, R*h, C*w) picture -> (R*C, C, h, w) per-patch tiles, row-major."""
    return to_tiles(x, rows, cols)


def fill_missing_blocks(blocks: torch.Tensor, present: torch.Tensor, rows: int, cols: int):
    """Give every absent patch block the mean of its present 8-neighbours' blocks (zeros,
    the latent's typical value, when none is present). ``blocks`` (R*C, M, 4, 4),
    ``present`` (R*C,) bool. Returns a new tensor."""
    out = blocks.clone()
    if bool(present.all()):
        return out
    grid = present.reshape(rows, cols)
    for k in torch.nonzero(~present).flatten().tolist():
        r, c = divmod(k, cols)
        near = [
            rr * cols + cc
            for rr in range(max(0, r - 1), min(rows, r + 2))
            for cc in range(max(0, c - 1), min(cols, c + 2))
            if bool(grid[rr, cc])
        ]
        out[k] = blocks[near].mean(0) if near else 0.0
    return out


# Jacobi steps that smooth a lost patch's filled thumbnail after the push-pull: they
# take out the coarse levels' bilinear creases (64-px holes), at little cost beside the
# synthesis (docs/notebook/loss-sweeps.md).
FILL_RELAX_STEPS = 30


def _push_pull(img: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """``img`` (B,C,H,W) with its pixels where ``known`` (B,1,H,W, 0/1) is 0 interpolated
    from the known ones: averaged down a pyramid of known pixels, then brought back up
    bilinear (push-pull interpolation). All unknown: the mean of the known, or ``img``."""
    if bool(known.min() > 0):
        return img
    h, w = img.shape[-2:]
    if h <= 2 or w <= 2:
        weight = known.sum((-2, -1), keepdim=True)
        mean = (img * known).sum((-2, -1), keepdim=True) / weight.clamp(min=1e-6)
        return torch.where(known > 0, img, mean.expand_as(img))
    share = F.avg_pool2d(known, 2, ceil_mode=True)
    coarse = F.avg_pool2d(img * known, 2, ceil_mode=True) / share.clamp(min=1e-6)
    coarse = _push_pull(coarse, (share > 0).to(img.dtype))
    up = F.interpolate(coarse, scale_factor=2, mode="bilinear", align_corners=False)
    return torch.where(known > 0, img, up[..., :h, :w])


def fill_missing_pixels(
    low: torch.Tensor, present: torch.Tensor, rows: int, cols: int
) -> torch.Tensor:
    """The frame's thumbnail ``low`` (1,3,H,W) with every absent patch's region
    (``present`` (R*C,) False) filled smoothly from the pixels of the patches that
    arrived. Synthesising the neighbours' borrowed latents there repeats their texture
    and colour (a red parrot where white rock was); a smooth fill from the arrived
    borders is what the viewer can trust. ``low`` itself when every patch arrived, or
    none did."""
    if bool(present.all()) or not bool(present.any()):
        return low
    ph, pw = low.shape[-2] // rows, low.shape[-1] // cols
    grid = present.reshape(1, 1, rows, cols).to(low.dtype)
    known = grid.repeat_interleave(ph, 2).repeat_interleave(pw, 3)
    out = _push_pull(low, known)
    for _ in range(FILL_RELAX_STEPS):
        smooth = F.avg_pool2d(F.pad(out, (1, 1, 1, 1), mode="replicate"), 3, 1)
        out = torch.where(known > 0, low, smooth)
    return out


class ContinuousCodec(MeanScaleHyperprior):
    """``MeanScaleHyperprior`` plus the rate ladder and latent-level encode/decode helpers."""

    def __init__(self, config: ContinuousConfig) -> None:
        super().__init__(N=config.n, M=config.m)
        if config.rungs < 1:
            raise ValueError(f"Invalid rungs {config.rungs}, should be at least 1")
        self.config = config
        # How ``shown`` brings a thumbnail back to full size where no learned up-sampler
        # is: bicubic for pictures. ``HybridCodec`` sets its residual stream bilinear.
        self.interpolation = "bicubic"
        if config.rungs > 1:
            init = torch.tensor(
                [math.sqrt(lm / REFERENCE_LMBDA) for lm in ladder_lmbdas(config.rungs)]
            )
            self.gain = nn.Parameter(init[:, None].repeat(1, config.m))
            self.inverse_gain = nn.Parameter(1.0 / init[:, None].repeat(1, config.m))

    @property
    def rungs(self) -> int:
        return self.config.rungs

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        # Weights of a single-rate stream start a ladder: its rung gains take their
        # initial values (the reference rung keeps gain 1).
        if self.config.rungs > 1 and prefix + "gain" not in state_dict:
            state_dict[prefix + "gain"] = self.gain.detach().clone()
            state_dict[prefix + "inverse_gain"] = self.inverse_gain.detach().clone()
        # The likelihood floors are constants, not weights: a float16 copy (a packed
        # checkpoint) flushes 1e-9 to 0, and a zero floor makes a rare symbol's estimated
        # bits infinite. Keep the constructor's value whatever the file says.
        for entropy_model in ("entropy_bottleneck", "gaussian_conditional"):
            key = f"{prefix}{entropy_model}.likelihood_lower_bound.bound"
            if key in state_dict:
                module = getattr(self, entropy_model).likelihood_lower_bound
                state_dict[key] = module.bound.detach().clone()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extended_below(self, factors: Sequence[float]) -> ContinuousCodec:
        """A copy with one rung more under the lowest per factor (each in (0, 1)): rung r
        of the copy, r < len(factors), has gains ``factors[r] * gain[0]``; the trained
        rungs follow. ``factors`` ascending, so that rungs still rise in rate."""
        if self.config.rungs == 1:
            raise ValueError("a single-rate stream has no gains to extend")
        if not factors or list(factors) != sorted(factors) or not 0 < factors[0] <= factors[-1] < 1:
            raise ValueError(f"Invalid factors {list(factors)}, should ascend within (0, 1)")
        rungs = self.config.rungs + len(factors)
        config = ContinuousConfig(
            n=self.config.n,
            m=self.config.m,
            rungs=rungs,
            default_rung=self.config.default_rung + len(factors),
        )
        copy = ContinuousCodec(config)
        state = self.state_dict()
        f = torch.tensor(list(factors), dtype=self.gain.dtype)[:, None]
        state["gain"] = torch.cat([f * self.gain[:1].detach(), self.gain.detach()])
        state["inverse_gain"] = torch.cat(
            [self.inverse_gain[:1].detach() / f, self.inverse_gain.detach()]
        )
        copy.load_state_dict(state)
        copy.update(force=True)
        return copy

    def check_rung(self, rung: int) -> int:
        if not 0 <= rung < self.config.rungs:
            last = self.config.rungs - 1
            raise ValueError(f"Invalid rung {rung}, this model has rungs 0..{last}")
        return rung

    def _gains(self, rung: torch.Tensor | int, inverse: bool) -> torch.Tensor | None:
        """(B, M, 1, 1) gains for a rung per sample, or None for a single-rate stream."""
        if self.config.rungs == 1:
            return None
        table = self.inverse_gain if inverse else self.gain
        return table[rung].reshape(-1, self.config.m, 1, 1)

    @staticmethod
    def downsample(pictures: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) in [0,1] -> (B,3,H/4,W/4) by box averaging."""
        return F.avg_pool2d(pictures, DOWNSAMPLE)

    @staticmethod
    def upsample(low: torch.Tensor, mode: str = "bicubic") -> torch.Tensor:
        """The thumbnail back at full size: what a preview shows (and training scores)."""
        return F.interpolate(low, scale_factor=DOWNSAMPLE, mode=mode, align_corners=False)

    def shown(self, low: torch.Tensor) -> torch.Tensor:
        """``low`` (B,3,h,w) at full size by this stream's ``interpolation``: what is
        shown of it where no learned up-sampler is."""
        return self.upsample(low, self.interpolation)

    # ------------------------------------------------------------------ training
    def forward(self, x: torch.Tensor, rung: torch.Tensor | None = None) -> dict[str, Any]:
        """compressai's training pass, or with ``rung`` the ladder's (``forward_ladder``)."""
        return super().forward(x) if rung is None else self.forward_ladder(x, rung)

    def forward_ladder(self, low: torch.Tensor, rung: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training pass over whole thumbnails (B,3,H,W), H and W multiples of 64.

        ``rung`` (B,) picks each sample's rung. The rate uses additive uniform noise
        (a differentiable stand-in for rounding); the synthesis gets the rounded latent
        with a straight-through gradient, which is what it meets at decode time.
        Returns ``x_hat`` (B,3,H,W), ``bits`` (B,), the rate of each sample, and
        ``y_hat`` (B,M,H/16,W/16), the rounded latent the synthesis read (what a learned
        up-sampler reads beside the thumbnail).
        """
        y = self.g_a(low)
        rows, cols = y.shape[-2] // BLOCK, y.shape[-1] // BLOCK
        per = rows * cols
        gains = self._gains(rung, inverse=False)
        if gains is not None:
            y = y * gains
        blocks = to_blocks(y)
        z = self.h_a(blocks)
        z_hat, z_lik = self.entropy_bottleneck(z)
        scales, means = self.h_s(z_hat).chunk(2, 1)
        _, y_lik = self.gaussian_conditional(blocks, scales, means=means)
        centred = blocks - means
        y_hat_blocks = centred + (torch.round(centred) - centred).detach() + means
        y_hat = from_blocks(y_hat_blocks, rows, cols)
        inverse = self._gains(rung, inverse=True)
        if inverse is not None:
            y_hat = y_hat * inverse
        bits = -(torch.log2(y_lik).flatten(1).sum(1) + torch.log2(z_lik).flatten(1).sum(1))
        return {"x_hat": self.g_s(y_hat), "bits": bits.reshape(-1, per).sum(1), "y_hat": y_hat}

    def quantized_latent(self, low: torch.Tensor, rung: torch.Tensor | int = 0) -> torch.Tensor:
        """Per-patch ŷc blocks (B*R*C, M, 4, 4) as coding then decoding gives them, without
        entropy coding (for training the stages that consume ŷc). ``low`` (B,3,H,W)."""
        y = self.g_a(low)
        gains = self._gains(rung, inverse=False)
        if gains is not None:
            y = y * gains
        blocks = to_blocks(y)
        z = self.h_a(blocks)
        z_hat = self.entropy_bottleneck.quantize(
            z, "dequantize", self.entropy_bottleneck._get_medians()
        )
        _, means = self.h_s(z_hat).chunk(2, 1)
        y_hat = self.gaussian_conditional.quantize(blocks, "dequantize", means)
        inverse = self._gains(rung, inverse=True)
        if inverse is not None:
            per = blocks.shape[0] // low.shape[0]
            if inverse.shape[0] > 1:
                inverse = inverse.repeat_interleave(per, 0)
            y_hat = y_hat * inverse
        return y_hat

    # ------------------------------------------------------------------ coding
    def _latent_params(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # One patch at a time: conv kernels may pick different summation orders for
        # different batch sizes, and a last-bit change in a scale can flip a CDF index.
        scales, means = [], []
        for i in range(z_hat.shape[0]):
            s, m = self.h_s(z_hat[i : i + 1]).chunk(2, 1)
            scales.append(s)
            means.append(m)
        return torch.cat(scales), torch.cat(means)

    @torch.inference_mode()
    def analyse(self, low: torch.Tensor) -> torch.Tensor:
        """The analysis transform of a thumbnail (1,3,64R,64C): y (1,M,4R,4C), before any
        rung's gains. ``ladder_table`` and ``compress_frame`` take it, so that a frame
        measured at several rungs and then coded is analysed once."""
        return self.g_a(low)

    @torch.inference_mode()
    def compress_frame(
        self, low: torch.Tensor, rungs: list[int], y: torch.Tensor | None = None
    ) -> list[tuple[bytes, bytes]]:
        """Code one frame's thumbnail (1,3,64R,64C): one ``(y, z)`` string pair per patch,
        row-major, patch ``k`` at rung ``rungs[k]``. ``y``: its ``analyse``, if known."""
        y = self.g_a(low) if y is None else y
        blocks = to_blocks(y)
        if len(rungs) != blocks.shape[0]:
            raise ValueError(f"{len(rungs)} rungs given for {blocks.shape[0]} patches")
        rung_t = torch.tensor([self.check_rung(r) for r in rungs])
        gains = self._gains(rung_t, inverse=False)
        if gains is not None:
            blocks = blocks * gains
        z = self.h_a(blocks)
        bottleneck, conditional = self.entropy_bottleneck, self.gaussian_conditional
        z_symbols = bottleneck.quantize(z, "symbols", self._z_medians(z.shape[0]))
        z_strings = rans.encode(bottleneck, z_symbols, self.z_indexes(z.shape[0]))
        indexes, means = self.y_params(z_symbols)
        y_strings = rans.encode(
            conditional, conditional.quantize(blocks, "symbols", means), indexes
        )
        return list(zip(y_strings, z_strings, strict=True))

    def _z_medians(self, patches: int) -> torch.Tensor:
        medians = self.entropy_bottleneck._get_medians().detach().reshape(-1, 1, 1)
        return medians.expand(patches, -1, -1, -1)  # as compressai's compress and decompress

    def z_indexes(self, patches: int) -> torch.Tensor:
        """The CDF index of each z symbol of ``patches`` patches (one per channel)."""
        bottleneck = self.entropy_bottleneck
        return bottleneck._build_indexes((patches, bottleneck._quantized_cdf.size(0), 1, 1))

    def y_params(self, z_symbols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(CDF indexes, means) of each y symbol of the patches whose z symbols are
        ``z_symbols`` (P, N, 1, 1): what both ends derive from ẑ, bit for bit."""
        medians = self._z_medians(z_symbols.shape[0])
        z_hat = self.entropy_bottleneck.dequantize(z_symbols, medians)
        scales, means = self._latent_params(z_hat)
        return self.gaussian_conditional.build_indexes(scales), means

    @torch.inference_mode()
    def ladder_table(
        self,
        low: torch.Tensor,
        only: Sequence[int] | None = None,
        y: torch.Tensor | None = None,
        *,
        synthesised: Sequence[int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """What each rung would give each patch of one frame's thumbnail (1,3,64R,64C):
        estimated bits (P, rungs) from the entropy model's likelihoods, the squared error
        (P, rungs) of the patch's synthesised thumbnail, and the patch's own signal power
        (P,), the variance of its thumbnail. For ``hfstream.codec.allocation``. ``only``:
        these rungs, in this order (a synthesis each), instead of every rung. ``y``: the
        thumbnail's ``analyse``, if known. ``synthesised`` (with every rung, ascending,
        the first and the last among them): the rungs whose error is measured; the others'
        is interpolated log-linearly between their measured neighbours (the synthesis is
        most of the table's cost, the bits are cheap)."""
        rungs = list(range(self.config.rungs)) if only is None else list(only)
        measured = set(rungs if synthesised is None else synthesised)
        if synthesised is not None and (only is not None or not {rungs[0], rungs[-1]} <= measured):
            raise ValueError(
                f"synthesised rungs {sorted(measured)} must include the first and last of "
                f"the full ladder {rungs[0]}..{rungs[-1]}"
            )
        y = self.g_a(low) if y is None else y
        rows, cols = y.shape[-2] // BLOCK, y.shape[-1] // BLOCK
        patches = to_blocks_image(low, rows, cols)  # (P, 3, 64, 64)
        bits, error = [], []
        for rung in rungs:
            gains = self._gains(rung, inverse=False)
            blocks = to_blocks(y if gains is None else y * gains)
            z_hat, z_lik = self.entropy_bottleneck(self.h_a(blocks))  # eval: rounded
            # Every patch at once: an estimate need not match the coder to the last bit.
            scales, means = self.h_s(z_hat).chunk(2, 1)
            y_hat, y_lik = self.gaussian_conditional(blocks, scales, means=means)
            info = -(torch.log2(y_lik).flatten(1).sum(1) + torch.log2(z_lik).flatten(1).sum(1))
            bits.append(info + STRING_OVERHEAD_BITS)
            if rung not in measured:
                error.append(None)
                continue
            inverse = self._gains(rung, inverse=True)
            frame = from_blocks(y_hat if inverse is None else y_hat * inverse, rows, cols)
            seen = to_blocks_image(self.synthesize(frame), rows, cols)
            error.append(((seen - patches) ** 2).flatten(1).mean(1))
        signal = patches.flatten(1).var(1)
        return torch.stack(bits, 1), torch.stack(_interpolated(error), 1), signal

    @torch.inference_mode()
    def compress_latent(self, low: torch.Tensor, rung: int = 0) -> list[tuple[bytes, bytes]]:
        """Code each 64x64 patch thumbnail of (B,3,64,64) on its own, all at one rung."""
        out: list[tuple[bytes, bytes]] = []
        for i in range(low.shape[0]):
            out += self.compress_frame(low[i : i + 1], [rung])
        return out

    @torch.inference_mode()
    def decompress_latent(
        self, strings: list[tuple[bytes, bytes]], rungs: list[int] | None = None
    ) -> torch.Tensor:
        """Rebuild per-patch ``y_hat`` blocks (B,M,4,4) from their string pairs."""
        if rungs is None:
            rungs = [0] * len(strings)
        if len(rungs) != len(strings):
            raise ValueError(f"{len(rungs)} rungs given for {len(strings)} patches")
        y_strings = [_padded(s[0], MAX_Y_BYTES, "y") for s in strings]
        z_strings = [_padded(s[1], MAX_Z_BYTES, "z") for s in strings]
        rung_t = torch.tensor([self.check_rung(r) for r in rungs])
        z_symbols = rans.decode(self.entropy_bottleneck, z_strings, self.z_indexes(len(strings)))
        indexes, means = self.y_params(z_symbols)
        y_symbols = rans.decode(self.gaussian_conditional, y_strings, indexes)
        y_hat = self.gaussian_conditional.dequantize(y_symbols, means)
        inverse = self._gains(rung_t, inverse=True)
        return y_hat if inverse is None else y_hat * inverse

    @torch.inference_mode()
    def synthesize(self, y_hat: torch.Tensor) -> torch.Tensor:
        """ŷc (B,M,h,w) -> the low-resolution picture (B,3,16h,16w), clamped to [0,1]."""
        return self.g_s(y_hat).clamp(0, 1)

    @torch.inference_mode()
    def synthesize_frame(
        self, blocks: torch.Tensor, present: torch.Tensor, rows: int, cols: int
    ) -> torch.Tensor:
        """The whole frame's thumbnail (1,3,64R,64C) from its patch blocks (R*C,M,4,4),
        absent ones (``present`` False) filled from their neighbours' pixels
        (``fill_missing_pixels``)."""
        filled = fill_missing_blocks(blocks, present, rows, cols)
        low = self.synthesize(from_blocks(filled, rows, cols))
        return fill_missing_pixels(low, present, rows, cols)


def _interpolated(errors: list[torch.Tensor | None]) -> list[torch.Tensor]:
    """``errors`` per rung with each missing one (None) filled log-linearly between the
    nearest measured rungs on either side (the first and the last are measured)."""
    known = [i for i, e in enumerate(errors) if e is not None]
    out: list[torch.Tensor] = []
    for i, e in enumerate(errors):
        if e is not None:
            out.append(e)
            continue
        lo = max(k for k in known if k < i)
        hi = min(k for k in known if k > i)
        t = (i - lo) / (hi - lo)
        a, b = errors[lo], errors[hi]
        assert a is not None and b is not None
        out.append(torch.exp((1 - t) * a.clamp_min(1e-12).log() + t * b.clamp_min(1e-12).log()))
    return out
