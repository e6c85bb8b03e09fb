"""Predicted frames: a video frame coded against a frame both ends hold (its reference).

A predicted frame (``EncodedImage.reference``) sends tier 0 only for the patches that
changed enough to pay for their bytes; every other patch is *reused*: it sends nothing
and the receiver shows the reference's picture there. A patch whose tier 0 is lost is
shown the same way, so a loss costs a predicted frame only the change in that patch
since the reference (a still background loses nothing).

Reuse works on the shown picture, whatever scale either frame was coded at: a still
scene coded once at the full size can be refined patch by patch at ``FINE`` by later
frames (the planner, ``hfstream.planning.temporal``, spends each frame's budget on the
patches that gain the most per byte, changed or not).

A predicted frame may instead be *residual* (``EncodedImage.residual``): its coded
patches carry the difference between the frame and the reference moved by their motion,
halved and centred on mid-grey (``residual_picture``), coded by the same continuous
stream; the receiver adds it back (``add_residual``). The reference then keeps the detail
the stream cannot code at 0.05 bpp, and the strings spend their bytes on what changed.
The planner codes each frame both ways and sends the better.

The reference picture is the one the receiver showed for the reference frame complete,
which the sender rebuilds with the same decoder. The two may differ by float rounding
between machines; nothing is predicted *from* the reference's pixels (they are copied),
so such a difference never grows from frame to frame.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

import numpy as np

from hfstream.codec.encoded import EncodedImage
from hfstream.codec.fallback import patch_errors
from hfstream.codec.motion import as_vectors, motion_picture
from hfstream.codec.scaling import downscale
from hfstream.geometry import PATCH, STILL, Scale

RESIDUAL_MID = 128  #: the level a zero difference is coded as
RESIDUAL_GAIN = 2  #: a difference is halved to fit 0..255, and doubled back
#: How a decoded difference comes back to full size (``ContinuousCodec.shown``): bicubic
#: overshoots at each 4x4 block's edges, in the same place in every frame of a chain, so a
#: mesh grows over flat areas; bilinear does not overshoot.
RESIDUAL_INTERPOLATION = "bilinear"


def residual_picture(image: np.ndarray, aligned: np.ndarray) -> np.ndarray:
    """The uint8 picture a residual frame codes: (image - aligned) / 2 + 128, rounded."""
    diff = (image.astype(np.int16) - aligned.astype(np.int16)) / RESIDUAL_GAIN
    return np.clip(np.round(diff) + RESIDUAL_MID, 0, 255).astype(np.uint8)


def add_residual(
    aligned: np.ndarray, decoded: np.ndarray, lost: np.ndarray, scale: Scale
) -> np.ndarray:
    """The picture of a residual frame: ``aligned`` (the moved reference) plus the decoded
    difference (``decoded``, coded as ``residual_picture``) where the patch's tier 0 is
    not ``lost`` ((rows, cols) bool)."""
    diff = (decoded.astype(np.int16) - RESIDUAL_MID) * RESIDUAL_GAIN
    out = np.clip(aligned.astype(np.int16) + diff, 0, 255).astype(np.uint8)
    coded = shown_mask(~lost, scale, aligned.shape[:2])
    return np.where(coded[..., None], out, aligned)


def reuse_errors(
    image: np.ndarray, reference: np.ndarray, grid: tuple[int, int], scale: Scale
) -> np.ndarray:
    """(P,) mean squared error (pixels in [0, 1]) of each patch of ``image`` coded at
    1/``scale`` if it showed ``reference`` instead: what reusing it costs."""
    if image.shape != reference.shape:
        raise ValueError(f"the reference is {reference.shape}, the frame {image.shape}")
    return patch_errors(image, reference, grid, scale)


def predicted(
    enc: EncodedImage,
    reused: Collection[int],
    *,
    reference: int,
    motion: np.ndarray | None = None,
    residual: bool = False,
) -> EncodedImage:
    """``enc`` as a frame predicted from frame ``reference``: the patches in ``reused``
    lose their tier 0 and indices (they are not sent) and show the reference moved by
    their row of ``motion`` ((P, ``BLOCKS``, 2) (dy, dx) per block, ``codec.motion``;
    None: not moved). The coded patches carry their row too: the temporal synthesis
    reads the reference moved by it, and a ``residual`` frame (``enc`` coded from
    ``residual_picture``) adds their difference to it."""

    def vector(i: int) -> tuple[tuple[int, int], ...]:
        return STILL if motion is None else as_vectors(motion[i])

    patches = tuple(
        replace(p, continuous=None, indices=np.full_like(p.indices, -1), motion=vector(i))
        if i in reused
        else replace(p, motion=vector(i))
        for i, p in enumerate(enc.patches)
    )
    return replace(enc, patches=patches, reference=reference, fallback=None, residual=residual)


def moved_reference(enc: EncodedImage, reference: np.ndarray | None) -> np.ndarray:
    """The reference picture (shown size) with each patch's blocks moved by its motion:
    what ``enc`` shows where a patch has no tier 0, and what the temporal synthesis reads
    where it has."""
    if reference is None:
        raise ValueError(
            f"frame predicted from frame {enc.reference} needs that frame's picture to decode"
        )
    if reference.shape[:2] != enc.shown_size or reference.ndim != 3:
        raise ValueError(
            f"the reference picture is {reference.shape[:2]}, the frame is shown at "
            f"{enc.shown_size}"
        )
    vectors = np.array([p.motion for p in enc.patches], int)
    return motion_picture(reference, vectors, enc.grid, enc.scale)


def coded_reference(enc: EncodedImage, reference: np.ndarray) -> np.ndarray:
    """``moved_reference``'s picture brought to the coded size of ``enc`` and
    edge-padded to its patch grid, for the decoder to put in the patches it does not
    decode."""
    coded = downscale(np.ascontiguousarray(reference), enc.scale)[: enc.height, : enc.width]
    rows, cols = enc.grid
    pad = ((0, rows * PATCH - coded.shape[0]), (0, cols * PATCH - coded.shape[1]), (0, 0))
    return np.pad(coded, pad, mode="edge")


def shown_mask(mask: np.ndarray, scale: Scale, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the pixels, at the shown ``size``, of the patches where ``mask``
    (rows, cols) is True."""
    side = int(PATCH * scale)
    return np.kron(mask, np.ones((side, side), bool))[: size[0], : size[1]]


def paste_shown(
    shown: np.ndarray, reference: np.ndarray, mask: np.ndarray, scale: Scale
) -> np.ndarray:
    """``shown`` (the picture at its shown size) with the regions of the patches where
    ``mask`` (rows, cols) is True taken from ``reference`` (same size)."""
    pixels = shown_mask(mask, scale, shown.shape[:2])
    return np.where(pixels[..., None], reference, shown)


def paste_patches(picture: np.ndarray, source: np.ndarray, mask: np.ndarray) -> None:
    """Copy the patches where ``mask`` (rows, cols) is True from ``source`` into
    ``picture`` (both the padded grid's size)."""
    for r, c in zip(*np.nonzero(mask), strict=True):
        rows = slice(r * PATCH, (r + 1) * PATCH)
        cols = slice(c * PATCH, (c + 1) * PATCH)
        picture[rows, cols] = source[rows, cols]
