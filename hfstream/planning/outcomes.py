"""What a plan is expected to show: the mean MSE and PSNR of a frame over the fixed loss
patterns of its channel (``channel.loss_patterns``), given how its tier 0 is packed and
protected and what each patch shows when its tier 0 is lost."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hfstream.planning.channel import PATTERN_PACKETS, PATTERNS, Channel, loss_patterns


@dataclass(frozen=True)
class PatchErrors:
    """Each patch's error (MSE, pixels in [0, 1]) by what reaches the receiver."""

    #: its tier 0 arrives (the planned rung, less what its indices add)
    received: np.ndarray
    #: its tier 0 is lost: shown from a neighbour's latent (``RungTable.lost``)
    lost: np.ndarray
    #: its tier 0 is lost and no neighbour's arrived: shown mid-grey (None: priced as
    #: ``lost``)
    blank: np.ndarray | None = None
    #: rows and columns of the patches, for their 8 neighbours (None: a patch has a
    #: neighbour left while any patch arrived)
    grid: tuple[int, int] | None = None


@dataclass(frozen=True)
class FallbackOption:
    """What sending the frame's fallback would cost and give: its packets' bytes (headers
    and tags included), how many packets, and each patch's error (pixels in [0, 1]) when
    the patch's tier 0 is lost and the fallback's picture shows instead; ``copies`` of it
    (any copy of each packet will do) cost ``copies`` times the bytes."""

    bytes: int
    packets: int
    errors: np.ndarray
    copies: int = 1

    @property
    def total_bytes(self) -> int:
        return self.bytes * self.copies


def frame_outcomes(
    errors: PatchErrors,
    channel: Channel,
    *,
    packets: int,
    parity_ratio: float,
    fec_block: int,
    resends: float = math.inf,
    fallback: FallbackOption | None = None,
) -> tuple[float, float]:
    """(expected MSE, expected PSNR in dB) of a frame whose patches travel in ``packets``
    tier-0 packets, patch i in packet i mod ``packets`` (as the packetizer spreads them),
    protected by erasure-code blocks of ``fec_block`` packets with
    ``ceil(k * parity_ratio)`` parity packets each, over ``channel``: a run of losses
    takes parity with the data it protects. A patch shows ``errors.received`` when its
    packet arrives or is rebuilt, ``errors.lost`` when not, or ``errors.blank`` when none
    of its 8 neighbours arrived either (without ``errors.grid``: when no patch arrived):
    it has no latent to borrow.

    With ``channel.rounds`` above 1, a lost tier-0 packet is sent again in up to
    ``rounds - 1`` more rounds, at most ``resends`` packets in all (what the budget
    leaves), first lost first resent. ``fallback``: the fallback's packets (every copy)
    go after tier 0 and its parity, and one lost in every copy is resent like them;
    where each arrives, a lost patch costs the fallback's error instead.

    The mean is over fixed loss patterns. PSNR is what a viewer (and every benchmark)
    averages frame by frame: a plan that risks losing one patch now and then can beat
    one that pays for certainty with every patch's quality, which the mean MSE, ruled by
    the rare frames that lose much, would not allow."""
    received, lost = errors.received, errors.lost
    n = len(received)
    if channel.loss <= 0:
        mse = float(received.mean())
        return mse, _psnr(mse)
    burst = None if channel.burst is None else round(channel.burst, 2)
    # Rounded, so that nearby reports share a cached pattern.
    pattern = loss_patterns(round(channel.loss, 4), burst)
    lost_packet = np.zeros((PATTERNS, packets), bool)
    column = 0
    for start in range(0, packets, fec_block):
        kb = min(fec_block, packets - start)
        mb = max(1, math.ceil(kb * parity_ratio)) if parity_ratio > 0 else 0
        if column + kb + mb > PATTERN_PACKETS:  # beyond any real frame: no coding gain
            mb = 0
        gone = pattern[:, column : column + kb + mb]
        column += kb + mb
        rebuilt = gone.sum(axis=1) <= mb  # MDS: any kb of the kb + mb packets will do
        lost_packet[:, start : start + kb] = gone[:, :kb] & ~rebuilt[:, None]
    extra = 0
    sent = fallback.packets * fallback.copies if fallback is not None else 0
    if fallback is not None and column + sent <= PATTERN_PACKETS:
        extra = fallback.packets
        copies = pattern[:, column : column + sent].reshape(PATTERNS, fallback.copies, extra)
        lost_packet = np.concatenate([lost_packet, copies.all(axis=1)], 1)
        column += sent
    if channel.rounds > 1:
        lost_packet = _resent(lost_packet, pattern, column, channel.rounds, resends)
    patch_lost = lost_packet[:, np.arange(n) % packets]  # (PATTERNS, n)
    shown = np.where(patch_lost, lost[None, :], received[None, :])
    if errors.blank is not None:
        grid = errors.grid
        if grid is not None and grid[0] * grid[1] == n:
            arrived_near = (~patch_lost).astype(np.float64) @ _adjacency(*grid)
            alone = patch_lost & (arrived_near == 0)
        else:
            alone = patch_lost & patch_lost.all(axis=1, keepdims=True)
        shown = np.where(alone, errors.blank[None, :], shown)
    if fallback is not None and extra:
        arrived = ~lost_packet[:, packets:].any(axis=1, keepdims=True)  # every fallback packet
        shown = np.where(patch_lost & arrived, fallback.errors[None, :], shown)
    frame_mse = shown.mean(axis=1)
    psnr = -10.0 * np.log10(np.maximum(frame_mse, 1e-10))
    return float(frame_mse.mean()), float(psnr.mean())


def _resent(
    lost: np.ndarray, pattern: np.ndarray, column: int, rounds: int, resends: float
) -> np.ndarray:
    """``lost`` (PATTERNS, k) after up to ``rounds - 1`` rounds that send each still-lost
    packet again, ``resends`` packets at most per pattern. A resend of packet j in a round
    meets the pattern's column ``column + j`` of that round's k columns: resends in one
    round are consecutive, as bursts see them."""
    k = lost.shape[1]
    used = np.zeros(lost.shape[0])
    for _ in range(rounds - 1):
        if column + k > PATTERN_PACKETS or not lost.any():
            break
        allowed = lost & (used[:, None] + np.cumsum(lost, axis=1) <= resends)
        lost = lost & ~(allowed & ~pattern[:, column : column + k])
        used += allowed.sum(axis=1)
        column += k
    return lost


def _adjacency(rows: int, cols: int) -> np.ndarray:
    """(n, n) 0/1: patches that are 8-neighbours (a patch is not its own)."""
    r, c = np.divmod(np.arange(rows * cols), cols)
    near = (np.abs(r[:, None] - r[None, :]) <= 1) & (np.abs(c[:, None] - c[None, :]) <= 1)
    np.fill_diagonal(near, False)
    return near.astype(np.float64)


def _psnr(mse: float) -> float:
    return -10.0 * math.log10(max(mse, 1e-10))
