"""The ``.hfs`` file: an encoded image, versioned, tied to the model that made it.

Layout (big-endian)::

    magic        4 B   b"HFS\\x00"
    version      1 B   2 (version 1, before the rate ladder, is read too)
    coding       1 B   0 = fixed-length indices, 1 = learned-prior (ANS) indices
    model id     4 B   the id of the model that encoded it (decoding with another fails)
    height       4 B   of the image, 1..16384
    width        4 B
    codebook     2 B   codebook size the indices refer to
    tiers        1 B   1 = kept indices only, 2 = kept and withheld
    then, for every patch (row-major):
      schedule   1 B   wire id of the patch's schedule
      rung       1 B   rung of its continuous strings (not in version 1, where it is 0)
      y length   2 B, y string;  z length 2 B, z string
      kept       2 B length, the kept indices (raster order)
      withheld   2 B length, the withheld indices (only when tiers == 2)

Anything that does not fit this layout is a ``ContainerError`` naming the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from hfstream.buffer import Buffer, BufferReadError
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
from hfstream.protocol.geometry import MAX_SIDE, patch_count

MAGIC = b"HFS\x00"
VERSION = 2
READABLE_VERSIONS = (1, 2)
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
    coding: IndexCoding = IndexCoding.PRIOR,
    include_withheld: bool = False,
) -> bytes:
    buf = Buffer()
    buf.push_bytes(MAGIC)
    buf.push_uint8(VERSION)
    buf.push_uint8(int(coding))
    buf.push_uint32(enc.model_id)
    buf.push_uint32(enc.height)
    buf.push_uint32(enc.width)
    buf.push_uint16(enc.codebook_size)
    buf.push_uint8(2 if include_withheld else 1)
    bits = bits_per_index(enc.codebook_size)
    probs = _prior(codec, enc) if coding == IndexCoding.PRIOR else None
    for i, p in enumerate(enc.patches):
        assert p.continuous is not None, "only a complete encoding can be written"
        buf.push_uint8(int(p.schedule))
        buf.push_uint8(p.rung)
        for s in p.continuous:
            buf.push_uint16(len(s))
            buf.push_bytes(s)
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
            buf.push_uint16(len(data))
            buf.push_bytes(data)
    return buf.data()


def read(data: bytes, codec: HybridCodec, indices: bool = True) -> EncodedImage:
    """The encoding an ``.hfs`` file holds. With ``indices`` False the index blobs are
    checked for framing only and every index is left missing: enough for the
    ``continuous`` mode, and it spares the index priors (one predictor pass per patch)."""
    parsed = _parse(data, codec)
    return _with_indices(parsed, codec) if indices else parsed.light()


def read_to_decode(data: bytes, codec: HybridCodec, mode: str = "auto") -> EncodedImage:
    """What ``codec.decode(..., mode)`` needs of an ``.hfs`` file: its indices only when
    the mode uses them (``auto`` does not where it shows the continuous picture: it
    judges by the share of index positions the file holds, without decoding them)."""
    parsed = _parse(data, codec)
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
    # Per patch: schedule, (y, z) strings, index blobs (kept, then withheld), rung.
    raw: list[tuple[Schedule, tuple[bytes, bytes], list[bytes], int]]

    def light(self) -> EncodedImage:
        """The file's encoding with every index missing."""
        patches = tuple(
            EncodedPatch(c, s, np.full(TOKENS, MISSING, np.int64), r) for s, c, _, r in self.raw
        )
        return EncodedImage(self.height, self.width, self.codebook_size, self.model_id, patches)

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


def _parse(data: bytes, codec: HybridCodec) -> _Parsed:
    if len(data) > MAX_FILE_BYTES:
        raise ContainerError(f"{len(data)} bytes is more than an .hfs file may hold")
    try:
        return _parse_buffer(data, codec)
    except BufferReadError as e:
        raise ContainerError(f"truncated file: {e}") from None


def _parse_buffer(data: bytes, codec: HybridCodec) -> _Parsed:
    buf = Buffer(data)
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
    coding = IndexCoding(coding_id)
    model_id = buf.pull_uint32("model id")
    if model_id != codec.model_id:
        raise ContainerError(
            f"file was encoded with model {model_id:08x}, the loaded model is {codec.model_id:08x}"
        )
    height, width = buf.pull_uint32("height"), buf.pull_uint32("width")
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise ContainerError(f"image size {width}x{height} is outside 1..{MAX_SIDE} per side")
    k = buf.pull_uint16("codebook size")
    if k not in codec.codebook_sizes:
        raise ContainerError(f"codebook size {k} is not one of the model's {codec.codebook_sizes}")
    tiers = buf.pull_uint8("tiers")
    if tiers not in (1, 2):
        raise ContainerError(f"tiers must be 1 or 2, got {tiers}")
    n = patch_count(height, width)
    # Every patch needs at least 7 bytes (8 with its rung): refuse a header that promises
    # more than the file holds.
    if n * (7 if version == 1 else 8) > buf.remaining:
        raise ContainerError(
            f"file declares {n} patches but holds only {buf.remaining} bytes of them"
        )
    raw = []
    for i in range(n):
        sid = buf.pull_uint8(f"patch {i} schedule")
        if sid not in Schedule._value2member_map_:
            raise ContainerError(f"patch {i} has unknown schedule id {sid}")
        rung = 0 if version == 1 else buf.pull_uint8(f"patch {i} rung")
        if rung >= codec.continuous.rungs:
            raise ContainerError(
                f"patch {i} has rung {rung}, the model has rungs 0..{codec.continuous.rungs - 1}"
            )
        y = buf.pull_bytes(buf.pull_uint16(f"patch {i} y length"), f"patch {i} y string")
        z = buf.pull_bytes(buf.pull_uint16(f"patch {i} z length"), f"patch {i} z string")
        blobs = [buf.pull_bytes(buf.pull_uint16(f"patch {i} index length"), f"patch {i} indices")]
        if tiers == 2:
            blobs.append(
                buf.pull_bytes(
                    buf.pull_uint16(f"patch {i} withheld length"), f"patch {i} withheld indices"
                )
            )
        raw.append((Schedule(sid), (y, z), blobs, rung))
    if not buf.eof():
        raise ContainerError(f"{buf.remaining} unexpected bytes after the last patch")
    return _Parsed(height, width, k, model_id, coding, raw)


def _with_indices(parsed: _Parsed, codec: HybridCodec) -> EncodedImage:
    """The file's encoding with its indices decoded (under the priors where coded so)."""
    height, width, k, model_id = parsed.height, parsed.width, parsed.codebook_size, parsed.model_id
    coding, raw = parsed.coding, parsed.raw
    patches = list(parsed.light().patches)
    try:
        probs = None
        if coding == IndexCoding.PRIOR:
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
    return EncodedImage(height, width, k, model_id, tuple(out))
