"""The ``.hfs`` file: an encoded image, versioned, tied to the model that made it.

Layout (big-endian), version 4::

    magic        4 B   b"HFS\\x00"
    version      1 B   4 (versions 1 to 3 are read too)
    coding       1 B   0 = fixed-length indices, 1 = learned-prior (ANS) indices
    model id     4 B   the id of the model that encoded it (decoding with another fails)
    height       2 B   of the image, 1..16384
    width        2 B
    codebook     2 B   codebook size the indices refer to
    tiers        1 B   low 4 bits: 1 = kept indices only, 2 = kept and withheld;
                       bits 4-5: the scale the image is shown at (0..2: log2 of 1, 2,
                       4; 3: ``FINE``, a half, whose patches carry no indices; 0 in files
                       before it: ``hfstream.codec.scaling``; height and width are as coded);
                       bit 6: the source was gray, so the decoder shows it in gray
                       (``EncodedImage.gray``)
    then, for every patch (row-major):
      kind       1 B   16 * the schedule's place in ``SCHEDULE_ORDER`` + the rung
      y length   varint, y string;  z length varint, z string
      kept       varint length, the kept indices (raster order)
      withheld   varint length, the withheld indices (only when tiers == 2)

Version 4 is version 3 with the gray bit (a reader of version 3 would have taken it for a
scale, so the version changed). A varint is unsigned LEB128 (7 bits a byte, low first, at
most 4 bytes): a string of under 128 bytes costs one byte of length. Version 2 had 4-byte
height and width, the schedule's wire id and the rung in a byte each and 2-byte lengths;
version 1 had no rung (rung 0). At the rates the codec runs at (a few hundred bytes a
768x512 picture) those fixed fields were 2 % of a file.

Anything that does not fit this layout is a ``ContainerError`` naming the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from hfstream.codec.encoded import MISSING, TOKENS, EncodedImage, EncodedPatch
from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.index_coding import (
    bits_per_index,
    decode_with_prior,
    encode_with_prior,
    pack_fixed,
    unpack_fixed,
)
from hfstream.codec.schedules import Schedule, kept_positions, withheld_positions
from hfstream.files.buffer import Buffer, BufferReadError
from hfstream.geometry import (
    DEFAULT_MAX_PIXELS,
    FINE,
    MAX_SIDE,
    Scale,
    patch_count,
    scale_bits,
    scale_of_bits,
    shown_side,
)

MAGIC = b"HFS\x00"
VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
GRAY_BIT = 0x40  # of the tiers byte, from version 4
# Version 3's patch byte: the schedule's place here (3 bits) and the rung (4 bits).
SCHEDULE_ORDER = (
    Schedule.NONE,
    Schedule.ALL,
    Schedule.HALF,
    Schedule.QUARTER,
    Schedule.NINTH,
    Schedule.SIXTEENTH,
)
MAX_RUNG_V3 = 15
MAX_FILE_BYTES = 64 * 1024 * 1024  # a 16384x16384 image at 1_1 stays well below this


class IndexCoding(IntEnum):
    FIXED = 0
    PRIOR = 1


class ContainerError(ValueError):
    pass


def _prior(codec: HybridCodec, enc: EncodedImage) -> np.ndarray:
    return codec.index_probabilities(codec.latents(list(enc.patches)), enc.codebook_size)


def write(
    enc: EncodedImage,
    codec: HybridCodec,
    *,
    coding: IndexCoding = IndexCoding.PRIOR,
    include_withheld: bool = False,
    version: int = VERSION,
) -> bytes:
    """The ``.hfs`` bytes of ``enc``: its kept indices, and with ``include_withheld`` the
    withheld ones too. ``version`` 2 and 3 write the older layouts (for older readers)."""
    if version not in (2, 3, 4):
        raise ValueError(f"can write container versions 2 to 4, not {version}")
    if version == 2 and enc.scale != 1:
        raise ValueError("container version 2 cannot hold an image coded below its size")
    fine = enc.scale == FINE
    if fine and (include_withheld or any(p.schedule != Schedule.NONE for p in enc.patches)):
        raise ValueError("an image coded FINE is written as tier 0 alone (no indices)")
    if version < 4 and enc.gray:
        raise ValueError(f"container version {version} cannot mark an image as gray")
    buf = Buffer()
    buf.push_bytes(MAGIC)
    buf.push_uint8(version)
    buf.push_uint8(int(coding))
    buf.push_uint32(enc.model_id)
    push_size = buf.push_uint16 if version >= 3 else buf.push_uint32
    push_size(enc.height)
    push_size(enc.width)
    buf.push_uint16(enc.codebook_size)
    buf.push_uint8(
        (2 if include_withheld else 1) | scale_bits(enc.scale) << 4 | (GRAY_BIT if enc.gray else 0)
    )
    push_length = buf.push_varint if version >= 3 else buf.push_uint16
    bits = bits_per_index(enc.codebook_size)
    probs = _prior(codec, enc) if coding == IndexCoding.PRIOR and not fine else None
    for i, p in enumerate(enc.patches):
        assert p.continuous is not None, "only a complete encoding can be written"
        if version >= 3:
            assert 0 <= p.rung <= MAX_RUNG_V3, f"rung {p.rung} does not fit the patch byte"
            buf.push_uint8(16 * SCHEDULE_ORDER.index(p.schedule) + p.rung)
        else:
            buf.push_uint8(int(p.schedule))
            buf.push_uint8(p.rung)
        for s in p.continuous:
            push_length(len(s))
            buf.push_bytes(s)
        if fine:
            push_length(0)  # no indices
            continue
        groups = [kept_positions(p.schedule)]
        if include_withheld:
            groups.append(withheld_positions(p.schedule))
        for pos in groups:
            values = p.indices[pos]
            assert (values != MISSING).all(), "only a complete encoding can be written"
            if probs is None:
                data = pack_fixed(values, bits)
            else:
                data = encode_with_prior(values, probs[i, pos])
            push_length(len(data))
            buf.push_bytes(data)
    return buf.data()


def read(
    data: bytes,
    codec: HybridCodec,
    indices: bool = True,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> EncodedImage:
    """The encoding an ``.hfs`` file holds. With ``indices`` False the index blobs are
    checked for framing only and every index is left missing: enough for the
    ``continuous`` mode, and it spares the index priors (one predictor pass per patch).
    A file whose picture (as shown) has more than ``max_pixels`` is refused at its header,
    before any work."""
    parsed = _parse(data, codec, max_pixels)
    return _with_indices(parsed, codec) if indices else parsed.light()


def read_to_decode(
    data: bytes, codec: HybridCodec, mode: str = "auto", *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> EncodedImage:
    """What ``codec.decode(..., mode)`` needs of an ``.hfs`` file: its indices only when
    the mode uses them (``auto`` does not where it shows the continuous picture: it
    judges by the share of index positions the file holds, without decoding them).
    ``max_pixels`` as for ``read``."""
    parsed = _parse(data, codec, max_pixels)
    light = parsed.light()
    if mode == "continuous" or (
        mode == "auto" and codec.auto_mode(light, parsed.index_share()) == "continuous"
    ):
        return light
    return _with_indices(parsed, codec)


@dataclass(frozen=True)
class _Parsed:
    """An ``.hfs`` file with its framing checked and its index blobs not yet decoded."""

    height: int
    width: int
    codebook_size: int
    model_id: int
    coding: IndexCoding
    scale: Scale
    gray: bool
    # Per patch: schedule, (y, z) strings, index blobs (kept, then withheld), rung.
    raw: list[tuple[Schedule, tuple[bytes, bytes], list[bytes], int]]

    def light(self) -> EncodedImage:
        """The file's encoding with every index missing."""
        patches = tuple(
            EncodedPatch(c, s, np.full(TOKENS, MISSING, np.int64), r) for s, c, _, r in self.raw
        )
        return EncodedImage(
            self.height,
            self.width,
            self.codebook_size,
            self.model_id,
            patches,
            self.scale,
            gray=self.gray,
        )

    def index_share(self) -> float:
        """The share of index positions that the file's non-empty blobs cover."""
        if not self.raw:
            return 0.0
        held = 0
        for sched, _, blobs, _ in self.raw:
            for pos, blob in zip(
                (kept_positions(sched), withheld_positions(sched)), blobs, strict=False
            ):
                held += len(pos) if blob else 0
        return held / (TOKENS * len(self.raw))


def _parse(data: bytes, codec: HybridCodec, max_pixels: int) -> _Parsed:
    if len(data) > MAX_FILE_BYTES:
        raise ContainerError(f"{len(data)} bytes is more than an .hfs file may hold")
    try:
        return _parse_buffer(data, codec, max_pixels)
    except BufferReadError as e:
        raise ContainerError(f"truncated file: {e}") from None


@dataclass(frozen=True)
class FileHeader:
    """What an ``.hfs`` file's fixed header says, checked without a model."""

    version: int
    coding: IndexCoding
    model_id: int
    height: int  # as coded
    width: int
    codebook_size: int
    tiers: int
    scale: Scale  # shown at this many times the coded size
    gray: bool = False  # shown in gray (version 4)

    @property
    def shown_pixels(self) -> int:
        return shown_side(self.height, self.scale) * shown_side(self.width, self.scale)


def read_header(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> FileHeader:
    """The header of an ``.hfs`` file, refused (``ContainerError``) when it is malformed
    or its picture has more than ``max_pixels``: a check that costs nothing, before a
    model is even loaded."""
    try:
        return _pull_header(Buffer(data), max_pixels)
    except BufferReadError as e:
        raise ContainerError(f"truncated file: {e}") from None


def _pull_header(buf: Buffer, max_pixels: int) -> FileHeader:
    if buf.pull_bytes(4, "magic") != MAGIC:
        raise ContainerError("not an hfstream file (bad magic)")
    version = buf.pull_uint8("version")
    if version not in READABLE_VERSIONS:
        raise ContainerError(
            f"unsupported container version {version}, this hfstream reads {READABLE_VERSIONS}"
        )
    coding_id = buf.pull_uint8("index coding")
    if coding_id not in IndexCoding._value2member_map_:
        raise ContainerError(f"unknown index coding {coding_id}")
    model_id = buf.pull_uint32("model id")
    pull_size = buf.pull_uint16 if version >= 3 else buf.pull_uint32
    height, width = pull_size("height"), pull_size("width")
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise ContainerError(f"image size {width}x{height} is outside 1..{MAX_SIDE} per side")
    k = buf.pull_uint16("codebook size")
    tiers_byte = buf.pull_uint8("tiers")
    gray = version >= 4 and bool(tiers_byte & GRAY_BIT)
    tiers = tiers_byte & 0x0F
    if tiers not in (1, 2):
        raise ContainerError(f"tiers must be 1 or 2, got {tiers}")
    bits = (tiers_byte & ~GRAY_BIT if gray else tiers_byte) >> 4
    if bits > 3 or (version < 3 and bits):
        raise ContainerError(f"unknown scale bits in the tiers byte {tiers_byte:#04x}")
    scale = scale_of_bits(bits)
    if max(height, width) * scale > MAX_SIDE or height * scale % 1 or width * scale % 1:
        raise ContainerError(
            f"image size {width}x{height} shown at {scale}x is not a whole size in "
            f"1..{MAX_SIDE} per side"
        )
    header = FileHeader(
        version, IndexCoding(coding_id), model_id, height, width, k, tiers, scale, gray
    )
    if header.shown_pixels > max_pixels:
        raise ContainerError(
            f"image is {shown_side(width, scale)}x{shown_side(height, scale)} "
            f"({header.shown_pixels / 1e6:.1f} Mpx), "
            f"more than the {max_pixels / 1e6:g} Mpx limit (raise it with --max-megapixels)"
        )
    return header


def _parse_buffer(data: bytes, codec: HybridCodec, max_pixels: int) -> _Parsed:
    buf = Buffer(data)
    header = _pull_header(buf, max_pixels)
    version, coding, model_id = header.version, header.coding, header.model_id
    height, width, k, tiers, scale = (
        header.height,
        header.width,
        header.codebook_size,
        header.tiers,
        header.scale,
    )
    if model_id != codec.model_id:
        raise ContainerError(
            f"file was encoded with model {model_id:08x}, the loaded model is {codec.model_id:08x}"
        )
    if k not in codec.codebook_sizes:
        raise ContainerError(f"codebook size {k} is not one of the model's {codec.codebook_sizes}")
    n = patch_count(height, width)
    # Every patch needs at least 4 bytes (version 3: kind and three lengths; 7 in
    # version 1, 8 in 2): refuse a header that promises more than the file holds.
    if n * {1: 7, 2: 8, 3: 4, 4: 4}[version] > buf.remaining:
        raise ContainerError(
            f"file declares {n} patches but holds only {buf.remaining} bytes of them"
        )

    def pull_length(what: str) -> int:
        return buf.pull_varint(what) if version >= 3 else buf.pull_uint16(what)

    raw = []
    for i in range(n):
        if version >= 3:
            kind = buf.pull_uint8(f"patch {i} schedule and rung")
            if kind >> 4 >= len(SCHEDULE_ORDER):
                raise ContainerError(f"patch {i} has unknown schedule {kind >> 4}")
            sid, rung = int(SCHEDULE_ORDER[kind >> 4]), kind & 0x0F
        else:
            sid = buf.pull_uint8(f"patch {i} schedule")
            if sid not in Schedule._value2member_map_:
                raise ContainerError(f"patch {i} has unknown schedule id {sid}")
            rung = 0 if version == 1 else buf.pull_uint8(f"patch {i} rung")
        if rung >= codec.continuous.rungs:
            raise ContainerError(
                f"patch {i} has rung {rung}, the model has rungs 0..{codec.continuous.rungs - 1}"
            )
        y = buf.pull_bytes(pull_length(f"patch {i} y length"), f"patch {i} y string")
        z = buf.pull_bytes(pull_length(f"patch {i} z length"), f"patch {i} z string")
        blobs = [buf.pull_bytes(pull_length(f"patch {i} index length"), f"patch {i} indices")]
        if tiers == 2:
            blobs.append(
                buf.pull_bytes(
                    pull_length(f"patch {i} withheld length"), f"patch {i} withheld indices"
                )
            )
        if scale == FINE and (sid != Schedule.NONE or any(blobs)):
            # A FINE image's indices would be decoded at twice its size each way.
            raise ContainerError(f"patch {i} of an image coded FINE carries indices")
        raw.append((Schedule(sid), (y, z), blobs, rung))
    if not buf.eof():
        raise ContainerError(f"{buf.remaining} unexpected bytes after the last patch")
    return _Parsed(height, width, k, model_id, coding, scale, header.gray, raw)


def _with_indices(parsed: _Parsed, codec: HybridCodec) -> EncodedImage:
    """The file's encoding with its indices decoded (under the priors where coded so)."""
    height, width, k, model_id = parsed.height, parsed.width, parsed.codebook_size, parsed.model_id
    coding, raw = parsed.coding, parsed.raw
    patches = list(parsed.light().patches)
    try:
        probs = None
        if coding == IndexCoding.PRIOR and parsed.scale != FINE:
            probs = codec.index_probabilities(codec.latents(patches), k)
    except Exception as e:  # compressai raises assorted errors on forged strings
        raise ContainerError(f"corrupt continuous stream: {e}") from None
    bits = bits_per_index(k)
    out = []
    for i, (sched, cont, blobs, rung) in enumerate(raw):
        idx = np.full(TOKENS, MISSING, np.int64)
        for pos, blob in zip(
            (kept_positions(sched), withheld_positions(sched)), blobs, strict=False
        ):
            try:
                if probs is None:
                    values = unpack_fixed(blob, bits, len(pos))
                else:
                    values = decode_with_prior(blob, probs[i, pos])
            except ValueError as e:
                raise ContainerError(f"patch {i}: {e}") from None
            if len(values) and values.max() >= k:
                raise ContainerError(f"patch {i} has an index outside the {k}-word codebook")
            idx[pos] = values
        out.append(EncodedPatch(cont, sched, idx, rung))
    return EncodedImage(height, width, k, model_id, tuple(out), parsed.scale, gray=parsed.gray)
