"""``HybridCodec``: the dual-stream codec behind one API.

>>> codec = HybridCodec.from_pretrained()
>>> enc = codec.encode(image, schedule="auto")        # any HxWx3 uint8 image
>>> preview = codec.decode(enc.without_indices())      # tier 0 only
>>> picture = codec.decode(enc.kept_only())            # what the schedule sends

The façade loads the model and holds its parts; the work is done by the modules behind it:
``rates`` and ``estimates`` choose rungs, ``latents`` codes tier 0 both ways,
``codebooks`` and ``fills`` turn indices into code vectors, ``decoding`` picks the
picture's path (``continuous_picture``, ``refined_picture``, ``legacy``) and ``modes``
decides which picture ``auto`` shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from hfstream.codec import fills, temporal
from hfstream.codec.caches import LRU
from hfstream.codec.codebooks import ReducedCodebook, tokenize
from hfstream.codec.complexity import ComplexityModel
from hfstream.codec.continuous import ContinuousCodec
from hfstream.codec.continuous_picture import continuous_picture
from hfstream.codec.correction import CorrectionDecoder
from hfstream.codec.deblocking import deblock
from hfstream.codec.decoding import decode_bands
from hfstream.codec.encoded import MISSING, TOKENS, EncodedImage, EncodedPatch
from hfstream.codec.estimates import RungTable, choose_rungs, rung_table
from hfstream.codec.fallback import blend_fallback, lost_mask
from hfstream.codec.fills import FillMethod, check_fill
from hfstream.codec.frames import (
    FrameBands,
    frame_bands,
    is_gray,
    to_gray,
    to_uint8_image,
)
from hfstream.codec.latents import BATCH, LATENT_CACHE, compress_frame, decode_latents
from hfstream.codec.loading import model_parts
from hfstream.codec.model_io import DEFAULT_MODEL_DIR, ModelBundle, load_model
from hfstream.codec.modes import DecodeMode, auto_mode, check_mode, shown_gains
from hfstream.codec.predictor import MaskedTokenPredictor
from hfstream.codec.rates import Fixed, RungChoice
from hfstream.codec.refinement import check_refine_steps
from hfstream.codec.refiner import IndexRefiner
from hfstream.codec.scaling import downscale, upscale
from hfstream.codec.schedules import Schedule
from hfstream.codec.temporal_synthesis import TemporalSynthesis, synthesize
from hfstream.codec.tokenizer import Tokenizer
from hfstream.codec.upsampler import LearnedUpsampler
from hfstream.codec.views import stream_view
from hfstream.geometry import FINE, Scale

ImageLike = np.ndarray | Image.Image | str | Path


class HybridCodec:
    def __init__(
        self,
        tokenizer: Tokenizer,
        continuous: ContinuousCodec,
        predictor: MaskedTokenPredictor,
        complexity: ComplexityModel,
        *,
        model_id: int,
        reductions: dict[int, ReducedCodebook] | None = None,
        name: str = "custom",
        index_gain_db: dict[str, float] | None = None,
        upsampler: LearnedUpsampler | None = None,
        refiner: IndexRefiner | None = None,
        correction: CorrectionDecoder | None = None,
        temporal_synthesis: TemporalSynthesis | None = None,
        residual_stream: ContinuousCodec | None = None,
        fine_stream: ContinuousCodec | None = None,
        fine_upsampler: LearnedUpsampler | None = None,
        fine_error_bias_db: float | None = None,
    ) -> None:
        self.tokenizer = tokenizer.eval()
        self.continuous = continuous.eval()
        self.predictor = predictor.eval()
        self.complexity = complexity
        self.reductions = reductions or {}
        self.model_id = model_id
        self.name = name
        # dB each schedule adds over the continuous stream, as measured at export (None:
        # not measured; ``hfstream.planning`` then uses its defaults).
        self.index_gain_db = index_gain_db
        # The continuous picture at full size: learned (None: bicubic, as older models).
        self.upsampler = None if upsampler is None else upsampler.eval()
        # The hybrid picture as the continuous picture plus what the indices add (None:
        # the correction decoder and the VQ decoder, as older models, ``codec.legacy``).
        self.refiner = None if refiner is None else refiner.eval()
        self.correction = None if correction is None else correction.eval()
        # A predicted frame's coded patches sharpened from its reference (None: shown as
        # decoded, as older models; ``codec.temporal_synthesis``).
        self.temporal = None if temporal_synthesis is None else temporal_synthesis.eval()
        # The continuous stream of residual predicted frames, trained on differences
        # (None: they are coded by the picture stream, as older models).
        # The continuous stream (and its up-sampler) of FINE frames, trained on 2x-down
        # thumbnails (None: they are coded by the picture stream, as older models).
        for what, other in (("residual", residual_stream), ("FINE", fine_stream)):
            if other is not None and other.rungs != continuous.rungs:
                raise ValueError(
                    f"the {what} stream has {other.rungs} rungs, the picture stream "
                    f"{continuous.rungs}"
                )
        self.residual_stream = None if residual_stream is None else residual_stream.eval()
        if self.residual_stream is not None:
            self.residual_stream.interpolation = temporal.RESIDUAL_INTERPOLATION
        self.fine_stream = None if fine_stream is None else fine_stream.eval()
        self.fine_upsampler = None if fine_upsampler is None else fine_upsampler.eval()
        # What the planner raises a FINE rung table's errors by (None: the default of
        # ``estimates.SCALED_ERROR_BIAS_DB``): each FINE stream's own, measured.
        self.fine_error_bias_db = fine_error_bias_db
        self._residual_coder: HybridCodec | None = None
        self._fine_coder: HybridCodec | None = None
        # Inference runs the conv decoders on channels-last maps; weights in that layout
        # spare oneDNN a reorder per call. Values and state-dict keys are unchanged.
        self.tokenizer.decoder.to(memory_format=torch.channels_last)
        parts = (self.correction, self.upsampler, self.refiner, self.temporal, self.fine_upsampler)
        for module in parts:
            if module is not None:
                module.to(memory_format=torch.channels_last)
        # A receiver asks twice per patch (index priors, then decoding): keyed by the
        # strings and their rung, ŷc; keyed by ŷc, the prior pass's arg-max and confidence.
        self._latents: LRU[tuple[bytes, bytes, int], torch.Tensor] = LRU(LATENT_CACHE)
        self._prior_fills: LRU[bytes, fills.PriorFill] = LRU(fills.PRIOR_FILL_CACHE)

    def clear_caches(self) -> None:
        """Forget the ŷc and the prior fill of every patch decoded so far."""
        self._latents.clear()
        self._prior_fills.clear()
        for view in (self._residual_coder, self._fine_coder):
            if view is not None:
                view.clear_caches()

    @property
    def residual_coder(self) -> HybridCodec:
        """The codec that codes and decodes a residual frame's differences
        (``codec.temporal.residual_picture``), at every scale: this model with its residual
        stream in place of the picture stream, shown by the stream's interpolation (the
        learned up-sampler knows pictures only) and without temporal synthesis
        (``codec.views``); the model itself where it has none."""
        if self.residual_stream is None:
            return self
        if self._residual_coder is None:
            self._residual_coder = stream_view(
                self, self.residual_stream, upsampler=None, temporal=False
            )
        return self._residual_coder

    @property
    def fine_coder(self) -> HybridCodec:
        """The codec that codes and decodes the pictures of ``FINE`` frames: this model
        with its FINE stream and up-sampler in place of the picture stream's
        (``codec.views``); the model itself where it has none."""
        if self.fine_stream is None:
            return self
        if self._fine_coder is None:
            self._fine_coder = stream_view(
                self, self.fine_stream, upsampler=self.fine_upsampler, temporal=True
            )
            self._fine_coder.fine_error_bias_db = self.fine_error_bias_db
        return self._fine_coder

    def coder_for(self, scale: Scale, *, residual: bool = False) -> HybridCodec:
        """The codec (this model or a view of it) whose stream codes the tier 0 of a frame
        at ``scale``, residual or not."""
        if residual:
            return self.residual_coder
        return self.fine_coder if scale == FINE else self

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, path: str | Path | None = None) -> HybridCodec:
        """Load a shipped model folder (default: the model inside the package)."""
        return cls.from_bundle(load_model(path or DEFAULT_MODEL_DIR))

    @classmethod
    def from_bundle(cls, bundle: ModelBundle) -> HybridCodec:
        """The codec of a loaded model; the correction decoder only for a model without an
        index refiner (the only one that decodes through it)."""
        parts, options = model_parts(bundle)
        return cls(*parts, model_id=bundle.model_id, **options)

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
        image: ImageLike,
        schedule: str | Schedule = "auto",
        *,
        rate: RungChoice | None = None,
        codebook_size: int | None = None,
        scale: Scale = 1,
        refine_steps: int = 0,
        progress: Callable[[int], None] | None = None,
        refine_progress: Callable[[int], None] | None = None,
    ) -> EncodedImage:
        """Code an image. ``schedule`` is a label (``1_4``...) or ``auto`` (complexity-aware).

        The continuous stream is analysed over the whole frame and coded per patch, each
        patch at the rung ``rate`` chooses (``hfstream.codec.rates``; None: ``Fixed()``).
        ``refine_steps`` > 0 optimises the continuous latent for this picture before coding
        it (``hfstream.codec.refinement``: better pictures for the bytes, at a decoder
        pass per step); rungs are still chosen from the unrefined latent.
        ``refine_progress`` is called after each step with the patches it refined.
        ``progress`` is called with the number of patches just coded (for a progress bar).
        ``scale`` 2 or 4 codes the image at that fraction of its size, shown up-scaled
        (``hfstream.codec.scaling``; the scale must divide both sides); ``PerPatch`` rungs
        then count the smaller frame's patches. ``FINE`` codes it at twice its size, as
        tier 0 alone (schedule ``0``, whatever ``schedule`` says): indices of the
        enlarged picture would only describe its repeated pixels.
        """
        k = codebook_size or self.tokenizer.config.codebook_size
        fixed = None if schedule == "auto" else Schedule.parse(schedule)
        check_refine_steps(refine_steps)
        bands, rungs, strings, gray = self._tier0(
            image, rate, scale, k, refine_steps=refine_steps, refine_progress=refine_progress
        )
        if scale == FINE:
            if progress is not None:
                progress(len(bands.patches))
            return self._tier0_alone(bands, rungs, strings, k, scale, gray=gray)
        reduction = self._reduction(k)
        out: list[EncodedPatch] = []
        for s in range(0, len(bands.patches), BATCH):
            chunk = bands.patches[s : s + BATCH]
            idx = tokenize(self.tokenizer, chunk, reduction)
            for j, p in enumerate(chunk):
                score = self.complexity.score(p)
                sched = fixed if fixed is not None else self.complexity.schedule_for(score)
                words = idx[j].flatten().long().numpy()
                out.append(EncodedPatch(strings[s + j], sched, words, rungs[s + j]))
            if progress is not None:
                progress(len(chunk))
        return EncodedImage(*bands.size, k, self.model_id, tuple(out), scale, gray=gray)

    @torch.inference_mode()
    def encode_tier0(
        self,
        image: ImageLike,
        *,
        rate: RungChoice | None = None,
        codebook_size: int | None = None,
        scale: Scale = 1,
    ) -> EncodedImage:
        """``image`` coded as tier 0 alone (schedule ``0``): every index missing, the
        tokenizer not run. ``rate``, ``codebook_size`` and ``scale`` as in ``encode``."""
        k = codebook_size or self.tokenizer.config.codebook_size
        bands, rungs, strings, gray = self._tier0(image, rate, scale, k)
        return self._tier0_alone(bands, rungs, strings, k, scale, gray=gray)

    def _tier0_alone(
        self,
        bands: FrameBands,
        rungs: list[int],
        strings: list[tuple[bytes, bytes]],
        codebook_size: int,
        scale: Scale,
        *,
        gray: bool,
    ) -> EncodedImage:
        none = Schedule.parse("0")
        out = tuple(
            EncodedPatch(c, none, np.full(TOKENS, MISSING, np.int64), r)
            for c, r in zip(strings, rungs, strict=True)
        )
        return EncodedImage(*bands.size, codebook_size, self.model_id, out, scale, gray=gray)

    def _tier0(
        self,
        image: ImageLike,
        rate: RungChoice | None,
        scale: Scale,
        codebook_size: int,
        *,
        refine_steps: int = 0,
        refine_progress: Callable[[int], None] | None = None,
    ) -> tuple[FrameBands, list[int], list[tuple[bytes, bytes]], bool]:
        """The frame as coded (``image`` at 1/``scale``), each patch's rung and strings,
        and whether the image is gray (three equal channels)."""
        arr = downscale(to_uint8_image(image), scale)
        self._reduction(codebook_size)  # refused before any coding
        coder = self.coder_for(scale)
        bands = frame_bands(coder.continuous, arr)
        rungs = choose_rungs(coder.continuous, bands, rate or Fixed(), model_id=self.model_id)
        strings = compress_frame(
            coder.continuous,
            coder.upsampler,
            bands,
            rungs,
            refine_steps=refine_steps,
            refine_progress=refine_progress,
        )
        return bands, rungs, strings, is_gray(arr)

    @torch.inference_mode()
    def recode_continuous(
        self, image: ImageLike, enc: EncodedImage, rungs: Sequence[int], refine_steps: int = 0
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
        coder = self.coder_for(enc.scale, residual=enc.residual)
        checked = [coder.continuous.check_rung(int(r)) for r in rungs]
        check_refine_steps(refine_steps)
        bands = frame_bands(coder.continuous, arr)
        strings = compress_frame(
            coder.continuous, coder.upsampler, bands, checked, refine_steps=refine_steps
        )
        patches = tuple(
            replace(p, continuous=c, rung=r)
            for p, c, r in zip(enc.patches, strings, checked, strict=True)
        )
        return replace(enc, patches=patches)

    def rung_table(
        self, image: ImageLike, scale: Scale = 1, *, synthesised: Sequence[int] | None = None
    ) -> RungTable:
        """Each patch's bits and error at every rung (``codec.estimates.RungTable``); with
        ``scale``, of the frame coded at 1/``scale`` of its size, errors measured on the
        shown picture (``encode(..., scale=)``); with ``synthesised``, errors measured at
        those rungs and interpolated between them (``ContinuousCodec.ladder_table``)."""
        coder = self.coder_for(scale)
        bias = coder.fine_error_bias_db if scale == FINE else None
        shown = to_uint8_image(image)
        return rung_table(coder.continuous, shown, scale, synthesised=synthesised, bias_db=bias)

    # ------------------------------------------------------------------ decoding
    def latents(self, patches: list[EncodedPatch]) -> torch.Tensor:
        """ŷc of patches whose tier 0 is present, (B, M, 4, 4); the last ``LATENT_CACHE``
        are kept, bit-identical to a fresh decode (``codec.latents``)."""
        return decode_latents(self.continuous, patches, self._latents)

    @torch.inference_mode()
    def decode(
        self,
        enc: EncodedImage,
        mode: DecodeMode = "auto",
        *,
        fill: FillMethod = "auto",
        steps: int = 1,
        progress: Callable[[int], None] | None = None,
        reference: np.ndarray | None = None,
        synthesis: bool = True,
    ) -> np.ndarray:
        """Rebuild the image from whatever ``enc`` holds; returns HxWx3 uint8.

        ``mode="auto"`` (the default, and what the receiver uses) is ``hybrid``, or
        ``continuous`` where the model measured that the frame's schedule adds too little
        over the continuous picture to be worth showing (``codec.modes``). ``fill``
        (``codec.fills``): ``auto`` is ``prior`` for a ``hybrid`` picture through the
        index refiner in one step (the refiner leans on the received codes: the fill's
        context hardly moves it, docs/notebook/speed.md), else ``predictor``; ``steps`` > 1
        makes the predictor's fill MaskGIT-style. A patch without tier 0 borrows its
        neighbours' latents (its indices alone without any), and one with neither is
        mid-grey; where ``enc`` has a fallback (``hfstream.codec.fallback``), such
        patches show its picture instead. ``progress`` is called with the number of
        patches just decoded. Patch borders then go through the deblocking filter
        (``codec.deblocking``). A predicted frame (``enc.reference``) shows ``reference``
        (the picture of its reference frame, shown size) moved where a patch has no tier 0
        (``codec.temporal``), and its coded patches go through the model's temporal
        synthesis unless ``synthesis`` is False; a residual one (``enc.residual``) shows
        the moved reference plus the decoded differences."""
        mode = check_mode(mode)
        args = {"fill": fill, "steps": steps, "progress": progress}
        if not enc.residual:
            moved = temporal.moved_reference(enc, reference) if enc.predicted else None
            return self._decode_moved(enc, mode, moved=moved, synthesis=synthesis, **args)
        aligned = temporal.moved_reference(enc, reference)
        # The differences decode against a zero difference (mid-grey) where a patch has
        # no tier 0; mid-grey moved is mid-grey, so it is not moved again.
        grey = np.full_like(aligned, temporal.RESIDUAL_MID)
        plain = replace(enc, residual=False, gray=False)
        diff = self.residual_coder._decode_moved(
            plain, "continuous", moved=grey, synthesis=False, **args
        )
        shown = temporal.add_residual(aligned, diff, lost_mask(enc), enc.scale)
        return to_gray(shown) if enc.gray else shown

    def _decode_moved(
        self,
        enc: EncodedImage,
        mode: DecodeMode,
        *,
        fill: FillMethod,
        steps: int,
        progress: Callable[[int], None] | None,
        moved: np.ndarray | None,
        synthesis: bool,
    ) -> np.ndarray:
        """``decode`` of a picture (not a residual) frame, a predicted one's reference
        ``moved`` already (``temporal.moved_reference``)."""
        if enc.scale == FINE:
            mode = "continuous"  # tier 0 alone
        if mode == "auto":
            mode = self.auto_mode(enc)
        fill = check_fill(fill)
        if fill == "auto":
            prior = mode == "hybrid" and self.refiner is not None and steps == 1
            fill = "prior" if prior else "predictor"
        if enc.model_id != self.model_id:
            raise ValueError(
                f"encoded with model {enc.model_id:08x}, this codec is model {self.model_id:08x}"
            )
        lost = lost_mask(enc)
        coded_reference = None if moved is None else temporal.coded_reference(enc, moved)
        picture = decode_bands(
            self.coder_for(enc.scale),
            enc,
            reduction=self._reduction(enc.codebook_size),
            mode=mode,
            fill=fill,
            steps=steps,
            context=coded_reference,
            progress=progress,
        )
        shown = upscale(
            np.ascontiguousarray(deblock(picture)[: enc.height, : enc.width]), enc.scale
        )
        if moved is not None:
            if lost.any() and enc.scale > 1:
                # Smaller coded sizes blur what was pasted: the reference's own pixels.
                # (The full and FINE sizes keep them, deblocked at the seams.)
                shown = temporal.paste_shown(shown, moved, lost, enc.scale)
            if synthesis and self.temporal is not None:
                coded = temporal.shown_mask(~lost, enc.scale, shown.shape[:2])
                shown = synthesize(self.temporal, shown, moved, coded)
        elif enc.fallback is not None and lost.any():
            small = self.decode(replace(enc.fallback, fallback=None), mode="continuous")
            shown = blend_fallback(shown, small, lost, enc.scale)
        return to_gray(shown) if enc.gray else shown

    def auto_mode(self, enc: EncodedImage, index_share: float | None = None) -> DecodeMode:
        """The mode ``decode(enc)`` shows: ``codec.modes.auto_mode`` by this model's gains."""
        return auto_mode(enc, self.shown_gain_db, index_share)

    @property
    def shown_gain_db(self) -> dict[str, float] | None:
        """``index_gain_db`` as the receiver's ``auto`` mode counts it
        (``codec.modes.shown_gains``): what the frame planner may count on."""
        return shown_gains(self.index_gain_db)

    def continuous_picture(self, low: torch.Tensor, y_hat: torch.Tensor) -> torch.Tensor:
        """The thumbnail ``low`` (1,3,h,w) that ``y_hat`` (1,M,h/16,w/16) synthesises, at
        full size (1,3,4h,4w) in [0, 1]: by the learned up-sampler, or bicubic."""
        return continuous_picture(self.continuous, self.upsampler, low, y_hat)

    # ------------------------------------------------------------------ index coding
    def index_probabilities(self, y_hat: torch.Tensor, codebook_size: int) -> np.ndarray:
        """(B, 256, K) float64 prior of every position given ŷc alone, reproducibly rounded."""
        reduction = self._reduction(codebook_size)
        groups = None if reduction is None else reduction.groups.numpy()
        return fills.prior_probabilities(self.predictor, y_hat, groups, self._prior_fills)

    def prior_fill(self, y_hat: torch.Tensor) -> fills.PriorFill:
        """The predictor's arg-max given ŷc alone and its probability, (B, 256) each, for
        y_hat (B, M, 4, 4); free for the patches whose priors were computed last
        (``codec.fills.prior_fill``)."""
        return fills.prior_fill(self.predictor, y_hat, self._prior_fills)
