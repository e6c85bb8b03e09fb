"""Progressive decoding: what the receiver holds for a frame -> the best picture now.

Stages of a frame, in order:

- ``PREVIEW``: tier 0 only; every index is predicted from the continuous latent;
- ``PARTIAL``: some indices arrived;
- ``FULL``: every kept index (all of tier 1) arrived;
- ``REFINED``: the withheld indices (tier 2) arrived as well.

A withheld index and a lost one are the same to the decoder: both are filled by the
predictor. Index entries are decoded under the prior of their patch, which needs that
patch's tier 0; an entry whose checksum fails is dropped and counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import IntEnum

import numpy as np

from hfstream.codec.continuous import ContinuousCodec
from hfstream.codec.encoded import TOKENS, EncodedImage, EncodedPatch
from hfstream.codec.frame_coding import decode_index_entry, empty_patch, group_positions
from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.joint_strings import split_joint
from hfstream.codec.schedules import Schedule
from hfstream.geometry import STILL, Scale, patch_count
from hfstream.protocol.reassembly import FrameState, Reassembler, ReassemblerConfig
from hfstream.protocol.wire import PacketType, Tier0Entry, WireError


class Stage(IntEnum):
    """How much of a frame a picture was decoded from; a frame's pictures come in this
    order."""

    NONE = 0
    """Nothing to show yet: no tier 0 arrived."""
    PREVIEW = 1
    """Tier 0 only (every index predicted from the continuous latent), or the receiver's
    instant preview; for a predicted frame, part of its tier 0."""
    PARTIAL = 2
    """Some indices arrived."""
    FULL = 3
    """Every kept index (all of tier 1) arrived; for a predicted frame, all of tier 0."""
    REFINED = 4
    """The withheld indices (tier 2) arrived as well."""


@dataclass
class FrameDecodeState:
    """Receiver-side cache for one frame: decoded indices and each patch's prior."""

    probs: dict[int, np.ndarray | None] = field(default_factory=dict)
    decoded: dict[tuple[int, int, int, int], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict
    )
    bad_entries: int = 0
    shown: bool = False  # a picture of this frame went to the consumer
    # The continuous picture last decoded, and the patches whose tier 0 it had: a later
    # decode from the same tier 0 gives the same picture (indices do not change it).
    # (patches with tier 0, fallback patches)
    continuous_patches: tuple[frozenset[int], frozenset[int]] | None = None
    continuous_picture: np.ndarray | None = None
    # What the best picture last shown was decoded from (``picture_source``).
    best_from: PictureSource | None = None


# The parts of a frame its picture is decoded from: tier-0 patches, fallback patches,
# index entries (parity only rebuilds tier 0) and a predicted frame's moved patches, and
# the stage the picture is labelled with.
PictureSource = tuple[Stage, frozenset, frozenset, frozenset, frozenset]


def picture_source(frame: FrameState) -> PictureSource:
    """What a picture of ``frame`` now would be decoded from: the same source, the same
    picture."""
    return (
        stage_of(frame),
        frozenset(frame.tier0),
        frozenset(frame.fallback),
        frozenset(frame.indices),
        frozenset(frame.motion),
    )


def stage_of(frame: FrameState) -> Stage:
    if frame.reference is not None:
        # A predicted frame: tier 0 alone, and a patch without an entry shows the
        # reference, so any tier-0 packet makes a picture and all of them the whole one.
        if frame.complete:
            return Stage.FULL
        return Stage.PREVIEW if frame.seen.get(PacketType.TIER0) else Stage.NONE
    if not frame.tier0 and not frame.fallback:
        return Stage.NONE
    t1 = frame.expected.get(PacketType.TIER1)
    t2 = frame.expected.get(PacketType.TIER2)
    n1 = len(frame.seen.get(PacketType.TIER1, ()))
    n2 = len(frame.seen.get(PacketType.TIER2, ()))
    all_t0 = len(frame.tier0) == frame.patches
    if all_t0 and t1 is not None and n1 >= t1:
        return Stage.REFINED if t2 is not None and n2 >= t2 else Stage.FULL
    return Stage.PARTIAL if n1 or n2 else Stage.PREVIEW


def tier0_encoded(codec: HybridCodec, frame: FrameState) -> EncodedImage:
    """``frame``'s tier 0 alone as an ``EncodedImage``, without the index priors: what the
    instant preview (``mode="continuous"``) decodes."""
    return EncodedImage(
        frame.height,
        frame.width,
        frame.codebook_size,
        codec.model_id,
        _frame_tier0(codec, frame),
        frame.scale,
        None if frame.reference is not None else _fallback(codec, frame),
        gray=frame.gray,
        reference=frame.reference,
        residual=frame.residual,
    )


def _fallback(codec: HybridCodec, frame: FrameState) -> EncodedImage | None:
    """The fallback that arrived of ``frame`` (None: none did)."""
    if not frame.fallback:
        return None
    scale = frame.fallback_scale
    height, width = frame.height * frame.scale // scale, frame.width * frame.scale // scale
    patches = _tier0_patches(codec, frame.fallback, patch_count(height, width), scale=scale)
    return EncodedImage(height, width, frame.codebook_size, codec.model_id, patches, scale)


def _frame_tier0(codec: HybridCodec, frame: FrameState) -> tuple[EncodedPatch, ...]:
    """``frame``'s patches with the tier 0 that arrived (``_tier0_patches``)."""
    return _tier0_patches(
        codec,
        frame.tier0,
        frame.patches,
        scale=frame.scale,
        motion=frame.motion,
        residual=frame.residual,
    )


def _tier0_patches(
    codec: HybridCodec,
    tier0: dict[int, Tier0Entry],
    patches: int,
    *,
    scale: Scale,
    motion: dict[int, tuple[tuple[int, int], ...]] | None = None,
    residual: bool = False,
) -> tuple[EncodedPatch, ...]:
    # The reassembler drops tier 0 above the ladder (``ReassemblerConfig.rungs``); a frame
    # assembled without that check still decodes, such patches as if their tier 0 were lost.
    # A residual frame's coded patch whose motion entry is missing is shown as lost too: its
    # difference is from the moved reference (``frame_coding.tier0_entries``).
    # A joint entry's patches take their own strings from its split
    # (``codec.joint_strings``); where it does not split, they are shown as lost.
    ladder = codec.continuous.rungs
    moved = motion or {}
    stream = codec.coder_for(scale, residual=residual).continuous
    out = []
    for i in range(patches):
        e = tier0.get(i)
        strings = None if e is None else _strings(stream, e)
        if (
            e is not None
            and strings is not None
            and e.rung < ladder
            and (i in moved or not residual)
        ):
            coded = empty_patch(e.schedule, strings, e.rung)
            out.append(replace(coded, motion=moved.get(i, STILL)))
        else:
            out.append(replace(empty_patch(Schedule.NONE, None), motion=moved.get(i, STILL)))
    return tuple(out)


def _strings(stream: ContinuousCodec, entry: Tier0Entry) -> tuple[bytes, bytes] | None:
    """``entry``'s own (y, z) strings: its own, or its share of a joint entry's."""
    if entry.joint is None:
        return entry.y, entry.z
    split = split_joint(stream, entry.joint)
    return None if split is None else split[entry.joint.patches.index(entry.patch)]


def index_share(codec: HybridCodec, frame: FrameState) -> float:
    """The share of index positions whose entries arrived, over the patches whose tier 0
    did (what ``HybridCodec.auto_mode`` judges a frame by), before any is decoded."""
    tier0 = _frame_tier0(codec, frame)
    patches = [i for i, p in enumerate(tier0) if p.continuous is not None]
    if not patches:
        return 0.0
    have = set(patches)
    held = sum(
        len(group_positions(e.schedule, tier, e.group, e.groups))
        for (tier, patch, _, _), e in frame.indices.items()
        if patch in have
    )
    return min(1.0, held / (TOKENS * len(patches)))


def build_encoded(codec: HybridCodec, frame: FrameState, cache: FrameDecodeState) -> EncodedImage:
    """Assemble everything usable of ``frame`` into an ``EncodedImage`` (CPU-heavy)."""
    patches = list(_frame_tier0(codec, frame))
    tier0 = [i for i, p in enumerate(patches) if p.continuous is not None]
    need = [i for i in tier0 if i not in cache.probs]
    if need and frame.prior_coded:
        y_hat = codec.latents([patches[i] for i in need])
        probs = codec.index_probabilities(y_hat, frame.codebook_size)
        for j, i in enumerate(need):
            cache.probs[i] = probs[j]
    for key, entry in frame.indices.items():
        if key in cache.decoded:
            continue
        tier, patch = key[0], key[1]
        if frame.prior_coded and patch not in cache.probs:
            continue  # its tier 0 has not arrived: the prior is unknown
        try:
            cache.decoded[key] = decode_index_entry(
                entry,
                tier,
                frame.codebook_size,
                cache.probs.get(patch) if frame.prior_coded else None,
            )
        except WireError:
            cache.bad_entries += 1
            cache.decoded[key] = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    for (_, patch, _, _), (pos, values) in cache.decoded.items():
        patches[patch].indices[pos] = values
    return EncodedImage(
        frame.height,
        frame.width,
        frame.codebook_size,
        codec.model_id,
        tuple(patches),
        frame.scale,
        None if frame.reference is not None else _fallback(codec, frame),
        gray=frame.gray,
        reference=frame.reference,
        residual=frame.residual,
    )


def reassemble(codec: HybridCodec, packets: Iterable[bytes]) -> FrameState | None:
    """The state of the frame ``packets`` (unsealed, all of one frame) give a receiver
    (None: none opened it)."""
    r = Reassembler(
        ReassemblerConfig(codec.model_id, max_frame_bytes=1 << 26, rungs=codec.continuous.rungs)
    )
    for p in packets:
        r.receive(p, 0.0)
    return next(iter(r), None)


def whole_picture(
    codec: HybridCodec,
    packets: Iterable[bytes],
    *,
    reference: np.ndarray | None = None,
    steps: int = 1,
) -> np.ndarray:
    """The picture a receiver shows of a frame once every one of its ``packets`` arrived:
    the sender's copy of what it may later predict from."""
    frame = reassemble(codec, packets)
    if frame is None:
        raise ValueError("no packet opens a frame")
    return best_picture(codec, frame, FrameDecodeState(), steps, reference=reference)


def snapshot(frame: FrameState) -> FrameState:
    """A copy of ``frame`` that a worker thread may decode while the event loop keeps
    adding packets to the original."""
    return replace(
        frame,
        tier0=dict(frame.tier0),
        indices=dict(frame.indices),
        fallback=dict(frame.fallback),
        motion=dict(frame.motion),
    )


def continuous_picture(
    codec: HybridCodec,
    frame: FrameState,
    cache: FrameDecodeState,
    tier0: EncodedImage | None = None,
    *,
    reference: np.ndarray | None = None,
) -> np.ndarray:
    """``frame``'s continuous picture (tier 0 up-sampled, no predictor: the instant
    preview), decoded again only when other patches' tier 0 arrived since the last one.
    ``reference``: a predicted frame's reference picture (``HybridCodec.decode``)."""
    patches = (frozenset(frame.tier0) | frozenset(frame.motion), frozenset(frame.fallback))
    if cache.continuous_patches == patches and cache.continuous_picture is not None:
        return cache.continuous_picture.copy()  # each update owns its image
    if tier0 is None:
        tier0 = tier0_encoded(codec, frame)
    cache.continuous_picture = codec.decode(tier0, mode="continuous", reference=reference)
    cache.continuous_patches = patches
    return cache.continuous_picture


def best_is_continuous(codec: HybridCodec, frame: FrameState) -> bool:
    """Whether ``codec``'s ``auto`` mode shows ``frame``'s continuous picture (the instant
    preview) whatever indices it holds: then its best picture is its preview (cheap: no
    decode)."""
    return codec.auto_mode(tier0_encoded(codec, frame), index_share(codec, frame)) == "continuous"


def best_picture(
    codec: HybridCodec,
    frame: FrameState,
    cache: FrameDecodeState,
    steps: int = 1,
    *,
    reference: np.ndarray | None = None,
) -> np.ndarray:
    """The picture ``codec``'s ``auto`` mode shows for what ``frame`` holds, with ``steps``
    predictor passes (CPU-heavy: run it off the event loop); ``reference``: a predicted
    frame's reference picture."""
    tier0 = tier0_encoded(codec, frame)
    if frame.reference is not None or best_is_continuous(codec, frame):
        # The picture ignores the indices: skip their priors and decoding, and the decode
        # itself when the preview had this very tier 0.
        return continuous_picture(codec, frame, cache, tier0, reference=reference)
    enc = build_encoded(codec, frame, cache)
    return codec.decode(enc, mode="auto", steps=steps, reference=reference)
