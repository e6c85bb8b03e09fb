"""Encode-time refinement of the continuous latent.

The analysis transform ``g_a`` is amortised: one forward pass guesses a latent for any
picture, and the guess is not the latent that the decoder would rate best for this one.
Refinement optimises the frame's latent ``y`` for its own rate-distortion cost, measured
through the decoder as the receiver runs it (entropy model, synthesis and learned
up-sampler, on the full-size picture), then codes it as usual. The receiver is unchanged:
the strings are ordinary strings of the same model.

Rounding is relaxed by stochastic Gumbel annealing (Yang, Bamler and Mandt, "Improving
inference for neural image compression", NeurIPS 2020): each latent element is a soft
mix of its two nearest quantisation points, their weights drawn from a Gumbel-softmax
whose temperature falls towards zero, so the optimisation ends at the hard rounding the
coder applies. The noise comes from a seeded generator: an encode is reproducible.

Measured on the validation photos in docs/notebook/codec-and-models.md (``hfstream.eval.ladder
--refine``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from hfstream.codec.continuous import (
    REFERENCE_LMBDA,
    ContinuousCodec,
    from_blocks,
    to_blocks,
)
from hfstream.codec.upsampler import LearnedUpsampler

DEFAULT_REFINE_STEPS = 50  # what ``--refine`` and the still-image paths use
LEARNING_RATE = 0.01  # Adam's, on the gained latent (quantisation step 1)
MAX_REFINE_STEPS = 1000
_START_TEMPERATURE = 0.5
_MIN_TEMPERATURE = 0.02
_DECAY = 4.0  # the temperature falls by e^-4 over the run
_SEED = 0


def check_refine_steps(steps: int) -> int:
    if not isinstance(steps, int) or not 0 <= steps <= MAX_REFINE_STEPS:
        raise ValueError(f"Invalid refine steps {steps!r}, should be 0..{MAX_REFINE_STEPS}")
    return steps


def rung_lmbdas(continuous: ContinuousCodec) -> torch.Tensor:
    """The rate-distortion trade-off (on 0-255 MSE) each rung stands for, (rungs,).

    A rung's gains were initialised at ``sqrt(λ / REFERENCE_LMBDA)`` and training keeps
    their geometric mean within a few per cent of it, so the gains give λ back for
    trained and extended rungs alike."""
    if continuous.rungs == 1:
        return torch.tensor([REFERENCE_LMBDA])
    mean_gain = continuous.gain.detach().float().log().mean(1).exp()
    return REFERENCE_LMBDA * mean_gain**2


def _soft_round(
    centred: torch.Tensor, temperature: float, generator: torch.Generator
) -> torch.Tensor:
    """A Gumbel-softmax mix of ``floor`` and ``floor + 1`` of ``centred`` (hard rounding
    with a straight-through gradient at temperature 0)."""
    if temperature == 0.0:
        return centred + (torch.round(centred) - centred).detach()
    low = torch.floor(centred)
    frac = (centred - low).clamp(1e-4, 1 - 1e-4)
    logits = torch.stack([-torch.atanh(frac), -torch.atanh(1 - frac)], -1) / temperature
    u = torch.rand(logits.shape, generator=generator).clamp(1e-10, 1 - 1e-10)
    weights = torch.softmax(logits - torch.log(-torch.log(u)), -1)
    return low + weights[..., 1]


def refine_latent(
    continuous: ContinuousCodec,
    upsampler: LearnedUpsampler | None,
    full: torch.Tensor,
    low: torch.Tensor,
    *,
    y: torch.Tensor,
    rungs: Sequence[int],
    steps: int,
    valid: tuple[int, int] | None = None,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """The latent of thumbnail ``low`` (1,3,64R,64C) refined for ``steps`` steps, each
        patch at its rung ``rungs[k]`` (row-major), against the full-size picture ``full``
        (1,3,256R,256C). ``y`` is ``continuous.analyse(low)``; so is the result's shape (the
        un-gained latent that ``compress_frame`` takes). ``valid``: the rows and columns of
        ``full`` that are picture rather than padding (default: all). ``progress`` is called
    after every step with the number of patches refined (for a progress bar)."""
    check_refine_steps(steps)
    if steps == 0:
        return y
    rows, cols = low.shape[-2] // 64, low.shape[-1] // 64
    if len(rungs) != rows * cols:
        raise ValueError(f"{len(rungs)} rungs given for {rows * cols} patches")
    checked = [continuous.check_rung(int(r)) for r in rungs]
    h, w = valid or full.shape[-2:]
    # Tensors made in inference mode (the encoder's) cannot enter autograd: all are
    # made, or cloned, here.
    with torch.inference_mode(False), torch.enable_grad():
        full = full.contiguous().clone()
        low = low.contiguous().clone()
        rung_t = torch.tensor(checked)
        lmbda = rung_lmbdas(continuous)[rung_t]  # (P,)
        mask = torch.zeros_like(full[:, :1])
        mask[..., :h, :w] = 1.0
        # Pixels of picture per patch: the distortion is each patch's mean, as in training.
        area = to_blocks_sum(mask, rows, cols).clamp_min(1.0)
        gains = continuous._gains(rung_t, inverse=False)
        inverse = continuous._gains(rung_t, inverse=True)
        gains = None if gains is None else gains.detach()
        inverse = None if inverse is None else inverse.detach()
        blocks = to_blocks(y.clone())
        if gains is not None:
            blocks = blocks * gains
        latent = blocks.detach().requires_grad_(True)
        opt = torch.optim.Adam([latent], lr=LEARNING_RATE)
        bottleneck, conditional = continuous.entropy_bottleneck, continuous.gaussian_conditional
        medians = bottleneck._get_medians().detach().reshape(1, -1, 1, 1)
        generator = torch.Generator().manual_seed(_SEED)
        thumb_pixels = float(low.shape[-2] * low.shape[-1]) / (rows * cols)
        for step in range(steps):
            # The last step sees the hard rounding the coder will apply.
            temperature = (
                0.0
                if step == steps - 1
                else max(_START_TEMPERATURE * math.exp(-_DECAY * step / steps), _MIN_TEMPERATURE)
            )
            z = continuous.h_a(latent)
            z_hat = z + (torch.round(z - medians) + medians - z).detach()
            z_lik, _, _ = bottleneck._likelihood(z_hat.permute(1, 0, 2, 3).flatten(1)[:, None])
            z_bits = -torch.log2(bottleneck.likelihood_lower_bound(z_lik)).reshape(-1, len(rungs))
            scales, means = continuous.h_s(z_hat).chunk(2, 1)
            y_hat = _soft_round(latent - means, temperature, generator) + means
            y_lik = conditional.likelihood_lower_bound(
                conditional._likelihood(y_hat, scales, means)
            )
            bits = -torch.log2(y_lik).flatten(1).sum(1) + z_bits.sum(0)  # (P,)
            frame = from_blocks(y_hat if inverse is None else y_hat * inverse, rows, cols)
            thumb = continuous.g_s(frame).clamp(0, 1)
            picture = continuous.shown(thumb) if upsampler is None else upsampler(thumb, frame)
            error = ((picture.clamp(0, 1) - full) ** 2 * mask).mean(1, keepdim=True)
            mse = to_blocks_sum(error, rows, cols) / area  # (P,)
            loss = (lmbda * 255**2 * mse + bits / thumb_pixels).sum()
            (grad,) = torch.autograd.grad(loss, [latent])
            latent.grad = grad
            opt.step()
            if progress is not None:
                progress(len(rungs))
        refined = latent.detach()
    if gains is not None:
        refined = refined / gains
    return from_blocks(refined, rows, cols)


def to_blocks_sum(x: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """(1,1,256R,256C) -> (R*C,): the sum over each patch, row-major."""
    return F.avg_pool2d(x, (x.shape[-2] // rows, x.shape[-1] // cols)).flatten() * (
        (x.shape[-2] // rows) * (x.shape[-1] // cols)
    )


__all__ = ["DEFAULT_REFINE_STEPS", "check_refine_steps", "refine_latent", "rung_lmbdas"]
