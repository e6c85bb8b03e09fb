"""Choosing each patch's rung of the continuous stream: a byte budget and a quality floor.

Inputs are per-patch tables over the rungs, measured by the encoder (see
``ContinuousCodec.ladder_table``): the bits each rung would cost and the squared error it
would leave, plus each patch's own signal power (variance of its thumbnail).

- **Floor.** A patch gets at least the lowest rung whose signal-to-error ratio reaches
  ``floor_db``. A fixed λ gives dark or flat patches very few bits, and their subject can
  vanish while the PSNR still looks fine; measured against the patch's own contrast, a
  vanishing subject is a low ratio and the patch is given more bits.
- **Budget.** With ``budget_bits``, rungs are then raised greedily, always the step that
  removes the most error per extra bit, while the frame still fits. If even the floor
  does not fit, rungs are lowered from the floor, the step that costs the least error per
  saved bit first, until the frame fits or every patch is at rung 0.

Pure numpy, so the sans-I/O rate controller and tests use it without torch.
"""

from __future__ import annotations

import numpy as np


def floor_rungs(error: np.ndarray, signal: np.ndarray, floor_db: float) -> np.ndarray:
    """(P,) the lowest rung whose 10*log10(signal/error) >= floor_db (the top rung if none)."""
    snr = 10 * np.log10(np.maximum(signal[:, None], 1e-12) / np.maximum(error, 1e-12))
    ok = snr >= floor_db
    top = error.shape[1] - 1
    return np.where(ok.any(axis=1), ok.argmax(axis=1), top)


def allocate_rungs(
    bits: np.ndarray,
    error: np.ndarray,
    signal: np.ndarray,
    *,
    base_rung: int = 0,
    budget_bits: float | None = None,
    floor_db: float | None = None,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """Each patch's rung, (P,) int. ``bits``/``error`` (P, R), ``signal`` (P,).

    Without a budget every patch gets ``max(base_rung, its floor rung)``. With one, the
    allocation starts there and moves up (or down) as the module doc says. ``start``
    (P,) gives the starting rungs instead of ``base_rung`` and ``floor_db``.
    """
    if bits.shape != error.shape or bits.ndim != 2 or signal.shape != bits.shape[:1]:
        raise ValueError(f"tables must be (P, R) and (P,), got {bits.shape}, {error.shape}")
    rungs = bits.shape[1]
    if not 0 <= base_rung < rungs:
        raise ValueError(f"Invalid base rung {base_rung}, should be in 0..{rungs - 1}")
    p = np.arange(bits.shape[0])
    chosen = np.full(bits.shape[0], base_rung)
    if start is not None:
        if start.shape != chosen.shape or start.min(initial=0) < 0 or start.max(initial=0) >= rungs:
            raise ValueError(f"start rungs must be (P,) in 0..{rungs - 1}")
        chosen = start.astype(int).copy()
    elif floor_db is not None:
        chosen = np.maximum(chosen, floor_rungs(error, signal, floor_db))
    if budget_bits is None:
        return chosen
    if budget_bits <= 0:
        raise ValueError(f"Invalid budget {budget_bits} bits, should be positive")
    total = bits[p, chosen].sum()
    while total > budget_bits and (chosen > 0).any():  # lower, least harm per saved bit
        down = np.maximum(chosen - 1, 0)
        saved = bits[p, chosen] - bits[p, down]
        harm = (error[p, down] - error[p, chosen]) / np.maximum(saved, 1e-9)
        harm[chosen == 0] = np.inf
        k = int(np.argmin(harm))
        total -= saved[k]
        chosen[k] -= 1
    while True:  # raise, most error removed per extra bit, while it fits
        up = np.minimum(chosen + 1, rungs - 1)
        extra = bits[p, up] - bits[p, chosen]
        gain = (error[p, chosen] - error[p, up]) / np.maximum(extra, 1e-9)
        gain[(chosen == rungs - 1) | (total + extra > budget_bits) | (gain <= 0)] = -np.inf
        k = int(np.argmax(gain))
        if not np.isfinite(gain[k]):
            return chosen
        total += extra[k]
        chosen[k] += 1
