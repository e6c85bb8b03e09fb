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

import heapq

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
    return _fit(bits, error, chosen, budget_bits)


def _fit(bits: np.ndarray, error: np.ndarray, chosen: np.ndarray, budget_bits: float) -> np.ndarray:
    """``chosen`` lowered, least harm per saved bit first, until the frame fits
    ``budget_bits``, then raised, most error removed per extra bit first, while it fits.

    Each step changes one patch's rung, so only that patch's next step is weighed again:
    a heap of (merit, patch) per phase (ties to the lower patch, as ``argmax`` would).
    A patch whose next step does not fit never fits later (the total only grows while
    raising), so it leaves the heap. Planning runs this hundreds of times a frame; on
    numpy arrays of a few patches each step cost more than the arithmetic."""
    top = bits.shape[1] - 1
    b, e = bits.tolist(), error.tolist()
    rung = chosen.tolist()
    total = float(bits[np.arange(len(rung)), chosen].sum())

    def harm(k: int) -> float:
        r = rung[k]
        return (e[k][r - 1] - e[k][r]) / max(b[k][r] - b[k][r - 1], 1e-9)

    if total > budget_bits:  # lower
        lower = [(harm(k), k) for k in range(len(rung)) if rung[k] > 0]
        heapq.heapify(lower)
        while total > budget_bits and lower:
            _, k = heapq.heappop(lower)
            total -= b[k][rung[k]] - b[k][rung[k] - 1]
            rung[k] -= 1
            if rung[k] > 0:
                heapq.heappush(lower, (harm(k), k))

    def raised(k: int) -> tuple[float, int] | None:
        r = rung[k]
        if r == top:
            return None
        gain = (e[k][r] - e[k][r + 1]) / max(b[k][r + 1] - b[k][r], 1e-9)
        return (-gain, k) if gain > 0 else None

    upward = [step for k in range(len(rung)) if (step := raised(k)) is not None]
    heapq.heapify(upward)
    while upward:
        _, k = heapq.heappop(upward)
        extra = b[k][rung[k] + 1] - b[k][rung[k]]
        if total + extra > budget_bits:
            continue  # never fits again: the total only grows
        total += extra
        rung[k] += 1
        step = raised(k)
        if step is not None:
            heapq.heappush(upward, step)
    return np.array(rung, dtype=chosen.dtype)
