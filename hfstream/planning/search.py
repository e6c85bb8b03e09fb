"""The search for a frame's plan, on numpy alone: every combination of schedule, tier-0
parity (or resends), tier-0 packing and fallback copies is tried; for each, the rungs are
fitted to what is left of the budget, and the plan with the best expected PSNR
(``outcomes.frame_outcomes``) wins. Tests drive it with made-up rung tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from hfstream.codec.allocation import allocate_rungs, floor_rungs
from hfstream.geometry import Scale
from hfstream.planning.channel import NO_LOSS, Channel
from hfstream.planning.costs import tier0_cost, tier0_cost_at
from hfstream.planning.gains import DEFAULT_INDEX_GAIN_DB, SCHEDULES
from hfstream.planning.outcomes import FallbackOption, PatchErrors, frame_outcomes
from hfstream.protocol.packetizer import PacketizerConfig

if TYPE_CHECKING:
    from hfstream.codec.estimates import RungTable

PARITY_RATIOS = (0.0, 0.25, 0.5, 1.0, 2.0, 3.0)
# Tier-0 packing tried: as many patches per packet as fit the MTU, or a few per packet
# (a header each, but parity in smaller steps, and a loss takes fewer patches; the
# packetizer spreads a packet's patches over the frame).
TIER0_PATCHES = (0, 1, 2, 3, 4, 6)
# Copies of the fallback tried: without resends a second copy is what keeps it from a
# single loss (an erasure code over one packet is a copy too).
FALLBACK_COPIES = (1, 2)


@dataclass(frozen=True)
class FramePlan:
    rungs: tuple[int, ...]  #: each patch's rung
    schedule: str  #: every patch's schedule (label)
    parity_ratio: float  #: tier-0 parity packets per tier-0 packet
    tier0_patches: int  #: most patches per tier-0 packet (0: as many as fit)
    expected_mse: float  #: the planner's estimate of the frame's MSE (pixels in [0, 1])
    expected_psnr: float  #: and of its PSNR, what the planner maximises
    tier0_bytes: int  #: estimated, with headers and tags
    parity_bytes: int
    tier1_bytes: int
    #: with retransmission (``rounds`` > 1): the bytes left for resending lost tier-0
    #: packets (the plan sends no parity then)
    resend_bytes: int = 0
    #: the fallback's packets (``hfstream.codec.fallback``; 0: not sent), with headers,
    #: every copy
    fallback_bytes: int = 0
    fallback_copies: int = 0  #: copies of the fallback sent (0: none)

    @property
    def bytes(self) -> int:
        return self.tier0_bytes + self.parity_bytes + self.tier1_bytes + self.fallback_bytes


@dataclass(frozen=True)
class _Option:
    """One way to spend the budget, before its rungs are priced."""

    schedule: str
    tier1_bytes: int
    #: each patch's error is multiplied by it: what the schedule's arriving indices remove
    shrink: float
    #: what the budget leaves tier 0 after tier 1 and the fallback: for its strings,
    #: parity and resends
    room: float
    parity_ratio: float  #: of the tier-0 parity sent
    packing: PacketizerConfig  #: tier 0's packets (``tier0_patches``, ``fec_block``)
    fallback: FallbackOption | None


def plan_frame(
    table: RungTable,
    tier1_bytes: Mapping[str, int],
    budget: float,
    *,
    channel: Channel = NO_LOSS,
    index_gain_db: Mapping[str, float] | None = None,
    schedules: Sequence[str] = SCHEDULES,
    parity_ratios: Sequence[float] = PARITY_RATIOS,
    config: PacketizerConfig | None = None,
    floor_db: float | None = None,
    fallback: FallbackOption | None = None,
) -> FramePlan:
    """The plan with the best expected PSNR over ``channel`` whose tiers 0 and 1 and
    parity fit ``budget`` bytes (with headers and tags). ``tier1_bytes[s]``: what
    schedule ``s``'s tier-1 packets cost (0 for ``"0"``). When nothing fits, the cheapest
    plan (every patch at rung 0, no indices, no parity) is returned: tier 0 is never
    left out.

    Where ``channel`` resends lost tier-0 packets (``Channel.resending``), they come out
    of what the budget leaves; each of ``parity_ratios`` then sets aside that share of
    tier 0's size for resends, or for parity and resends of what it cannot rebuild.

    ``fallback``: each plan is also priced with the frame's fallback sent, in 1 or 2
    copies (``FALLBACK_COPIES``; their bytes taken from the budget first), when there is
    loss."""
    if budget <= 0:
        raise ValueError(f"Invalid budget {budget} bytes, should be positive")
    cfg = config or PacketizerConfig()
    # The receiver's auto mode shows the continuous picture where indices would lower the
    # quality (``HybridCodec.auto_mode``): a schedule never costs dB, it may add nothing.
    measured = DEFAULT_INDEX_GAIN_DB if index_gain_db is None else index_gain_db
    gains = {s: max(0.0, g) for s, g in measured.items()}
    n = table.patches
    floor = (
        np.zeros(n, int)
        if floor_db is None
        else floor_rungs(table.thumb_error, table.signal, floor_db)
    )
    fallbacks: list[FallbackOption | None] = [None]
    if fallback is not None and channel.loss > 0:
        fallbacks += [replace(fallback, copies=c) for c in FALLBACK_COPIES]
    if channel.loss <= 0 and 0.0 in parity_ratios:
        # Nothing is lost: parity only takes bytes from tier 0, so no plan with it can
        # score higher (a tie keeps the first, which is this one); a frame planned for a
        # clean channel (a live sender's, mostly) skips the 30 fits that would show it.
        parity_ratios = (0.0,)
    best: FramePlan | None = None
    for schedule in schedules:
        t1 = int(tier1_bytes.get(schedule, 0)) if schedule != "0" else 0
        if schedule not in gains or (schedule != "0" and schedule not in tier1_bytes):
            continue
        if schedule != "0" and gains[schedule] <= 0 and "0" in schedules:
            continue  # bytes for no gain: the plan without indices is better
        # Indices count for what arrives: a lost tier-1 packet takes its share of the gain.
        shrink = 10 ** (-gains[schedule] * (1 - channel.loss) / 10)
        candidates = [(r, s, f) for r in parity_ratios for s in TIER0_PATCHES for f in fallbacks]
        for ratio, split, fb in candidates:
            room = budget - t1 - (fb.total_bytes if fb is not None else 0)
            # Small tier-0 packets pay only with parity or resends (a loss takes less).
            if room <= 0 or (split and not ratio and not channel.resending):
                continue
            packing = replace(cfg, tier0_patches=split)
            rungs = _fit_rungs(table, floor, room, parity_ratio=ratio, config=packing)
            if rungs is None:
                continue
            # With resends, the share ``ratio`` of tier 0 set aside goes to resends, or
            # part of it to parity (and resends of what parity cannot rebuild): each is
            # priced.
            sent = [r for r in parity_ratios if r <= ratio] if channel.resending else [ratio]
            for sent_ratio in sent:
                option = _Option(schedule, t1, shrink, room, sent_ratio, packing, fb)
                plan = _priced_plan(table, rungs, option, channel)
                if best is None or plan.expected_psnr > best.expected_psnr:
                    best = plan
    return best if best is not None else _cheapest_plan(table, cfg, channel)


def _patch_errors(table: RungTable, received: np.ndarray) -> PatchErrors:
    return PatchErrors(received, table.lost, table.blank, table.grid)


def _priced_plan(
    table: RungTable, rungs: np.ndarray, option: _Option, channel: Channel
) -> FramePlan:
    """The plan that sends ``rungs`` as ``option`` says, with its expected outcome; with
    resends, what ``option.room`` leaves beside tier 0 and its parity is kept for them."""
    t0, par, k, _ = tier0_cost_at(table, rungs, option.parity_ratio, option.packing)
    spare = max(0, int(option.room - t0 - par + channel.resend_credit)) if channel.resending else 0
    received = table.error[np.arange(table.patches), rungs] * option.shrink
    mse, psnr = frame_outcomes(
        _patch_errors(table, received),
        channel,
        packets=k,
        parity_ratio=option.parity_ratio,
        fec_block=option.packing.fec_block,
        resends=spare // max(1.0, t0 / k),
        fallback=option.fallback,
    )
    fb = option.fallback
    return FramePlan(
        rungs=tuple(int(r) for r in rungs),
        schedule=option.schedule,
        parity_ratio=option.parity_ratio,
        tier0_patches=option.packing.tier0_patches,
        expected_mse=mse,
        expected_psnr=psnr,
        tier0_bytes=t0,
        parity_bytes=par,
        tier1_bytes=option.tier1_bytes,
        resend_bytes=spare,
        fallback_bytes=fb.total_bytes if fb is not None else 0,
        fallback_copies=fb.copies if fb is not None else 0,
    )


def _cheapest_plan(table: RungTable, config: PacketizerConfig, channel: Channel) -> FramePlan:
    """Every patch at rung 0 in as few packets as fit, no indices, no parity: over the
    budget, sent all the same."""
    n = table.patches
    t0, _, _, _ = tier0_cost(float(table.bits[:, 0].sum()) / 8, n, parity_ratio=0.0, config=config)
    # Priced for independent losses and a single send, whatever the channel's bursts and
    # rounds: a rough figure (``choose_scale`` ranks a plan over budget by its bytes).
    mse, psnr = frame_outcomes(
        _patch_errors(table, table.error[:, 0]),
        Channel(loss=channel.loss),
        packets=1,
        parity_ratio=0.0,
        fec_block=config.fec_block,
    )
    return FramePlan((0,) * n, "0", 0.0, 0, mse, psnr, t0, 0, 0)


def _fit_rungs(
    table: RungTable,
    floor: np.ndarray,
    room: float,
    *,
    parity_ratio: float,
    config: PacketizerConfig,
) -> np.ndarray | None:
    """Rungs whose tier 0 with ``parity_ratio`` fits ``room`` bytes, None if rung 0 does
    not."""
    n = table.patches

    def cost(rungs: np.ndarray) -> int:
        t0, par, _, _ = tier0_cost_at(table, rungs, parity_ratio, config)
        return t0 + par

    if cost(np.zeros(n, int)) > room:
        return None
    # The allocation's budget is for strings alone; shrink it until the whole tier fits.
    strings_budget = room / (1 + parity_ratio)
    for _ in range(24):
        rungs = allocate_rungs(
            table.bits, table.error, table.signal, budget_bits=8 * strings_budget, start=floor
        )
        if cost(rungs) <= room:
            return rungs
        strings_budget *= 0.93
    return np.zeros(n, int)


def choose_scale(
    tables: Mapping[Scale, RungTable], budget: float, **plan_args: object
) -> tuple[Scale, bool]:
    """(the scale, whether its plan fits ``budget``): of ``tables`` (the frame's rung
    tables coded at 1/scale of its size), the one whose tier-0 plan (``plan_frame`` with
    ``plan_args``, no indices) is best: one that fits before one that does not, then the
    higher expected PSNR; when none fits, the one that overshoots least."""
    scored = []
    for scale, table in tables.items():
        plan = plan_frame(table, {}, budget, schedules=("0",), **plan_args)  # type: ignore[arg-type]
        fits = plan.bytes <= budget
        scored.append(((fits, plan.expected_psnr if fits else -plan.bytes), -scale, scale))
    (fits, _), _, scale = max(scored)
    return scale, fits
