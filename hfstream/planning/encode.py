"""Encoding a frame to its plan: the rung tables and the fallback measured, the plan made
(``search.plan_frame``), the strings coded at the planned rungs and checked against the
budget as the packetizer will cut them, a smaller coded size tried where the full size
does not fit, and a larger one (``FINE``) where the full size cannot spend it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from hfstream.codec.fallback import FALLBACK_SCALE, encode_small, patch_errors
from hfstream.codec.frame_coding import index_priors, tier0_entries
from hfstream.codec.rates import PerPatch
from hfstream.codec.scaling import scalable
from hfstream.codec.schedules import Schedule
from hfstream.geometry import FINE, SCALES, Scale
from hfstream.planning.channel import NO_LOSS, Channel
from hfstream.planning.costs import schedule_tier1_bytes, tier1_floor
from hfstream.planning.gains import DEFAULT_INDEX_GAIN_DB, SCHEDULES
from hfstream.planning.outcomes import FallbackOption
from hfstream.planning.search import PARITY_RATIOS, FramePlan, choose_scale, plan_frame
from hfstream.protocol.packetizer import (
    Packetizer,
    PacketizerConfig,
    fallback_bins,
    oversized_tier0,
)
from hfstream.protocol.wire import OVERHEAD, FallbackPayload

if TYPE_CHECKING:
    from hfstream.codec.encoded import EncodedImage
    from hfstream.codec.estimates import RungTable
    from hfstream.codec.hybrid import HybridCodec

TIER0_ALONE = ("0",)  # the schedules of a plan without indices
# Plans made again for less, when the coded strings overshoot what the plan estimated.
REPLANS = 2


@dataclass(frozen=True)
class PlannedFrame:
    """A frame encoded to its plan, with what sending it takes."""

    encoded: EncodedImage
    priors: np.ndarray | None  #: the index priors of ``encoded`` (None: fixed-length)
    #: the settings to packetize it with: the plan's parity, tier-0 packing and copies of
    #: the fallback
    packetizer: PacketizerConfig
    plan: FramePlan


@dataclass(frozen=True)
class _Indices:
    """What the frame's indices may be: the schedules the plan may choose from, whether
    their priors are coded, and the packing (``send_withheld``: whether tier 2 goes)."""

    schedules: Sequence[str]
    prior_coding: bool
    config: PacketizerConfig

    @property
    def planned(self) -> bool:
        return self.schedules != TIER0_ALONE

    def tier0_alone(self) -> _Indices:
        """No indices: plan tier 0 alone, send no withheld indices and spare the priors."""
        return _Indices(TIER0_ALONE, False, replace(self.config, send_withheld=False))


@dataclass(frozen=True)
class _Request:
    """What ``encode_within`` was asked, the same at every scale it tries."""

    codec: HybridCodec
    image: np.ndarray  #: uint8 (H, W, 3)
    budget: float
    channel: Channel
    gains: Mapping[str, float]  #: ``index_gain_db``
    parity_ratios: Sequence[float]
    refine_steps: int

    def plan_args(self, config: PacketizerConfig) -> dict[str, Any]:
        """``plan_frame``'s settings, bar the schedules and the fallback."""
        # Imported here: the codec's estimates load torch, planning imports without it.
        from hfstream.codec.estimates import QUALITY_FLOOR_DB

        return {
            "channel": self.channel,
            "index_gain_db": self.gains,
            "parity_ratios": self.parity_ratios,
            "config": config,
            "floor_db": QUALITY_FLOOR_DB,
        }


@dataclass(frozen=True)
class _Coded:
    """The frame coded at one scale, before its schedule and priors are settled."""

    encoded: EncodedImage
    first: EncodedImage  #: the first encoding: ``priors`` are its index priors
    priors: np.ndarray | None
    plan: FramePlan
    indices: _Indices
    fallback: tuple[FallbackOption, EncodedImage] | None
    over: float  #: bytes over the budget, as the packetizer cuts tier 0 (<= 0: fits)


def encode_within(
    codec: HybridCodec,
    image: np.ndarray,
    budget: float,
    *,
    channel: Channel = NO_LOSS,
    config: PacketizerConfig | None = None,
    prior_coding: bool = True,
    schedules: Sequence[str] = SCHEDULES,
    parity_ratios: Sequence[float] = PARITY_RATIOS,
    refine_steps: int = 0,
    scales: Sequence[Scale] = SCALES,
    joint_strings: bool = False,
) -> PlannedFrame:
    """Encode ``image`` to fit ``budget`` bytes of tiers 0, 1 and parity, planned for
    ``channel`` (``plan_frame``). ``refine_steps``: the continuous latent's refinement
    at the planned rungs (``HybridCodec.encode``); the plan is made from the unrefined
    latent, and the refined strings are checked against the budget like any others.
    ``scales``: where the frame's tier 0 does not fit the budget at full size even at
    the lowest rungs, it is coded at 1/2 of its size, or 1/4 where that does not fit
    either (``choose_scale``; tier 0 alone then), when the scale divides both sides;
    where even the full size's top rungs leave the budget unspent, it is also planned at
    ``FINE`` (twice its size, tier 0 alone), and that is taken where its plan scores
    higher. ``joint_strings``: plan for tier-0 packets that code their patches' strings as
    one pair (``PacketizerConfig.joint_tier0``, about 16 bytes a patch less; the
    packetizer that sends the frame then needs ``Packetizer(joiner=...)``); not for a
    ``.hfs`` file, whose patches keep their own strings. Returns the encoding, its index
    priors, the packetizer settings to send it with and the plan."""
    # Imported here: the codec's frames load torch, planning imports without it.
    from hfstream.codec.frames import to_uint8_image

    shown = codec.shown_gain_db
    gains = DEFAULT_INDEX_GAIN_DB if shown is None else shown
    packing = replace(config or PacketizerConfig(), joint_tier0=joint_strings)
    indices = _Indices(schedules, prior_coding, packing)
    if not any(g > 0 for g in gains.values()):
        # The receiver shows the continuous picture whatever indices arrive (auto mode).
        indices = indices.tier0_alone()
    image = to_uint8_image(image)
    request = _Request(codec, image, budget, channel, gains, parity_ratios, refine_steps)
    order = _scales_to_try(image, scales)
    tables: dict[Scale, RungTable] = {}  # measured once, whichever try needs them
    fine = FINE in scales
    while True:
        scale = _first_fitting_scale(request, order, tables, indices.config)
        if fine and scale == 1 and _room_above(tables[1], budget):
            tables[FINE] = codec.rung_table(image, FINE)
            if _fine_pays(request, tables, indices):
                scale = FINE
        fine = False  # tried once: a FINE frame that overshoots goes to the full size
        # Indices are not planned at a scale: the picture they refine is up-scaled.
        at_scale = indices if scale == 1 else indices.tier0_alone()
        coded = _code_at(request, scale, tables[scale], at_scale)
        smaller = tuple(s for s in order if s > scale)
        if coded.over <= 0 or not smaller:
            return _settled(codec, coded)
        # The estimate fitted, the strings do not (a frame at its lowest rungs): the next
        # smaller size.
        order = smaller


def _scales_to_try(image: np.ndarray, scales: Sequence[Scale]) -> tuple[Scale, ...]:
    """Full size first (when in ``scales``), then the smaller sizes that divide the frame
    (``FINE`` is tried beside the full size, in ``encode_within``)."""
    order: list[Scale] = [1] if 1 in scales else []
    order += sorted(s for s in set(scales) - {1, FINE} if scalable(*image.shape[:2], s))
    if not order:
        raise ValueError(
            f"no scale in {tuple(scales)} divides a {image.shape[1]}x{image.shape[0]} frame"
        )
    return tuple(order)


def _fine_pays(request: _Request, tables: Mapping[Scale, RungTable], indices: _Indices) -> bool:
    """Whether the frame's ``FINE`` plan fits and beats the full size's tier 0 by more
    than the best index schedule could add to it (a FINE frame has no indices)."""
    args = request.plan_args(indices.config)
    fine, full = (
        plan_frame(tables[s], {}, request.budget, schedules=TIER0_ALONE, **args) for s in (FINE, 1)
    )
    gains = [request.gains.get(s, 0.0) for s in indices.schedules] if indices.planned else []
    return fine.bytes <= request.budget and (
        fine.expected_psnr > full.expected_psnr + max(gains, default=0.0)
    )


def _room_above(table: RungTable, budget: float) -> bool:
    """Whether every patch at the ladder's top rung still leaves part of ``budget``."""
    return float(table.bits[:, -1].sum()) / 8 < budget


def _first_fitting_scale(
    request: _Request,
    order: tuple[Scale, ...],
    tables: dict[Scale, RungTable],
    config: PacketizerConfig,
) -> Scale:
    """The scale to code at: the sizes of ``order`` are measured (into ``tables``) one by
    one until ``choose_scale`` finds a tier-0 plan that fits among them. A smaller size
    is only a fallback: taken wherever its plan scored higher it lost more than it saved
    (docs/notebook/rate-and-planner.md, "Frames coded below their size")."""
    scale = order[0]
    for i, candidate in enumerate(order):
        if candidate not in tables:
            tables[candidate] = request.codec.rung_table(request.image, candidate)
        if len(order) == 1:
            break
        tried = {s: tables[s] for s in order[: i + 1]}
        scale, fits = choose_scale(tried, request.budget, **request.plan_args(config))
        if fits:
            break
    return scale


def _code_at(request: _Request, scale: Scale, table: RungTable, indices: _Indices) -> _Coded:
    """Plan the frame at 1/``scale`` of its size, code it, and plan again for less (up to
    ``REPLANS`` times) where the coded strings overshoot the estimate."""
    codec, image, budget = request.codec, request.image, request.budget
    fallback = None
    if request.channel.loss > 0:
        fallback = fallback_option(codec, image, table, scale=scale, config=indices.config)

    def planned(room: float, tier1: Mapping[str, int]) -> FramePlan:
        return plan_frame(
            table,
            tier1,
            room,
            schedules=indices.schedules,
            fallback=fallback[0] if fallback is not None else None,
            **request.plan_args(indices.config),
        )

    if indices.planned:
        # A schedule's plan only loses by dearer indices: when it loses with tier 1 at its
        # floor (``tier1_floor``) it loses at the true price, and the index priors need
        # not be run (their time: docs/notebook/speed.md).
        groups = indices.config.index_groups
        floor = {s: tier1_floor(s, table.patches, groups) for s in indices.schedules if s != "0"}
        if planned(budget, floor).schedule == "0":
            indices = indices.tier0_alone()
    tier1_bytes: dict[str, int] = {}
    first = priors = None
    if indices.planned:  # tier 1's price needs the indices and their priors first
        start = min(codec.continuous.config.default_rung, table.rungs - 1)
        first = codec.encode(image, "1_1", rate=PerPatch((start,) * table.patches), scale=scale)
        priors = index_priors(codec, first) if indices.prior_coding else None
        tier1_bytes = schedule_tier1_bytes(codec, first, priors, indices.config)

    plan = planned(budget, tier1_bytes)
    # ``first`` priced tier 1 unrefined: its strings are coded again, refined, below.
    stale = request.refine_steps > 0
    if first is None:  # tier 0 alone: code it once, at the planned rungs
        first = codec.encode(
            image, "1_1", rate=PerPatch(plan.rungs), refine_steps=request.refine_steps, scale=scale
        )
        stale = False
    enc = first
    room = budget
    for attempt in range(REPLANS + 1):
        if stale or list(plan.rungs) != [p.rung for p in enc.patches]:
            enc = codec.recode_continuous(image, first, plan.rungs, request.refine_steps)
            stale = False
        enc, plan = _within_packets(request, first, enc, plan, indices.config)
        actual = _actual_bytes(codec, enc, plan, indices.config)
        over = actual - budget
        # Plan again with the estimate's error taken off the budget: taking off only
        # what overshot leaves a plan whose estimate fitted before as it was.
        room = min(room - over, budget - (actual - plan.bytes))
        if over <= 0 or room <= 0 or attempt == REPLANS:
            break
        plan = planned(room, tier1_bytes)
    return _Coded(enc, first, priors, plan, indices, fallback, over)


def _within_packets(
    request: _Request,
    first: EncodedImage,
    enc: EncodedImage,
    plan: FramePlan,
    config: PacketizerConfig,
) -> tuple[EncodedImage, FramePlan]:
    """``enc`` and ``plan`` with every patch whose tier-0 entry would not fit one packet
    taken down a rung at a time until it does (at rung 0 the packetizer says so)."""
    while big := oversized_tier0(tier0_entries(enc), config.mtu):
        rungs = tuple(r - 1 if i in big and r > 0 else r for i, r in enumerate(plan.rungs))
        if rungs == tuple(plan.rungs):
            break
        plan = replace(plan, rungs=rungs)
        enc = request.codec.recode_continuous(request.image, first, rungs, request.refine_steps)
    return enc, plan


def _settled(codec: HybridCodec, coded: _Coded) -> PlannedFrame:
    """``coded`` with every patch at the planned schedule, its index priors, the fallback
    where the plan sends it, and the packing the plan chose."""
    enc, priors, plan, indices = coded.encoded, coded.priors, coded.plan, coded.indices
    if enc is not coded.first:
        priors = index_priors(codec, enc) if indices.prior_coding else None
    sched = Schedule.parse(plan.schedule)
    enc = replace(enc, patches=tuple(replace(p, schedule=sched) for p in enc.patches))
    if plan.fallback_bytes and coded.fallback is not None:
        enc = replace(enc, fallback=coded.fallback[1])
    packing = replace(
        indices.config,
        parity_ratio=plan.parity_ratio,
        tier0_patches=plan.tier0_patches,
        fallback_copies=max(1, plan.fallback_copies),
    )
    return PlannedFrame(enc, priors, packing, plan)


def _actual_bytes(
    codec: HybridCodec, enc: EncodedImage, plan: FramePlan, config: PacketizerConfig
) -> int:
    """Tier 0 and its parity as the packetizer will send them, and tier 1 as planned."""
    from hfstream.codec.joint_strings import Tier0Joiner

    packing = replace(config, parity_ratio=plan.parity_ratio, tier0_patches=plan.tier0_patches)
    packetizer = Packetizer(codec.model_id, config=packing, joiner=Tier0Joiner(codec))
    t0, parity = packetizer.tier0_bytes(tier0_entries(enc), scale=enc.scale)
    return t0 + parity + plan.tier1_bytes + plan.fallback_bytes


def fallback_option(
    codec: HybridCodec,
    image: np.ndarray,
    table: RungTable,
    *,
    scale: Scale,
    config: PacketizerConfig,
) -> tuple[FallbackOption, EncodedImage] | None:
    """The fallback of ``image`` coded at 1/``scale`` (``hfstream.codec.fallback``) as the
    planner prices it, and its encoding; None where the frame can have none."""
    if table.grid is None or scale >= FALLBACK_SCALE:
        return None
    if not scalable(*image.shape[:2], FALLBACK_SCALE):
        return None
    small = encode_small(codec, image)
    picture = codec.decode(small, mode="continuous")
    payload = FallbackPayload(FALLBACK_SCALE, tuple(tier0_entries(small)))
    packets = fallback_bins(payload, config.mtu - OVERHEAD)
    size = sum(len(p) + OVERHEAD for p in packets)
    errors = patch_errors(image, picture, table.grid, scale)
    return FallbackOption(size, len(packets), errors), small
