"""What the codec produces and what the decoder accepts: an image as coded patches."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from hfstream.codec.schedules import Schedule, kept_mask
from hfstream.geometry import MOTION_BLOCKS, PATCH, SCALES, STILL, TOKENS, Scale, shown_side
from hfstream.protocol.wire import MAX_RUNG

MISSING = -1  # an index the decoder does not have (withheld or lost)


@dataclass(frozen=True)
class EncodedPatch:
    """One 256x256 patch: its tier-0 strings and their rung, its schedule and its indices.

    ``indices`` holds 256 words in raster order, ``MISSING`` where unknown; a freshly
    encoded patch knows all 256 (kept and withheld), a received one what arrived.
    """

    continuous: tuple[bytes, bytes] | None  # (y string, z string); None if not received
    schedule: Schedule
    indices: np.ndarray = field(repr=False)  # (256,) int64
    rung: int = 0  # rung of the continuous stream's rate ladder the strings were coded at
    #: a patch of a predicted frame reads the reference with each of its blocks moved by
    #: its (dy, dx) here, in 1/SUBPEL shown pixels (``codec.motion``)
    motion: tuple[tuple[int, int], ...] = STILL

    def __post_init__(self) -> None:
        if len(self.motion) != MOTION_BLOCKS * MOTION_BLOCKS:
            raise ValueError(f"a patch's motion has {MOTION_BLOCKS**2} vectors, got {self.motion}")
        if self.indices.shape != (TOKENS,):
            raise ValueError(f"patch indices must have shape ({TOKENS},), got {self.indices.shape}")
        if not 0 <= self.rung <= MAX_RUNG:
            raise ValueError(f"Invalid rung {self.rung}, should be in 0..{MAX_RUNG}")

    @property
    def continuous_bytes(self) -> int:
        return 0 if self.continuous is None else len(self.continuous[0]) + len(self.continuous[1])

    @property
    def known(self) -> np.ndarray:
        return self.indices != MISSING

    def kept_only(self) -> EncodedPatch:
        """The patch as sent under its schedule: withheld indices removed."""
        keep = kept_mask(self.schedule).ravel()
        return replace(self, indices=np.where(keep, self.indices, MISSING))


@dataclass(frozen=True)
class EncodedImage:
    height: int  # of the original image; the patch grid covers it, padded
    width: int
    codebook_size: int  # 1024, or the size of the reduced codebook the indices refer to
    model_id: int
    patches: tuple[EncodedPatch, ...]
    #: the picture is shown ``scale`` times its coded size (``height`` x ``width``) in
    #: each direction (``hfstream.codec.scaling``; ``FINE``: half its coded size)
    scale: Scale = 1
    #: the same frame coded again, tier 0 alone, at a larger ``scale`` (a network stream's
    #: ``hfstream.codec.fallback``): shown where a patch's own tier 0 is missing. Files do
    #: not carry it.
    fallback: EncodedImage | None = field(default=None, repr=False)
    #: the source had three equal channels: the decoder shows the picture in gray (the
    #: learned decoder does not keep its channels equal; they differ by up to 30 levels)
    gray: bool = False
    #: a predicted frame (``hfstream.codec.temporal``): the id of the frame it is coded
    #: against. Its patches without tier 0 were not sent (or were lost) and show that
    #: frame's picture; None: an intra frame, every patch sent.
    reference: int | None = None
    #: a predicted frame whose coded patches hold the difference between the frame and
    #: its reference moved by their motion (``hfstream.codec.temporal``), not the frame
    residual: bool = False

    @property
    def predicted(self) -> bool:
        return self.reference is not None

    @property
    def grid(self) -> tuple[int, int]:
        """(rows, cols) of 256x256 patches."""
        return (-(-self.height // PATCH), -(-self.width // PATCH))

    @property
    def shown_size(self) -> tuple[int, int]:
        """(height, width) of the picture the decoder shows."""
        return shown_side(self.height, self.scale), shown_side(self.width, self.scale)

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"Invalid scale {self.scale}, should be one of {SCALES}")
        rows, cols = self.grid
        if len(self.patches) != rows * cols:
            raise ValueError(
                f"{self.height}x{self.width} needs {rows * cols} patches, got {len(self.patches)}"
            )
        if self.residual and not self.predicted:
            raise ValueError("only a predicted frame codes differences from a reference")
        fb = self.fallback
        if fb is not None and self.predicted:
            raise ValueError("a predicted frame has no fallback: its reference stands in")
        if fb is not None and (fb.shown_size != self.shown_size or fb.scale <= self.scale):
            raise ValueError(
                f"a fallback shown at {fb.shown_size} from 1/{fb.scale} does not fit a frame "
                f"shown at {self.shown_size} from 1/{self.scale}"
            )

    def kept_only(self) -> EncodedImage:
        return replace(self, patches=tuple(p.kept_only() for p in self.patches))

    def without_indices(self) -> EncodedImage:
        """Tier 0 alone: every index missing."""
        empty = np.full(TOKENS, MISSING, dtype=np.int64)
        return replace(self, patches=tuple(replace(p, indices=empty.copy()) for p in self.patches))

    def drop_indices(self, lost: np.ndarray) -> EncodedImage:
        """Remove the indices where ``lost`` (P, 256) bool is True (a network loss)."""
        assert lost.shape == (len(self.patches), TOKENS), lost.shape
        return replace(
            self,
            patches=tuple(
                replace(p, indices=np.where(lost[i], MISSING, p.indices))
                for i, p in enumerate(self.patches)
            ),
        )

    @property
    def continuous_bytes(self) -> int:
        return sum(p.continuous_bytes for p in self.patches)

    @property
    def pixels(self) -> int:
        return self.height * self.width
