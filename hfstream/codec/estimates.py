"""What each rung of the continuous stream would give each patch: the rung table that the
planners read, the errors they price a lost patch at, and the encoder's rung choice
(the quality floor, a byte budget) that reads the same measurements.

Every estimate is measured on the thumbnail, before any string is coded: the planner
compares rungs, scales and schedules without coding each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from hfstream.codec.allocation import allocate_rungs
from hfstream.codec.continuous import DOWNSAMPLE, ContinuousCodec
from hfstream.codec.frames import FrameBands, frame_bands
from hfstream.codec.rates import Budget, PerPatch, RungChoice
from hfstream.codec.scaling import downscale
from hfstream.codec.tiling import to_tiles
from hfstream.geometry import FINE, PATCH, Scale

QUALITY_FLOOR_DB = 12.0  # no patch's thumbnail below this signal-to-error ratio, if it can
# dB a scaled table's errors are raised by, per scale, so that the planner compares scales
# fairly: the estimate's bias at that scale less its bias at full size, measured on 20
# training photos at rungs 0 and 2 (docs/notebook/rate-and-planner.md, "Frames coded below
# their size"): the estimate up-samples bicubically and never sees the last up-scale.
# FINE's: 12 training photos, ``python -m sim.scale_bias`` (the estimate is pessimistic
# there: the learned up-sampler beats bicubic by more on the larger thumbnail).
SCALED_ERROR_BIAS_DB = {FINE: -0.37, 2: 0.52, 4: 1.5}


@dataclass(frozen=True)
class RungTable:
    """What each rung of the continuous stream would give each patch of one frame, as
    ``HybridCodec.rung_table`` measures it (numpy, for the planners).

    Errors are mean squared errors per pixel on the full-resolution picture in [0, 1]: the
    thumbnail's coding error plus what the 4x up-sampling of an exact thumbnail loses
    (``detail``), an estimate of what the preview shows."""

    bits: np.ndarray  #: (P, R) estimated bits of each patch's strings at each rung
    error: np.ndarray  #: (P, R) estimated full-resolution MSE at each rung
    signal: np.ndarray  #: (P,) variance of each patch's thumbnail (for the quality floor)
    thumb_error: np.ndarray  #: (P, R) the thumbnail's own MSE at each rung
    lost: np.ndarray  #: (P,) MSE of a patch whose tier 0 is lost (see ``borrowed_error``)
    #: (P,) MSE of a patch shown with nothing to borrow from (mid-grey); None: unknown
    blank: np.ndarray | None = None
    grid: tuple[int, int] | None = None  #: (rows, cols) of patches; None: unknown

    @property
    def patches(self) -> int:
        return int(self.bits.shape[0])

    @property
    def rungs(self) -> int:
        return int(self.bits.shape[1])


def borrowed_error(patches: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(P,) estimated MSE (pixels in [0, 1]) of each patch shown from its neighbours'
    latents, as a receiver shows a patch whose tier 0 is lost: the mean of the 8
    neighbours' blocks decodes to about their mean colour, so the error is the patch's
    distance from that colour (mid-grey for a frame of one patch). On validation photos
    it follows the measured error far closer than the patch's variance does
    (docs/notebook/rate-and-planner.md). ``patches`` (P, 256, 256, 3) uint8, row-major."""
    pixels = patches.reshape(len(patches), -1, 3).astype(np.float64)
    n = pixels.shape[1]
    # Per patch and channel, the sum and the sum of squares (exact in float64: the pixels
    # are whole numbers), so that each patch's distance from a colour costs O(1) (einsum:
    # numpy's reductions over the middle axis are several times slower).
    sums = np.einsum("pnc->pc", pixels) / 255.0
    squares = np.einsum("pnc,pnc->pc", pixels, pixels) / 255.0**2
    means = sums / n  # (P, 3)
    out = np.empty(len(patches))
    for k in range(len(patches)):
        r, c = divmod(k, cols)
        near = [
            rr * cols + cc
            for rr in range(max(0, r - 1), min(rows, r + 2))
            for cc in range(max(0, c - 1), min(cols, c + 2))
            if (rr, cc) != (r, c)
        ]
        colour = means[near].mean(axis=0) if near else np.full(3, 0.5)
        out[k] = float(((squares[k] - 2 * colour * sums[k]) / n + colour**2).mean())
    return out


def blank_error(patches: np.ndarray) -> np.ndarray:
    """(P,) MSE (pixels in [0, 1]) of each patch shown mid-grey: what a receiver shows
    where neither the patch nor any neighbour has its tier 0."""
    pixels = patches.reshape(len(patches), -1).astype(np.float32) / 255.0
    return ((pixels - 0.5) ** 2).mean(axis=1).astype(np.float64)


def scaled_detail(bands: FrameBands, shown: np.ndarray, scale: Scale) -> np.ndarray:
    """(P,) MSE (pixels in [0, 1]) of each coded patch's exact thumbnail up-sampled to the
    shown size (``scale`` times the coded size), against the shown picture's region
    under that patch (edge-padded as the patches are)."""
    rows, cols = bands.rows, bands.cols
    side = int(PATCH * scale)
    h, w = shown.shape[:2]
    padded = np.pad(shown, ((0, rows * side - h), (0, cols * side - w), (0, 0)), mode="edge")
    out = []
    for lo, hi, start, stop in bands:
        low, _ = bands.thumbnail(lo, hi)
        up = F.interpolate(
            low, scale_factor=float(DOWNSAMPLE * scale), mode="bicubic", align_corners=False
        ).clamp(0, 1)
        truth = torch.from_numpy(padded[start * side : stop * side]).permute(2, 0, 1)[None]
        err = (up[:, :, (start - lo) * side : (stop - lo) * side] - truth.float() / 255.0) ** 2
        tiles = err.reshape(3, stop - start, side, cols, side).permute(1, 3, 0, 2, 4)
        out.append(tiles.reshape((stop - start) * cols, -1).mean(1).double().numpy())
    return np.concatenate(out)


@torch.inference_mode()
def frame_rung_table(
    continuous: ContinuousCodec,
    bands: FrameBands,
    *,
    synthesised: Sequence[int] | None = None,
    detail: bool = True,
) -> RungTable:
    """The rung table of the frame in ``bands``, errors at its coded size; with
    ``synthesised``, measured at those rungs alone (``ContinuousCodec.ladder_table``).
    Without ``detail``, the errors are the thumbnail's alone (the caller adds its own
    estimate of what up-sampling loses)."""
    patches, rows, cols = bands.patches, bands.rows, bands.cols
    bits, error, signal, lost_detail = [], [], [], []
    for lo, hi, start, stop in bands:
        low, y = bands.thumbnail(lo, hi)
        b, e, g = continuous.ladder_table(low, y=y, synthesised=synthesised)
        keep = slice((start - lo) * cols, (stop - lo) * cols)
        bits.append(b[keep])
        error.append(e[keep])
        signal.append(g[keep])
        if detail:
            up = continuous.shown(low).clamp(0, 1)
            err = (to_tiles(up, hi - lo, cols) - to_tiles(bands.full(lo, hi), hi - lo, cols)) ** 2
            lost_detail.append(err.flatten(1).mean(1)[keep])
    thumb = torch.cat(error).double().numpy()
    added = torch.cat(lost_detail).double().numpy()[:, None] if detail else 0.0
    return RungTable(
        bits=torch.cat(bits).double().numpy(),
        error=thumb + added,
        signal=torch.cat(signal).double().numpy(),
        thumb_error=thumb,
        lost=borrowed_error(patches, rows, cols),
        blank=blank_error(patches),
        grid=(rows, cols),
    )


@torch.inference_mode()
def rung_table(
    continuous: ContinuousCodec,
    shown: np.ndarray,
    scale: Scale = 1,
    *,
    synthesised: Sequence[int] | None = None,
    bias_db: float | None = None,
) -> RungTable:
    """The rung table of ``shown`` (HxWx3 uint8) coded at 1/``scale`` of its size, errors
    measured on the shown picture (at the ``synthesised`` rungs alone, if given), raised
    by ``bias_db`` at a scale other than 1 (None: ``SCALED_ERROR_BIAS_DB``)."""
    bands = frame_bands(continuous, downscale(shown, scale))
    table = frame_rung_table(continuous, bands, synthesised=synthesised, detail=scale == 1)
    if scale == 1:
        return table
    # The thumbnail's coding error, plus what up-sampling the exact thumbnail all the
    # way to the shown size loses (the down-scaling's loss included).
    detail = scaled_detail(bands, shown, scale)
    bias = 10 ** ((SCALED_ERROR_BIAS_DB[scale] if bias_db is None else bias_db) / 10)
    return replace(table, error=(table.thumb_error + detail[:, None]) * bias)


@torch.inference_mode()
def choose_rungs(
    continuous: ContinuousCodec, bands: FrameBands, rate: RungChoice, *, model_id: int
) -> list[int]:
    """Each patch's rung of the frame in ``bands`` as ``rate`` asks (``codec.rates``)."""
    count = len(bands.patches)
    if isinstance(rate, PerPatch):
        if len(rate.rungs) != count:
            raise ValueError(f"{len(rate.rungs)} rungs given for {count} patches")
        return [continuous.check_rung(r) for r in rate.rungs]
    budget = rate.bytes if isinstance(rate, Budget) else None
    if continuous.rungs == 1:
        if rate.rung not in (None, 0) or budget is not None:
            raise ValueError(
                f"model {model_id:08x} has a single-rate continuous stream: "
                "no rung or continuous budget to choose"
            )
        return [0] * count
    if rate.rung is None:
        base = min(continuous.config.default_rung, continuous.rungs - 1)
    else:
        base = continuous.check_rung(rate.rung)
    if budget is None:
        return floored_rungs(continuous, bands, base)
    table = frame_rung_table(continuous, bands)
    chosen = allocate_rungs(
        table.bits,
        table.thumb_error,
        table.signal,
        base_rung=base,
        budget_bits=8.0 * budget,
        floor_db=QUALITY_FLOOR_DB,
    )
    return [int(r) for r in chosen]


def floored_rungs(continuous: ContinuousCodec, bands: FrameBands, base: int) -> list[int]:
    """Each patch's rung: ``base``, or the lowest above it whose thumbnail reaches
    ``QUALITY_FLOOR_DB`` (the top rung if none does). Rungs are tried one at a time,
    from ``base`` up, only while some patch still needs a higher one: most frames cost
    one synthesis, not one per rung."""
    top = continuous.rungs - 1
    chosen: list[int] = []
    cols = bands.cols
    for lo, hi, start, stop in bands:
        low, y = bands.thumbnail(lo, hi)
        keep = slice((start - lo) * cols, (stop - lo) * cols)
        band = np.full(keep.stop - keep.start, -1)
        for r in range(base, top + 1):
            _, error, signal = continuous.ladder_table(low, only=[r], y=y)
            snr = (
                10
                * np.log10(
                    signal[keep].double().clamp_min(1e-12)
                    / error[keep, 0].double().clamp_min(1e-12)
                ).numpy()
            )
            band[(band < 0) & ((snr >= QUALITY_FLOOR_DB) | (r == top))] = r
            if (band >= 0).all():
                break
        chosen += [int(r) for r in band]
    return chosen
