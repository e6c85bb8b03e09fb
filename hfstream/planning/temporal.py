"""Planning a predicted frame (``hfstream.codec.temporal``): for each patch, reuse the
reference's picture or code it at a rung, at the scale whose plan scores best.

Reusing a patch costs nothing and leaves the error between the frame and the reference
there, which the sender measures exactly. The planner sees it as one more rung below the
ladder (``reuse_table``), so the usual search (``search.plan_frame``) spends the budget
where it removes the most error per byte: on the patches that changed, and, once they
are paid for, on still patches that a higher rung or a finer scale would make better
than the reference shows them. A still scene so converges, frame by frame, towards the
best picture the ladder can give. A lost patch of a predicted frame is shown from the
reference too, so the table's loss error is the reuse error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import msgpack
import numpy as np

from hfstream.codec.frame_coding import tier0_entries
from hfstream.codec.rates import PerPatch
from hfstream.codec.scaling import scalable
from hfstream.geometry import FINE, SCALES, Scale, patch_grid
from hfstream.planning.channel import NO_LOSS, Channel
from hfstream.planning.costs import TIER0_ENTRY_BYTES, entry_bytes
from hfstream.planning.encode import REPLANS, PlannedFrame
from hfstream.planning.search import PARITY_RATIOS, FramePlan, plan_frame
from hfstream.protocol.packetizer import Packetizer, PacketizerConfig, oversized_tier0
from hfstream.protocol.wire import MotionEntry

if TYPE_CHECKING:
    from hfstream.codec.encoded import EncodedImage
    from hfstream.codec.estimates import RungTable
    from hfstream.codec.hybrid import HybridCodec

REUSE = -1  #: a plan's rung for a patch that is reused (not sent)
# A coded patch's error stays in the pictures of the frames predicted from this one; a
# lost patch's stays in this frame alone (a frame not decoded complete is never a
# reference). The planner weighs the error of a loss by this much against the error of
# what it codes, so that it does not buy protection with a worse reference.
LOST_WEIGHT = 0.5


def reuse_table(
    table: RungTable,
    reuse: np.ndarray,
    *,
    still: np.ndarray | None = None,
    moved: np.ndarray | None = None,
    coded_moved: np.ndarray | None = None,
    motion_bytes: np.ndarray | None = None,
    entry: float = TIER0_ENTRY_BYTES,
) -> tuple[RungTable, np.ndarray]:
    """The rung table of a predicted frame and (P, C) the rung each of its columns
    stands for. Column 0 reuses the patch: error ``reuse`` (with its motion), and minus
    the entry framing in bits, since the cost model counts an entry for every patch and
    a reused one sends none, or a motion entry (``motion_bytes`` (P,) each) where
    ``moved`` (P,) bool says it is moved (``entry``: the cost model's bytes an entry,
    ``costs.entry_bytes``); a coded patch sends one too where
    ``coded_moved`` (P,) bool says so (the temporal synthesis and a residual frame read
    it). ``still`` (P,): the error of the
    reference unshifted, what a patch shows when its entry is lost (default ``reuse``),
    counted ``LOST_WEIGHT`` times.
    Columns 1.. are the rungs whose estimated error is below ``reuse``, in order (the
    last column repeated to fill): a rung worse than the reference is never worth its
    bytes, and the allocation steps through the columns one at a time."""
    patches, rungs = table.bits.shape
    if reuse.shape != (patches,):
        raise ValueError(f"reuse errors must be ({patches},), got {reuse.shape}")
    columns = np.full((patches, rungs + 1), REUSE)
    for p in range(patches):
        options = [REUSE] + [r for r in range(rungs) if table.error[p, r] < reuse[p]]
        columns[p] = options + [options[-1]] * (rungs + 1 - len(options))
    rows = np.arange(patches)[:, None]
    at = np.maximum(columns, 0)
    reused = columns == REUSE
    refund = np.full(patches, 8.0 * entry)
    motion_bits = 8.0 * (np.zeros(patches) if motion_bytes is None else motion_bytes)
    if moved is not None:
        refund[moved] -= motion_bits[moved]
    coded_bits = table.bits[rows, at]
    if coded_moved is not None:
        coded_bits = coded_bits + np.where(coded_moved, motion_bits, 0.0)[:, None]
    bits = np.where(reused, -refund[:, None], coded_bits)
    error = np.where(reused, reuse[:, None], table.error[rows, at])
    lost = (reuse if still is None else still).astype(np.float64) * LOST_WEIGHT
    virtual = replace(table, bits=bits, error=error, thumb_error=error, lost=lost, blank=lost)
    return virtual, columns


def encode_predicted(
    codec: HybridCodec,
    image: np.ndarray,
    budget: float,
    *,
    reference: np.ndarray,
    reference_id: int,
    channel: Channel = NO_LOSS,
    config: PacketizerConfig | None = None,
    parity_ratios: Sequence[float] = PARITY_RATIOS,
    scales: Sequence[Scale] = SCALES,
    residual: bool = True,
    fast: bool = False,
    joint_strings: bool | None = None,
) -> PlannedFrame:
    """``image`` coded against ``reference`` (the picture the receiver shows for frame
    ``reference_id``) to fit ``budget`` bytes of tier 0 and parity, planned for
    ``channel``: each patch reused or coded, at the scale of ``scales`` and as pictures
    or, with ``residual``, as differences from the moved reference
    (``codec.temporal.residual_picture``), whichever plan has the best expected PSNR
    (``reuse_table``). Tier 0 alone: a predicted frame sends no indices. The plan's
    rungs say ``REUSE`` for the reused patches.

    ``fast`` (a live sender's): one scale (``FINE`` where allowed), differences alone
    with ``residual``, one motion vector a patch, and the rung table's errors measured at
    ``fast_rungs`` of the ladder only: a fraction of the planning time, for a somewhat
    worse plan (docs/notebook/video.md). ``joint_strings`` (default: unless ``fast``):
    each tier-0 packet codes its patches' strings as one pair
    (``PacketizerConfig.joint_tier0``; the packetizer that sends the frame then needs
    ``Packetizer(joiner=...)``)."""
    from hfstream.codec.frames import to_uint8_image
    from hfstream.codec.motion import motion_picture, search
    from hfstream.codec.temporal import RESIDUAL_GAIN, residual_picture

    image = to_uint8_image(image)
    if reference.shape != image.shape:
        raise ValueError(f"the reference is {reference.shape}, the frame {image.shape}")
    # Joined strings save bytes for CPU (a join on the sender, a split at each end's
    # decode): a live sender, short of time first, sends them plain.
    joint = not fast if joint_strings is None else joint_strings
    cfg = replace(config or PacketizerConfig(), send_withheld=False, joint_tier0=joint)
    best: tuple[tuple[bool, float], _Coding, RungTable, np.ndarray, np.ndarray, FramePlan] | None
    best = None
    tried = _scales_to_try(image, scales)
    synthesised = None
    if fast:
        tried = [FINE] if FINE in tried else tried[:1]
        synthesised = fast_rungs(codec.continuous.rungs)
    height, width = image.shape[:2]
    for scale in tried:
        grid = patch_grid(int(height / scale), int(width / scale))  # of the coded size
        motion, reuse, still = search(image, reference, grid, scale, split=not fast)
        moved = motion.reshape(len(motion), -1).any(axis=1)
        entry_sizes = motion_entry_bytes(motion)
        ways = []
        if not (fast and residual):
            table = codec.rung_table(image, scale, synthesised=synthesised)
            ways.append((image, synthesized(table, codec), False))
        if residual:
            diff = residual_picture(image, motion_picture(reference, motion, grid, scale))
            diffs = codec.residual_coder.rung_table(diff, scale, synthesised=synthesised)
            ways.append((diff, replace(diffs, error=diffs.error * RESIDUAL_GAIN**2), True))
        for source, costs, is_residual in ways:
            # A residual frame's coded patches all send their motion (``tier0_entries``);
            # with a temporal synthesis, the moved ones do.
            sent = np.ones_like(moved) if is_residual else moved
            virtual, columns = reuse_table(
                costs,
                reuse,
                still=still,
                moved=moved,
                coded_moved=sent if is_residual or codec.temporal is not None else None,
                motion_bytes=entry_sizes,
                entry=entry_bytes(cfg),
            )
            plan = _plan(virtual, budget, channel, cfg, parity_ratios)
            fits = plan.bytes <= budget
            score = (fits, plan.expected_psnr if fits else -plan.bytes)
            if best is None or score > best[0]:
                coder = codec.residual_coder if is_residual else codec
                way = _Coding(coder, source, budget, scale, channel, cfg, parity_ratios)
                way = replace(way, residual=is_residual)
                best = (score, way, virtual, columns, motion, plan)
    assert best is not None
    _, coding, virtual, columns, motion, plan = best
    return _code(coding, virtual, columns, motion, reference_id, planned=plan)


#: The scales a live sender codes its predicted frames at: all but ``FINE``, whose frames take
#: about 2.5 times as long to plan, code and decode (768x512 on one thread: 0.64-0.74 s
#: to plan and code a fast predicted frame at full size against 1.37-1.73 s at ``FINE``,
#: 0.16-0.23 s to decode against 0.57-0.65) for 0.4-0.7 dB more: a live stream on a CPU
#: is short of time before it is short of quality (docs/notebook/video.md).
LIVE_SCALES: tuple[Scale, ...] = tuple(s for s in SCALES if s != FINE)
#: The index schedules a live sender plans its intra frames over: tier 0 alone, at the
#: scales of its predicted frames (768x512 at four frames' budgets, one thread: 0.47 s to
#: plan and code and 0.19 s to decode, against 1.5 s and 0.7 s at ``FINE`` and 1.2 s and
#: 0.6 s with indices), so that the first acknowledgement comes within a second.
LIVE_INTRA_SCHEDULES: tuple[str, ...] = ("0",)


def fast_rungs(rungs: int) -> tuple[int, ...]:
    """The rungs whose error a ``fast`` plan measures: the first and the last (the rest
    interpolated, ``ContinuousCodec.ladder_table``). With the middle one too, six frames
    of a 768x512 clip got the same rungs but for three patches, and the same PSNR to
    0.01 dB, for a third more synthesis (docs/notebook/video.md)."""
    return (0, rungs - 1) if rungs > 1 else (0,)


def motion_entry_bytes(motion: np.ndarray) -> np.ndarray:
    """(P,) the bytes of each patch's motion entry on the wire, for ``motion`` (P,
    ``BLOCKS``, 2): one vector or four, each number one to three bytes."""
    from hfstream.codec.motion import as_vectors

    return np.array(
        [len(msgpack.packb(MotionEntry(p, as_vectors(m)).to_list())) for p, m in enumerate(motion)],
        float,
    )


def synthesized(table: RungTable, codec: HybridCodec) -> RungTable:
    """``table`` with its errors lowered by what the codec's temporal synthesis adds to a
    predicted frame's coded patches (``TemporalSynthesis.gain_db``; unchanged without)."""
    synthesis = codec.temporal
    if synthesis is None or not synthesis.gain_db:
        return table
    ratio = 10 ** (-synthesis.gain_db / 10)
    return replace(table, error=table.error * ratio)


def _scales_to_try(image: np.ndarray, scales: Sequence[Scale]) -> list[Scale]:
    """The full size and ``FINE``; the smaller sizes only where neither is allowed (a
    reused patch costs nothing, so a predicted frame always fits at the full size)."""
    h, w = image.shape[:2]
    order = [s for s in (1, FINE) if s in scales]
    order = order or [s for s in (2, 4) if s in scales and scalable(h, w, s)]
    if not order:
        raise ValueError(f"no scale in {tuple(scales)} divides a {w}x{h} frame")
    return order


def _plan(
    virtual: RungTable,
    room: float,
    channel: Channel,
    config: PacketizerConfig,
    parity_ratios: Sequence[float],
) -> FramePlan:
    return plan_frame(
        virtual,
        {},
        room,
        channel=channel,
        index_gain_db={"0": 0.0},
        schedules=("0",),
        parity_ratios=parity_ratios,
        config=config,
    )


@dataclass(frozen=True)
class _Coding:
    """What ``encode_predicted`` codes, at the scale and in the way it chose."""

    codec: HybridCodec
    image: np.ndarray  #: the frame, or its residual picture
    budget: float
    scale: Scale
    channel: Channel
    config: PacketizerConfig
    parity_ratios: Sequence[float]
    residual: bool = False


def _code(
    coding: _Coding,
    virtual: RungTable,
    columns: np.ndarray,
    motion: np.ndarray,
    reference_id: int,
    *,
    planned: FramePlan | None = None,
) -> PlannedFrame:
    """Code the plan, and plan again for less (up to ``REPLANS`` times) where the coded
    strings overshoot the estimate. ``planned``: the plan for the whole budget, where the
    caller has it already (the search is a third of a fast plan's time)."""
    from hfstream.codec.joint_strings import Tier0Joiner
    from hfstream.codec.temporal import predicted

    codec, image, budget, scale = coding.codec, coding.image, coding.budget, coding.scale
    channel, config, parity_ratios = coding.channel, coding.config, coding.parity_ratios
    room = budget
    enc: EncodedImage | None = None
    for attempt in range(REPLANS + 1):
        if attempt == 0 and planned is not None:
            plan = planned
        else:
            plan = _plan(virtual, room, channel, config, parity_ratios)
        rungs = columns[np.arange(len(columns)), np.asarray(plan.rungs)]
        coded = np.maximum(rungs, 0)
        # Only a residual frame and the temporal synthesis read a coded patch's motion:
        # without either, only the reused patches send theirs.
        aligned = coding.residual or codec.temporal is not None
        vectors = motion if aligned else np.where((rungs == REUSE)[:, None, None], motion, 0)
        while True:
            if enc is None:
                full = codec.encode_tier0(image, rate=PerPatch(tuple(coded)), scale=scale)
            else:
                full = codec.recode_continuous(image, enc, tuple(coded))
            enc = full
            reused = set(np.flatnonzero(rungs == REUSE).tolist())
            frame = predicted(
                full, reused, reference=reference_id, motion=vectors, residual=coding.residual
            )
            entries = tier0_entries(frame)
            big = {entries[i].patch for i in oversized_tier0(entries, config.mtu)}
            if not big or all(coded[p] == 0 for p in big):
                break
            coded = np.array([r - 1 if p in big and r > 0 else r for p, r in enumerate(coded)])
        rungs = np.where(rungs == REUSE, REUSE, coded)
        packing = replace(config, parity_ratio=plan.parity_ratio, tier0_patches=plan.tier0_patches)
        packetizer = Packetizer(codec.model_id, config=packing, joiner=Tier0Joiner(codec))
        t0, parity = packetizer.tier0_bytes(
            tier0_entries(frame), predicted=True, residual=coding.residual, scale=coding.scale
        )
        actual = t0 + parity
        over = actual - budget
        room = min(room - over, budget - (actual - plan.bytes))
        if over <= 0 or room <= 0 or attempt == REPLANS:
            break
    final = replace(plan, rungs=tuple(int(r) for r in rungs), tier0_bytes=t0, parity_bytes=parity)
    return PlannedFrame(frame, None, packing, final)
