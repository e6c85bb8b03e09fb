"""``HybridCodec``: the dual-stream codec behind one API.

>>> codec = HybridCodec.from_pretrained()
>>> enc = codec.encode(image, schedule="auto")        # any HxWx3 uint8 image
>>> preview = codec.decode(enc.without_indices())      # tier 0 only
>>> picture = codec.decode(enc.kept_only())            # what the schedule sends
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from hfstream.codec import index_coding
from hfstream.codec.allocation import allocate_rungs
from hfstream.codec.complexity import ComplexityModel
from hfstream.codec.continuous import (
    DOWNSAMPLE,
    ContinuousCodec,
    ContinuousConfig,
    fill_missing_blocks,
    fill_missing_pixels,
    from_blocks,
)
from hfstream.codec.correction import CorrectionDecoder, certainty_planes
from hfstream.codec.deblocking import deblock
from hfstream.codec.encoded import MISSING, PATCH, TOKENS, EncodedImage, EncodedPatch
from hfstream.codec.fallback import blend_fallback, lost_mask
from hfstream.codec.model_io import DEFAULT_MODEL_DIR, ModelBundle, load_model, split_prefix
from hfstream.codec.predictor import MaskedTokenPredictor, PredictorConfig
from hfstream.codec.refinement import check_refine_steps, refine_latent
from hfstream.codec.refiner import VQ_UPS, IndexRefiner, RefinerConfig
from hfstream.codec.scaling import downscale, upscale
from hfstream.codec.schedules import GRID, Schedule, kept_positions
from hfstream.codec.tiling import from_tiles, patch_grid, to_tiles
from hfstream.codec.tokenizer import Tokenizer, TokenizerConfig
from hfstream.codec.upsampler import LearnedUpsampler, UpsamplerConfig
from hfstream.geometry import MAX_SIDE  # larger images are refused

DecodeMode = Literal["continuous", "vq", "hybrid", "auto"]
FillMethod = Literal["auto", "prior", "predictor", "soft", "nearest"]
FILLS = ("auto", "prior", "predictor", "soft", "nearest")
BATCH = 8  # patches per forward pass
# Frames are coded and decoded whole (no seams), in bands of patch rows with one row of
# context above and below once they exceed this many patches, so memory stays bounded.
FRAME_PATCHES = 24
QUALITY_FLOOR_DB = 12.0  # no patch's thumbnail below this signal-to-error ratio, if it can
LATENT_CACHE = 1024  # patches whose ŷc is kept (8 KiB each)
PRIOR_FILL_CACHE = 1024  # patches whose prior arg-max and confidence are kept (3 KiB each)
# The hybrid path decodes a frame in about 4x the continuous picture's time (index priors,
# predictor fill, refiner): a schedule that adds less than this over the continuous
# picture is shown as the continuous picture in ``auto`` mode, and not planned.
MIN_SHOWN_GAIN_DB = 0.1
# ``rung_table``'s errors are estimates: at full size the learned up-sampler makes the
# picture 0.21-0.32 dB better than the estimate (bicubic); a frame coded at half size
# comes out 0.20-0.31 dB worse, at a quarter 1.0-1.3 dB worse (its last up-scale is
# bicubic over a picture the estimate does not see). Measured on 20 training photos
# (768x512) at rungs 0 and 2; a scaled table's errors are raised by the difference (in
# dB, per scale) so that the planner compares the scales fairly.
SCALED_ERROR_BIAS_DB = {2: 0.52, 4: 1.5}


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


@dataclass(frozen=True)
class ReducedCodebook:
    """A K-means reduction of the codebook: word -> group, group centroids, representatives."""

    groups: torch.Tensor  # (1024,) int64, the reduced word of every full word
    centroids: torch.Tensor  # (K, D) unit vectors, what the decoder embeds for a reduced word
    representatives: torch.Tensor  # (K,) int64, the full word nearest to each centroid

    @property
    def size(self) -> int:
        return int(self.centroids.shape[0])


def to_uint8_image(image: np.ndarray | Image.Image | str | Path) -> np.ndarray:
    """Accept an array, a PIL image or a path; return a contiguous HxWx3 uint8 array."""
    if isinstance(image, (str, Path)):
        with Image.open(image) as im:
            image = np.asarray(im.convert("RGB"))
    elif isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image must be HxWx3, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {arr.dtype}")
    h, w = arr.shape[:2]
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise ValueError(f"image size {w}x{h} is outside 1..{MAX_SIDE} per side")
    return np.ascontiguousarray(arr)


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the continuous stream's coding on one thread.

    Its float parts (the hyper-synthesis that gives ŷc's means and scales) come out with
    different last bits on 1 and 2 threads, and ŷc must be bit-identical at the sender
    and the receiver: the index priors are computed from it. Those parts run one 4x4
    patch at a time, so a second thread hardly helps them anyway. The setting is the
    calling thread's (OpenMP), so other threads are not slowed."""
    old = torch.get_num_threads()
    if old == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def split_patches(arr: np.ndarray) -> np.ndarray:
    """HxWx3 -> (P, 256, 256, 3), edge-padded to whole patches, row-major."""
    h, w = arr.shape[:2]
    rows, cols = -(-h // PATCH), -(-w // PATCH)
    padded = np.pad(arr, ((0, rows * PATCH - h), (0, cols * PATCH - w), (0, 0)), mode="edge")
    return (
        padded.reshape(rows, PATCH, cols, PATCH, 3)
        .transpose(0, 2, 1, 3, 4)
        .reshape(-1, PATCH, PATCH, 3)
    )


def merge_patches(patches: np.ndarray, height: int, width: int) -> np.ndarray:
    rows, cols = -(-height // PATCH), -(-width // PATCH)
    full = patches.reshape(rows, cols, PATCH, PATCH, 3).transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(full.reshape(rows * PATCH, cols * PATCH, 3)[:height, :width])


def row_bands(rows: int, cols: int) -> list[tuple[int, int, int, int]]:
    """Bands of patch rows for frame-wide passes: ``(lo, hi, start, stop)``, run over rows
    ``lo..hi`` (context included), keep rows ``start..stop``."""
    if rows * cols <= FRAME_PATCHES:
        return [(0, rows, 0, rows)]
    band = max(1, FRAME_PATCHES // cols - 2)
    return [
        (max(0, r - 1), min(rows, r + band + 1), r, min(rows, r + band))
        for r in range(0, rows, band)
    ]


def borrowed_error(patches: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(P,) estimated MSE (pixels in [0, 1]) of each patch shown from its neighbours'
    latents, as a receiver shows a patch whose tier 0 is lost: the mean of the 8
    neighbours' blocks decodes to about their mean colour, so the error is the patch's
    distance from that colour (mid-grey for a frame of one patch). On validation photos
    it is within 0.8-1.5x of the measured error; the patch's variance alone was 0.2-7x.
    ``patches`` (P, 256, 256, 3) uint8, row-major."""
    pixels = patches.reshape(len(patches), -1, 3).astype(np.float64) / 255.0
    means = pixels.mean(axis=1)  # (P, 3)
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
        out[k] = float(((pixels[k] - colour) ** 2).mean())
    return out


def blank_error(patches: np.ndarray) -> np.ndarray:
    """(P,) MSE (pixels in [0, 1]) of each patch shown mid-grey: what a receiver shows
    where neither the patch nor any neighbour has its tier 0."""
    pixels = patches.reshape(len(patches), -1).astype(np.float32) / 255.0
    return ((pixels - 0.5) ** 2).mean(axis=1).astype(np.float64)


def gain_at_share(gains: dict[str, float], share: float) -> float:
    """The gain of the densest schedule in ``gains`` (label -> dB) whose kept share of
    index positions is at most ``share`` (0 when none is)."""
    fitting = [
        (len(kept_positions(Schedule.parse(label))), gain)
        for label, gain in gains.items()
        if len(kept_positions(Schedule.parse(label))) <= share * TOKENS + 1e-6
    ]
    return max(fitting)[1] if fitting else 0.0


def nearest_fill(indices: np.ndarray) -> np.ndarray:
    """Naive fill: each missing index copies its nearest known neighbour (raster tie-break)."""
    known = np.flatnonzero(indices != MISSING)
    if known.size == 0 or known.size == TOKENS:
        return indices.copy()
    rr, cc = np.divmod(np.arange(TOKENS), GRID)
    d = (rr[:, None] - rr[known][None, :]) ** 2 + (cc[:, None] - cc[known][None, :]) ** 2
    return np.where(indices == MISSING, indices[known][d.argmin(axis=1)], indices)


def scaled_detail(bands: _FrameBands, shown: np.ndarray, scale: int) -> np.ndarray:
    """(P,) MSE (pixels in [0, 1]) of each coded patch's exact thumbnail up-sampled to the
    shown size (``scale`` times the coded size), against the shown picture's region
    under that patch (edge-padded as the patches are)."""
    rows, cols = bands.rows, bands.cols
    side = PATCH * scale
    h, w = shown.shape[:2]
    padded = np.pad(shown, ((0, rows * side - h), (0, cols * side - w), (0, 0)), mode="edge")
    out = []
    for lo, hi, start, stop in bands:
        low, _ = bands.thumbnail(lo, hi)
        up = F.interpolate(
            low, scale_factor=DOWNSAMPLE * scale, mode="bicubic", align_corners=False
        ).clamp(0, 1)
        truth = torch.from_numpy(padded[start * side : stop * side]).permute(2, 0, 1)[None]
        err = (up[:, :, (start - lo) * side : (stop - lo) * side] - truth.float() / 255.0) ** 2
        tiles = err.reshape(3, stop - start, side, cols, side).permute(1, 3, 0, 2, 4)
        out.append(tiles.reshape((stop - start) * cols, -1).mean(1).double().numpy())
    return np.concatenate(out)


def _band_tensor(patches: np.ndarray, lo: int, hi: int, cols: int) -> torch.Tensor:
    """Patch rows lo..hi of a frame's (P,256,256,3) patches as one (1,3,H,W) picture."""
    band = patches[lo * cols : hi * cols]
    img = band.reshape(hi - lo, cols, PATCH, PATCH, 3).transpose(0, 2, 1, 3, 4)
    img = img.reshape((hi - lo) * PATCH, cols * PATCH, 3)
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float().div(255.0)


class _FrameBands:
    """A frame's row bands (``row_bands``) as thumbnails and their analysis, each computed
    once however often an encode asks (rung table, quality floor, then coding)."""

    def __init__(
        self,
        continuous: ContinuousCodec,
        patches: np.ndarray,
        rows: int,
        cols: int,
        size: tuple[int, int] | None = None,
    ):
        self.continuous, self.patches, self.rows, self.cols = continuous, patches, rows, cols
        # The picture's height and width inside the padded patches.
        self.size = size or (rows * PATCH, cols * PATCH)
        self._seen: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def __iter__(self) -> Iterator[tuple[int, int, int, int]]:
        return iter(row_bands(self.rows, self.cols))

    def full(self, lo: int, hi: int) -> torch.Tensor:
        """Patch rows lo..hi at full size, (1,3,H,W)."""
        return _band_tensor(self.patches, lo, hi, self.cols)

    def valid(self, lo: int, hi: int) -> tuple[int, int]:
        """The rows and columns of ``full(lo, hi)`` that are picture, not padding."""
        return min(self.size[0] - lo * PATCH, (hi - lo) * PATCH), self.size[1]

    def thumbnail(self, lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Patch rows lo..hi as the continuous stream's thumbnail and its analysis y."""
        if (lo, hi) not in self._seen:
            low = ContinuousCodec.downsample(self.full(lo, hi))
            self._seen[lo, hi] = low, self.continuous.analyse(low)
        return self._seen[lo, hi]


def _to_tensor(patches: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(patches).permute(0, 3, 1, 2).float().div(255.0)


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255.0).round().byte().permute(0, 2, 3, 1).cpu().numpy()


class HybridCodec:
    def __init__(
        self,
        tokenizer: Tokenizer,
        continuous: ContinuousCodec,
        predictor: MaskedTokenPredictor,
        correction: CorrectionDecoder,
        complexity: ComplexityModel,
        reductions: dict[int, ReducedCodebook],
        model_id: int,
        name: str = "custom",
        index_gain_db: dict[str, float] | None = None,
        upsampler: LearnedUpsampler | None = None,
        refiner: IndexRefiner | None = None,
    ) -> None:
        self.tokenizer = tokenizer.eval()
        self.continuous = continuous.eval()
        self.predictor = predictor.eval()
        self.correction = correction.eval()
        self.complexity = complexity
        self.reductions = reductions
        self.model_id = model_id
        self.name = name
        # dB each schedule adds over the continuous stream, as measured at export (None:
        # not measured; ``hfstream.planning`` then uses its defaults).
        self.index_gain_db = index_gain_db
        # The continuous picture at full size: learned (None: bicubic, as older models).
        self.upsampler = None if upsampler is None else upsampler.eval()
        # The hybrid picture as the continuous picture plus what the indices add (None:
        # the correction decoder and the VQ decoder, as older models).
        self.refiner = None if refiner is None else refiner.eval()
        # Inference runs the conv decoders on channels-last maps; weights in that layout
        # spare oneDNN a reorder per call. Values and state-dict keys are unchanged.
        self.tokenizer.decoder.to(memory_format=torch.channels_last)
        self.correction.to(memory_format=torch.channels_last)
        for module in (self.upsampler, self.refiner):
            if module is not None:
                module.to(memory_format=torch.channels_last)
        self._latent_cache: OrderedDict[tuple[bytes, bytes, int], torch.Tensor] = OrderedDict()
        # ŷc (digest) -> the prior pass's arg-max and its probability, (256,) each.
        self._prior_fill_cache: OrderedDict[bytes, tuple[torch.Tensor, torch.Tensor]] = (
            OrderedDict()
        )
        self._cache_lock = threading.Lock()

    def clear_caches(self) -> None:
        """Forget the ŷc and the prior fill of every patch decoded so far."""
        with self._cache_lock:
            self._latent_cache.clear()
            self._prior_fill_cache.clear()

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, path: str | Path | None = None) -> HybridCodec:
        """Load a shipped model folder (default: the model inside the package)."""
        return cls.from_bundle(load_model(path or DEFAULT_MODEL_DIR))

    @classmethod
    def from_bundle(cls, bundle: ModelBundle) -> HybridCodec:
        cfg, t = bundle.config, bundle.tensors
        tokenizer = Tokenizer(TokenizerConfig(**_tuples(cfg["tokenizer"])))
        tokenizer.load_state_dict(split_prefix(t, "tokenizer"))
        continuous = ContinuousCodec(ContinuousConfig(**cfg["continuous"]))
        continuous.load_state_dict(split_prefix(t, "continuous"))
        predictor = MaskedTokenPredictor(PredictorConfig(**cfg["predictor"]))
        predictor.load_state_dict(split_prefix(t, "predictor"))
        correction = CorrectionDecoder(tokenizer.decoder, continuous.config.m)
        correction.load_state_dict(split_prefix(t, "correction"))
        reductions = {}
        for k in cfg.get("codebook_reductions", []):
            r = split_prefix(t, f"reduction.{k}")
            reductions[int(k)] = ReducedCodebook(
                r["groups"].long(), r["centroids"], r["representatives"].long()
            )
        complexity = ComplexityModel.from_dict(cfg["complexity"])
        upsampler = None
        if "upsampler" in cfg:
            upsampler = LearnedUpsampler(UpsamplerConfig(**cfg["upsampler"]))
            upsampler.load_state_dict(split_prefix(t, "upsampler"))
        refiner = None
        if "refiner" in cfg:
            refiner = IndexRefiner(RefinerConfig(**cfg["refiner"]))
            refiner.load_state_dict(split_prefix(t, "refiner"))
        return cls(
            tokenizer,
            continuous,
            predictor,
            correction,
            complexity,
            reductions,
            bundle.model_id,
            cfg.get("name", "custom"),
            cfg.get("index_gain_db"),
            upsampler,
            refiner,
        )

    @property
    def codebook_sizes(self) -> list[int]:
        return [self.tokenizer.config.codebook_size, *sorted(self.reductions, reverse=True)]

    def _reduction(self, codebook_size: int) -> ReducedCodebook | None:
        if codebook_size == self.tokenizer.config.codebook_size:
            return None
        if codebook_size not in self.reductions:
            raise ValueError(
                f'Invalid codebook size "{codebook_size}", should be one of {self.codebook_sizes}'
            )
        return self.reductions[codebook_size]

    # ------------------------------------------------------------------ encoding
    @torch.inference_mode()
    def encode(
        self,
        image: np.ndarray | Image.Image | str | Path,
        schedule: str | Schedule = "auto",
        codebook_size: int | None = None,
        progress: Callable[[int], None] | None = None,
        *,
        rung: int | None = None,
        continuous_budget: int | None = None,
        rungs: Sequence[int] | None = None,
        refine_steps: int = 0,
        refine_progress: Callable[[int], None] | None = None,
        scale: int = 1,
        indices: bool = True,
    ) -> EncodedImage:
        """Code an image. ``schedule`` is a label (``1_4``...) or ``auto`` (complexity-aware).

        The continuous stream is analysed over the whole frame and coded per patch. With a
        rate-ladder model, each patch's rung is chosen from ``rung`` (default
        the model's ``default_rung``), raised where a patch would otherwise lose its subject
        (``QUALITY_FLOOR_DB``), and, with ``continuous_budget`` (bytes for the whole frame's
        continuous strings), fitted to that budget (see ``hfstream.codec.allocation``).
        ``rungs`` gives every patch's rung instead (``hfstream.planning`` chooses them).
        ``refine_steps`` > 0 optimises the continuous latent for this picture before coding
        it (``hfstream.codec.refinement``: better pictures for the bytes, about 0.13 s a step
        for 768x512 on 2 cores); rungs are still chosen from the unrefined latent.
        ``refine_progress`` is called after each step with the patches it refined.
        ``progress`` is called with the number of patches just coded (for a progress bar).
        ``scale`` 2 or 4 codes the image at that fraction of its size, shown up-scaled
        (``hfstream.codec.scaling``; the scale must divide both sides); ``rungs`` then
        count the smaller frame's patches. ``indices=False`` codes tier 0 alone (every index
        missing; the tokenizer is not run).
        """
        arr = downscale(to_uint8_image(image), scale)
        k = codebook_size or self.tokenizer.config.codebook_size
        reduction = self._reduction(k)
        fixed = None if schedule == "auto" else Schedule.parse(schedule)
        check_refine_steps(refine_steps)
        if continuous_budget is not None and continuous_budget <= 0:
            raise ValueError(f"Invalid continuous budget {continuous_budget}, should be positive")
        patches = split_patches(arr)
        rows, cols = -(-arr.shape[0] // PATCH), -(-arr.shape[1] // PATCH)
        bands = _FrameBands(self.continuous, patches, rows, cols, arr.shape[:2])
        if rungs is not None:
            if rung is not None or continuous_budget is not None:
                raise ValueError("give per-patch rungs, or a rung and a budget, not both")
            if len(rungs) != len(patches):
                raise ValueError(f"{len(rungs)} rungs given for {len(patches)} patches")
            rungs = [self.continuous.check_rung(int(r)) for r in rungs]
        else:
            rungs = self._choose_rungs(bands, rung, continuous_budget)
        strings = self._compress_frame(bands, rungs, refine_steps, refine_progress)
        out: list[EncodedPatch] = []
        for s in range(0, len(patches), BATCH):
            chunk = patches[s : s + BATCH]
            if not indices:
                idx = torch.full((len(chunk), TOKENS), MISSING, dtype=torch.long)
            elif reduction is None:
                z = F.normalize(self.tokenizer.encoder(_to_tensor(chunk)), dim=1)
                idx = self.tokenizer.codebook.lookup(z)
            else:
                z = F.normalize(self.tokenizer.encoder(_to_tensor(chunk)), dim=1)
                idx = torch.einsum("bdhw,kd->bkhw", z, reduction.centroids).argmax(dim=1)
            for j, p in enumerate(chunk):
                sched = (
                    fixed
                    if fixed is not None
                    else self.complexity.schedule_for(self.complexity.score(p))
                )
                out.append(
                    EncodedPatch(
                        strings[s + j], sched, idx[j].flatten().long().numpy(), rungs[s + j]
                    )
                )
            if progress is not None:
                progress(len(chunk))
        return EncodedImage(arr.shape[0], arr.shape[1], k, self.model_id, tuple(out), scale)

    @torch.inference_mode()
    def recode_continuous(
        self,
        image: np.ndarray | Image.Image | str | Path,
        enc: EncodedImage,
        rungs: Sequence[int],
        refine_steps: int = 0,
    ) -> EncodedImage:
        """``enc`` (an encoding of ``image``) with its continuous strings coded again at
        ``rungs`` (refined as in ``encode``); the indices, which do not depend on the
        rung, are kept."""
        arr = to_uint8_image(image)
        if (arr.shape[0], arr.shape[1]) != enc.shown_size:
            raise ValueError("recode_continuous needs the image that was encoded")
        arr = downscale(arr, enc.scale)
        if len(rungs) != len(enc.patches):
            raise ValueError(f"{len(rungs)} rungs given for {len(enc.patches)} patches")
        checked = [self.continuous.check_rung(int(r)) for r in rungs]
        check_refine_steps(refine_steps)
        rows, cols = -(-arr.shape[0] // PATCH), -(-arr.shape[1] // PATCH)
        bands = _FrameBands(self.continuous, split_patches(arr), rows, cols, arr.shape[:2])
        strings = self._compress_frame(bands, checked, refine_steps)
        patches = tuple(
            replace(p, continuous=c, rung=r)
            for p, c, r in zip(enc.patches, strings, checked, strict=True)
        )
        return replace(enc, patches=patches)

    def _choose_rungs(self, bands: _FrameBands, rung: int | None, budget: int | None) -> list[int]:
        patches = bands.patches
        if self.continuous.rungs == 1:
            if rung not in (None, 0) or budget is not None:
                raise ValueError(
                    f"model {self.model_id:08x} has a single-rate continuous stream: "
                    "no rung or continuous budget to choose"
                )
            return [0] * len(patches)
        if rung is None:
            base = min(self.continuous.config.default_rung, self.continuous.rungs - 1)
        else:
            base = self.continuous.check_rung(rung)
        if budget is None:
            return self._floor_from(bands, base)
        table = self._rung_table(bands)
        chosen = allocate_rungs(
            table.bits,
            table.thumb_error,
            table.signal,
            base_rung=base,
            budget_bits=8.0 * budget,
            floor_db=QUALITY_FLOOR_DB,
        )
        return [int(r) for r in chosen]

    def _floor_from(self, bands: _FrameBands, base: int) -> list[int]:
        """Each patch's rung: ``base``, or the lowest above it whose thumbnail reaches
        ``QUALITY_FLOOR_DB`` (the top rung if none does). Rungs are tried one at a time,
        from ``base`` up, only while some patch still needs a higher one: most frames cost
        one synthesis, not one per rung."""
        top = self.continuous.rungs - 1
        chosen: list[int] = []
        cols = bands.cols
        for lo, hi, start, stop in bands:
            low, y = bands.thumbnail(lo, hi)
            keep = slice((start - lo) * cols, (stop - lo) * cols)
            band = np.full(keep.stop - keep.start, -1)
            for r in range(base, top + 1):
                _, error, signal = self.continuous.ladder_table(low, only=[r], y=y)
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

    @torch.inference_mode()
    def rung_table(self, image: np.ndarray | Image.Image | str | Path, scale: int = 1) -> RungTable:
        """Each patch's bits and error at every rung (see ``RungTable``); with ``scale``,
        of the frame coded at 1/``scale`` of its size, errors measured on the shown
        picture (``encode(..., scale=)``)."""
        shown = to_uint8_image(image)
        arr = downscale(shown, scale)
        rows, cols = -(-arr.shape[0] // PATCH), -(-arr.shape[1] // PATCH)
        bands = _FrameBands(self.continuous, split_patches(arr), rows, cols)
        table = self._rung_table(bands)
        if scale == 1:
            return table
        # The thumbnail's coding error, plus what up-sampling the exact thumbnail all the
        # way to the shown size loses (the down-scaling's loss included).
        detail = scaled_detail(bands, shown, scale)
        bias = 10 ** (SCALED_ERROR_BIAS_DB[scale] / 10)
        return replace(table, error=(table.thumb_error + detail[:, None]) * bias)

    def _rung_table(self, bands: _FrameBands) -> RungTable:
        patches, rows, cols = bands.patches, bands.rows, bands.cols
        bits, error, signal, detail = [], [], [], []
        for lo, hi, start, stop in bands:
            full = bands.full(lo, hi)
            low, y = bands.thumbnail(lo, hi)
            b, e, g = self.continuous.ladder_table(low, y=y)
            keep = slice((start - lo) * cols, (stop - lo) * cols)
            up = ContinuousCodec.upsample(low).clamp(0, 1)
            tiles = to_tiles(full, hi - lo, cols)
            bits.append(b[keep])
            error.append(e[keep])
            signal.append(g[keep])
            err = (to_tiles(up, hi - lo, cols) - tiles) ** 2
            detail.append(err.flatten(1).mean(1)[keep])
        thumb = torch.cat(error).double().numpy()
        return RungTable(
            bits=torch.cat(bits).double().numpy(),
            error=thumb + torch.cat(detail).double().numpy()[:, None],
            signal=torch.cat(signal).double().numpy(),
            thumb_error=thumb,
            lost=borrowed_error(patches, rows, cols),
            blank=blank_error(patches),
            grid=(rows, cols),
        )

    def _compress_frame(
        self,
        bands: _FrameBands,
        rungs: list[int],
        refine_steps: int = 0,
        refine_progress: Callable[[int], None] | None = None,
    ) -> list[tuple[bytes, bytes]]:
        """Each patch's (y, z) strings, the analysis (and refinement) run over whole bands
        of patch rows (on every thread: only what follows it must match the receiver bit
        for bit)."""
        cols = bands.cols
        strings: list[tuple[bytes, bytes]] = []
        for lo, hi, start, stop in bands:
            low, y = bands.thumbnail(lo, hi)
            if refine_steps:
                y = refine_latent(
                    self.continuous,
                    self.upsampler,
                    bands.full(lo, hi),
                    low,
                    y,
                    rungs[lo * cols : hi * cols],
                    refine_steps,
                    valid=bands.valid(lo, hi),
                    progress=refine_progress,
                )
            with one_thread():
                coded = self.continuous.compress_frame(low, rungs[lo * cols : hi * cols], y=y)
            strings += coded[(start - lo) * cols : (stop - lo) * cols]
        return strings

    # ------------------------------------------------------------------ decoding
    @torch.inference_mode()
    def latents(self, patches: list[EncodedPatch]) -> torch.Tensor:
        """ŷc of patches whose tier 0 is present, (B, M, 4, 4).

        A receiver asks twice per patch (for the index priors, then to decode), so the
        last ``LATENT_CACHE`` results are kept, keyed by the strings and their rung.
        Entropy decoding is exact and ``decompress_latent`` runs its float parts one patch
        at a time (and here on one thread, see ``one_thread``), so a cached ŷc is the very
        tensor a fresh decode would give."""
        assert all(p.continuous is not None for p in patches), "every patch needs its strings"
        keys = [(*p.continuous, p.rung) for p in patches]  # type: ignore[misc]
        with self._cache_lock:
            known = {k: self._latent_cache[k] for k in keys if k in self._latent_cache}
        todo = list(dict.fromkeys(k for k in keys if k not in known))
        for i in range(0, len(todo), BATCH):
            chunk = todo[i : i + BATCH]
            with one_thread():
                y_hat = self.continuous.decompress_latent(
                    [(y, z) for y, z, _ in chunk], [r for _, _, r in chunk]
                )
            known.update(zip(chunk, y_hat, strict=True))
        with self._cache_lock:
            for k in keys:
                self._latent_cache[k] = known[k]
                self._latent_cache.move_to_end(k)
            while len(self._latent_cache) > LATENT_CACHE:
                self._latent_cache.popitem(last=False)
        return torch.stack([known[k] for k in keys])

    @torch.inference_mode()
    def decode(
        self,
        enc: EncodedImage,
        mode: DecodeMode = "auto",
        fill: FillMethod = "auto",
        steps: int = 1,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Rebuild the image from whatever ``enc`` holds; returns HxWx3 uint8.

        ``fill``: ``prior`` (the predictor's arg-max given ŷc alone: the pass that the
        index priors already ran, so a receiver that decoded indices fills at no further
        cost), ``predictor`` (arg-max given ŷc and the known indices, one pass unless
        ``steps > 1``, then MaskGIT-style), ``soft`` (one pass; a missing position gets
        the expected code vector under the predictor's distribution, the
        minimum-squared-error guess) or ``nearest`` (the nearest known index). ``auto``
        is ``prior`` for a ``hybrid`` picture through the index refiner in one step (the
        refiner leans on the received codes: the fill's context moved the validation
        photos by under 0.01 dB at every schedule, docs/benchmarks.md), else
        ``predictor``. A patch without tier 0 falls back to its indices (nearest fill),
        and one with neither is mid-grey; where ``enc`` has a fallback
        (``hfstream.codec.fallback``), such patches show its picture instead. ``progress``
        is called with the number of patches just decoded. The picture's patch borders
        then go through the deblocking filter (``hfstream.codec.deblocking``).

        ``mode="auto"`` (the default, and what the receiver uses) is ``hybrid``, or
        ``continuous`` where the model measured that the frame's schedule loses quality
        against the continuous picture, or adds less than ``MIN_SHOWN_GAIN_DB`` (see
        ``auto_mode``).
        """
        if mode not in ("continuous", "vq", "hybrid", "auto"):
            raise ValueError(f'Invalid mode "{mode}", should be continuous, vq, hybrid or auto')
        if mode == "auto":
            mode = self.auto_mode(enc)
        if fill not in FILLS:
            raise ValueError(f'Invalid fill "{fill}", should be one of {", ".join(FILLS)}')
        if fill == "auto":
            prior = mode == "hybrid" and self.refiner is not None and steps == 1
            fill = "prior" if prior else "predictor"
        if enc.model_id != self.model_id:
            raise ValueError(
                f"encoded with model {enc.model_id:08x}, this codec is model {self.model_id:08x}"
            )
        reduction = self._reduction(enc.codebook_size)
        rows, cols = enc.grid
        picture = np.empty((rows * PATCH, cols * PATCH, 3), np.uint8)
        for lo, hi, start, stop in row_bands(rows, cols):
            band = self._decode_region(
                list(enc.patches[lo * cols : hi * cols]),
                hi - lo,
                cols,
                reduction,
                mode,
                fill,
                steps,
            )
            picture[start * PATCH : stop * PATCH] = band[(start - lo) * PATCH : (stop - lo) * PATCH]
            if progress is not None:
                progress((stop - start) * cols)
        shown = upscale(
            np.ascontiguousarray(deblock(picture)[: enc.height, : enc.width]), enc.scale
        )
        lost = lost_mask(enc)
        if enc.fallback is not None and lost.any():
            small = self.decode(replace(enc.fallback, fallback=None), mode="continuous")
            shown = blend_fallback(shown, small, lost, enc.scale)
        return shown

    def auto_mode(self, enc: EncodedImage, index_share: float | None = None) -> DecodeMode:
        """``hybrid``, or ``continuous`` when the indices that arrived add less than
        ``MIN_SHOWN_GAIN_DB`` by the model's measured gains (a patch without tier 0 then
        borrows its neighbours' latents). A frame without any tier 0 is ``hybrid``: its
        indices are all there is.

        What the indices add is read off the share of index positions known among the
        patches with tier 0 (``index_share``, or counted in ``enc``): the gain of the
        densest schedule that keeps no more than that share. So a ``1_4`` frame whose
        withheld indices (tier 2) also arrived is shown as the ``1_1`` frame it now is,
        and one that lost its tier 1 as what is left of it."""
        present = [p for p in enc.patches if p.continuous is not None]
        gains = self.shown_gain_db
        if gains is None or not present:
            return "hybrid"
        if index_share is None:
            index_share = float(np.mean([(p.indices != MISSING).mean() for p in present]))
        return "continuous" if gain_at_share(gains, index_share) <= 0 else "hybrid"

    @property
    def shown_gain_db(self) -> dict[str, float] | None:
        """``index_gain_db`` with every gain below ``MIN_SHOWN_GAIN_DB`` as 0: what a
        schedule adds to the picture the receiver shows in ``auto`` mode, and what the
        frame planner may count on. None when the model did not measure its gains."""
        if self.index_gain_db is None:
            return None
        return {s: g if g >= MIN_SHOWN_GAIN_DB else 0.0 for s, g in self.index_gain_db.items()}

    @torch.inference_mode()
    def continuous_picture(self, low: torch.Tensor, y_hat: torch.Tensor) -> torch.Tensor:
        """The thumbnail ``low`` (1,3,h,w) that ``y_hat`` (1,M,h/16,w/16) synthesises, at
        full size (1,3,4h,4w) in [0, 1]: by the learned up-sampler, or bicubic."""
        if self.upsampler is None:
            return ContinuousCodec.upsample(low).clamp(0, 1)
        return self.upsampler(low, y_hat).clamp(0, 1)

    @torch.inference_mode()
    def refined_picture(
        self,
        picture: torch.Tensor,
        codes: torch.Tensor,
        certainty: torch.Tensor,
        rows: int,
        cols: int,
    ) -> torch.Tensor:
        """The continuous ``picture`` (1,3,H,W) of rows x cols patches refined by their
        code vectors (1,D,H/16,W/16) and certainty planes; needs ``self.refiner``."""
        if self.refiner is None:
            raise ValueError(f"model {self.model_id:08x} has no index refiner")
        with patch_grid(rows, cols):
            features = self.tokenizer.decoder.features(codes, VQ_UPS)
        return self.refiner(picture, codes, certainty, features)

    def _decode_region(
        self,
        patches: list[EncodedPatch],
        rows: int,
        cols: int,
        reduction: ReducedCodebook | None,
        mode: DecodeMode,
        fill: FillMethod,
        steps: int,
    ) -> np.ndarray:
        """Decode rows x cols patches as one picture, (rows*256, cols*256, 3) uint8.

        Indices are filled patch by patch (each with its own ŷc); the conv decoders then
        run over the whole region with per-patch normalisation (``codec.tiling``), so no
        seam shows. A patch whose tier 0 is missing borrows ŷc from its neighbours, and
        its thumbnail is filled from their pixels (``fill_missing_pixels``).
        """
        n = len(patches)
        present = torch.tensor([p.continuous is not None for p in patches])
        has_c = torch.nonzero(present).flatten().tolist()
        y_blocks = low = None
        if has_c:
            own = self.latents([patches[i] for i in has_c])
            blocks = own.new_zeros((n, *own.shape[1:]))
            blocks[present] = own
            y_blocks = fill_missing_blocks(blocks, present, rows, cols)
            low = self.continuous.synthesize(from_blocks(y_blocks, rows, cols))
            low = fill_missing_pixels(low, present, rows, cols)
        if mode == "continuous":
            if low is None or y_blocks is None:
                return np.full((rows * PATCH, cols * PATCH, 3), 128, np.uint8)
            return _to_uint8(self.continuous_picture(low, from_blocks(y_blocks, rows, cols)))[0]
        limit = self.tokenizer.config.codebook_size if reduction is None else reduction.size
        for i, p in enumerate(patches):
            if int(p.indices.max()) >= limit or int(p.indices.min()) < MISSING:
                raise ValueError(f"patch {i} has an index outside the {limit}-word codebook")
        # Known words as full-codebook ids (the predictor's vocabulary) and as code vectors.
        words = np.stack([p.indices for p in patches])
        known = words != MISSING
        full = words.copy()
        if reduction is not None:
            full[known] = reduction.representatives.numpy()[words[known]]
        full_t = torch.from_numpy(np.where(known, full, 0))
        known_t = torch.from_numpy(known)
        filled = full_t.clone()
        confidence = torch.zeros(known_t.shape)  # of the predictor, where it filled
        if fill == "predictor" and y_blocks is not None:
            filled, confidence = self.predictor.fill_with_confidence(
                full_t, known_t, y_blocks, steps=steps
            )
        elif fill == "prior" and y_blocks is not None:
            guess, sure = self.prior_fill(y_blocks)
            filled = torch.where(known_t, full_t, guess)
            confidence = torch.where(known_t, torch.ones(()), sure)
        elif fill == "nearest" or y_blocks is None:
            for i in range(n):
                filled[i] = torch.from_numpy(nearest_fill(np.where(known[i], full[i], MISSING)))
        q = self.tokenizer.codebook.embed(filled.clamp(min=0).reshape(n, GRID, GRID))
        if fill == "soft" and y_blocks is not None:
            probs = torch.softmax(
                self.predictor(
                    torch.where(known_t, full_t, self.predictor.mask_id), y_blocks
                ).float(),
                dim=-1,
            )  # (n, 256, V)
            confidence = probs.max(dim=-1).values
            expected = (probs @ self.tokenizer.codebook.normalized()).transpose(1, 2)
            expected = expected.reshape(n, -1, GRID, GRID)
            q = torch.where(known_t.reshape(-1, 1, GRID, GRID), q, expected)
        if reduction is not None:  # known reduced words decode to their centroid
            cent = reduction.centroids[torch.from_numpy(np.where(known, words, 0))]  # (n, 256, D)
            q_flat = q.flatten(2).transpose(1, 2)
            q = torch.where(known_t[..., None], cent, q_flat).transpose(1, 2).reshape(q.shape)
        q_frame = from_tiles(q.contiguous(), rows, cols)
        if mode == "hybrid" and self.refiner is not None and low is not None:
            certainty = from_tiles(certainty_planes(known_t, confidence), rows, cols)
            base = self.continuous_picture(low, from_blocks(y_blocks, rows, cols))
            return _to_uint8(self.refined_picture(base, q_frame, certainty, rows, cols))[0]
        with patch_grid(rows, cols):
            if mode == "hybrid" and y_blocks is not None:
                certainty = from_tiles(certainty_planes(known_t, confidence), rows, cols)
                y_frame = from_blocks(y_blocks, rows, cols)
                out = self.tokenizer.decoder(
                    q_frame, self.correction(y_frame, low, q_frame, certainty)
                )
            else:
                out = self.tokenizer.decoder(q_frame, None)
        picture = _to_uint8(out)[0]
        if y_blocks is None:  # nothing to go on at all: mid-grey, as a blank patch
            for i in range(n):
                if not known[i].any():
                    r, c = divmod(i, cols)
                    picture[r * PATCH : (r + 1) * PATCH, c * PATCH : (c + 1) * PATCH] = 128
        return picture

    # ------------------------------------------------------------------ index coding
    @torch.inference_mode()
    def index_probabilities(self, y_hat: torch.Tensor, codebook_size: int) -> np.ndarray:
        """(B, 256, K) float64 prior of every position given ŷc alone, reproducibly rounded."""
        reduction = self._reduction(codebook_size)
        groups = None if reduction is None else reduction.groups.numpy()
        out = []
        # One patch at a time: a batch of six is about 20 % faster on two threads and gave
        # the same bits here, but MKL does not promise that a row's sums ignore the other
        # rows, and one changed bit anywhere breaks the receiver's ANS decoding.
        for b in range(y_hat.shape[0]):
            logits = self.predictor.prior_logits(y_hat[b : b + 1])[0].float()
            self._keep_prior_fill(y_hat[b], logits)
            out.append(index_coding.probabilities_from_logits(logits.numpy(), groups))
        return np.stack(out)

    @torch.inference_mode()
    def prior_fill(self, y_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The predictor's arg-max given ŷc alone (every index masked) and its
        probability, (B, 256) each, for y_hat (B, M, 4, 4). These are the logits of the
        index priors, so a patch whose priors were computed (the last
        ``PRIOR_FILL_CACHE``) costs no transformer pass; the rest run as one batch."""
        keys = [_digest(y) for y in y_hat]
        with self._cache_lock:
            known = {k: self._prior_fill_cache[k] for k in keys if k in self._prior_fill_cache}
        todo = [i for i, k in enumerate(keys) if k not in known]
        if todo:
            logits = self.predictor.prior_logits(y_hat[todo]).float()
            for i, row in zip(todo, logits, strict=True):
                known[keys[i]] = self._keep_prior_fill(y_hat[i], row)
        guess = torch.stack([known[k][0] for k in keys])
        sure = torch.stack([known[k][1] for k in keys])
        return guess, sure

    def _keep_prior_fill(
        self, y_hat: torch.Tensor, logits: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        sure, guess = F.softmax(logits, dim=-1).max(dim=-1)
        key = _digest(y_hat)
        with self._cache_lock:
            self._prior_fill_cache[key] = (guess, sure)
            self._prior_fill_cache.move_to_end(key)
            while len(self._prior_fill_cache) > PRIOR_FILL_CACHE:
                self._prior_fill_cache.popitem(last=False)
        return guess, sure


def _digest(y_hat: torch.Tensor) -> bytes:
    """A key for one patch's ŷc (M, 4, 4)."""
    return hashlib.blake2b(y_hat.contiguous().numpy().tobytes(), digest_size=16).digest()


def _tuples(d: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
