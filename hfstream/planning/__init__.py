"""Spending one frame's byte budget: each patch's rung, the schedule and tier-0 parity.

``encode_within(codec, image, budget, loss)`` encodes a frame so that its tiers 0 and 1,
tier-0 parity and every packet header fit ``budget`` bytes, choosing what to spend them
on from the expected loss rate (what the receiver reports):

- **Rungs** of the continuous stream (``hfstream.codec.allocation``: the most error
  removed per bit, after the quality floor).
- **Schedule**: how many indices travel in tier 1. The model records how many dB each
  schedule adds over the continuous stream (``index_gain_db`` in its config), and the
  planner counts that gain only for the indices that arrive.
- **Parity** of tier 0: a patch whose tier-0 packet is lost and cannot be rebuilt is shown
  from its neighbours' latents; the planner prices that as the patch's own variance.

Every combination of schedule and parity ratio is tried; for each, the rungs are fitted
to what the schedule's indices and the parity leave, and the combination with the least
expected full-resolution error wins. What is left of the budget goes to tier 2 when it is
sent. ``plan_frame`` is the numpy core, without the codec; tests drive it with made-up
tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from hfstream.codec.allocation import allocate_rungs, floor_rungs
from hfstream.geometry import SCALES
from hfstream.protocol.packetizer import PARITY_OVERHEAD, PacketizerConfig
from hfstream.protocol.wire import OVERHEAD

if TYPE_CHECKING:
    from hfstream.codec.encoded import EncodedImage
    from hfstream.codec.hybrid import HybridCodec, RungTable

SCHEDULES = ("0", "1_16", "1_9", "1_4", "1_2", "1_1")  # sparse to dense
PARITY_RATIOS = (0.0, 0.25, 0.5, 1.0, 2.0, 3.0)
# Tier-0 packing tried: as many patches per packet as fit the MTU, or a few per packet
# (a header each, but parity in smaller steps, and a loss takes fewer patches; the
# packetizer spreads a packet's patches over the frame).
TIER0_PATCHES = (0, 1, 2, 3, 4, 6)
# A tier-0 entry's bytes beyond the rate table's bits/8 for its strings: msgpack framing
# (8 or 9 bytes) and the strings' byte rounding and coder flush (2.6 bytes on average,
# -9 to +9 per patch), measured on validation photos at rungs 0 and 3. With 6 (framing
# alone) a plan could be 190 bytes short and lose a parity packet to the budget.
TIER0_ENTRY_BYTES = 11
# Copies of the fallback tried: without resends a second copy is what keeps it from a
# single loss (an erasure code over one packet is a copy too).
FALLBACK_COPIES = (1, 2)
PARITY_FIELDS = 24  # a parity entry's fields beyond its block (lengths grow with k)
# The smallest index entry on the wire (``frame_coding.index_entries``): a msgpack array
# header, five one-byte integers (patch, schedule, group, groups, check) and a bin of at
# least one byte with its two-byte framing.
INDEX_ENTRY_MIN_BYTES = 1 + 5 + 2 + 1
# What each schedule adds over the continuous stream, in dB of full-resolution PSNR, for
# a model whose config does not say: model a182b405 on 8 training photos
# (``python -m hfstream.eval.index_gain ../shared/data/photos/train``).
DEFAULT_INDEX_GAIN_DB = {
    "0": 0.062,
    "1_16": 0.113,
    "1_9": 0.183,
    "1_4": 0.254,
    "1_2": 0.561,
    "1_1": 1.458,
}


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
class FallbackOption:
    """What sending the frame's fallback would cost and give: its packets' bytes (headers
    and tags included), how many packets, and each patch's error (pixels in [0, 1]) when
    the patch's tier 0 is lost and the fallback's picture shows instead; ``copies`` of it
    (any copy of each packet will do) cost ``copies`` times the bytes."""

    bytes: int
    packets: int
    errors: np.ndarray
    copies: int = 1

    @property
    def total_bytes(self) -> int:
        return self.bytes * self.copies


def tier0_cost(
    string_bytes: float,
    patches: int,
    parity_ratio: float,
    config: PacketizerConfig,
    largest: float | None = None,
) -> tuple[int, int, int, int]:
    """(tier-0 bytes, parity bytes, data packets k, parity packets m) for ``string_bytes``
    of continuous strings in ``patches`` entries, as ``Packetizer`` cuts them (estimate;
    ``Packetizer.tier0_bytes`` gives the exact figure). ``largest``: the largest patch's
    strings."""
    payload = string_bytes + patches * TIER0_ENTRY_BYTES
    room = config.mtu - OVERHEAD - PARITY_OVERHEAD
    k = max(1, math.ceil(payload / room))
    if config.tier0_patches:
        k = max(k, math.ceil(patches / config.tier0_patches))
    t0 = payload + k * OVERHEAD
    if parity_ratio == 0:
        return math.ceil(t0), 0, k, 0
    # A parity packet is as wide as the block's widest data packet: even packets (the
    # packetizer balances them) are off the mean by up to about half the largest entry.
    entry = (largest if largest is not None else payload / patches) + TIER0_ENTRY_BYTES
    width = min(room, payload / k + (entry / 2 if k > 1 else 0))
    if config.tier0_patches:
        width = max(width, min(room, math.ceil(patches / k) * entry))
    m, parity = 0, 0.0
    for start in range(0, k, config.fec_block):
        kb = min(config.fec_block, k - start)
        mb = max(1, math.ceil(kb * parity_ratio))
        m += mb
        parity += mb * (width + PARITY_FIELDS + kb * 2 + OVERHEAD)
    return math.ceil(t0), math.ceil(parity), k, m


# Loss patterns the planner scores each plan on: fixed, so a plan is a function of its
# inputs alone. 256 patterns keep the expected PSNR within about 0.1 dB.
PATTERNS = 256
PATTERN_PACKETS = 1024  # packets per pattern; a frame's tier 0 and parity are far fewer
_UNIFORM = np.random.default_rng(20261123).random((PATTERNS, PATTERN_PACKETS))


@lru_cache(maxsize=64)
def loss_patterns(loss: float, burst: float | None = None) -> np.ndarray:
    """(PATTERNS, PATTERN_PACKETS) bool, True where a packet is lost, in sending order:
    independent losses at rate ``loss``, or with ``burst`` (mean run of consecutive
    losses, in packets) a two-state Gilbert chain of that rate and mean run. Runs of
    1 / (1 - loss) packets are what independent loss gives; shorter ones count as that."""
    if burst is None or burst <= 1.0 / (1.0 - loss) + 1e-9:
        return loss > _UNIFORM
    leave_bad = 1.0 / burst
    enter_bad = loss * leave_bad / (1.0 - loss)
    draws = np.random.default_rng(20261124).random((PATTERNS, PATTERN_PACKETS))
    out = np.empty((PATTERNS, PATTERN_PACKETS), bool)
    bad = _UNIFORM[:, 0] < loss  # the chain's stationary share of bad packets
    for j in range(PATTERN_PACKETS):
        out[:, j] = bad
        bad = np.where(bad, draws[:, j] >= leave_bad, draws[:, j] < enter_bad)
    return out


def frame_outcomes(
    received: np.ndarray,
    lost: np.ndarray,
    packets: int,
    parity_ratio: float,
    fec_block: int,
    loss: float,
    blank: np.ndarray | None = None,
    grid: tuple[int, int] | None = None,
    burst: float | None = None,
    *,
    rounds: int = 1,
    resends: float = math.inf,
    fallback: FallbackOption | None = None,
) -> tuple[float, float]:
    """(expected MSE, expected PSNR in dB) of a frame whose patches (errors ``received``
    when their tier 0 arrives, ``lost`` when not) travel in ``packets`` tier-0 packets,
    patch i in packet i mod ``packets`` (as the packetizer spreads them), protected by
    erasure-code blocks of ``fec_block`` packets with ``ceil(k * parity_ratio)`` parity
    packets each, every packet lost with probability ``loss``. With ``blank`` (the error
    of a patch shown mid-grey), a lost patch none of whose 8 neighbours arrived (``grid``
    rows and columns; without it, when no patch arrived) costs that instead: it has no
    latent to borrow. ``burst``: losses come in runs of that mean length
    (``loss_patterns``), and a run takes parity with the data it protects. ``rounds``
    above 1: a lost tier-0 packet is sent again (the receiver's acknowledgements, or the
    WebRTC tier-0 channel's retransmissions) in up to ``rounds - 1`` more rounds, at most
    ``resends`` packets in all (what the budget leaves), first lost first resent.
    ``fallback``: the fallback's packets (every copy) go after tier 0 and its parity, and
    one lost in every copy is resent like them; where each arrives, a lost patch costs
    the fallback's error instead.

    The mean is over fixed loss patterns. PSNR is what a viewer (and every benchmark)
    averages frame by frame: a plan that risks losing one patch now and then can beat
    one that pays for certainty with every patch's quality, which the mean MSE, ruled by
    the rare frames that lose much, would not allow."""
    n = len(received)
    if loss <= 0:
        mse = float(received.mean())
        return mse, _psnr(mse)
    pattern = loss_patterns(round(loss, 4), None if burst is None else round(burst, 2))
    lost_packet = np.zeros((PATTERNS, packets), bool)
    column = 0
    for start in range(0, packets, fec_block):
        kb = min(fec_block, packets - start)
        mb = max(1, math.ceil(kb * parity_ratio)) if parity_ratio > 0 else 0
        if column + kb + mb > PATTERN_PACKETS:  # beyond any real frame: no coding gain
            mb = 0
        gone = pattern[:, column : column + kb + mb]
        column += kb + mb
        rebuilt = gone.sum(axis=1) <= mb  # MDS: any kb of the kb + mb packets will do
        lost_packet[:, start : start + kb] = gone[:, :kb] & ~rebuilt[:, None]
    extra = 0
    sent = fallback.packets * fallback.copies if fallback is not None else 0
    if fallback is not None and column + sent <= PATTERN_PACKETS:
        extra = fallback.packets
        copies = pattern[:, column : column + sent].reshape(PATTERNS, fallback.copies, extra)
        lost_packet = np.concatenate([lost_packet, copies.all(axis=1)], 1)
        column += sent
    if rounds > 1:
        lost_packet = _resent(lost_packet, pattern, column, rounds, resends)
    patch_lost = lost_packet[:, np.arange(n) % packets]  # (PATTERNS, n)
    errors = np.where(patch_lost, lost[None, :], received[None, :])
    if blank is not None:
        if grid is not None and grid[0] * grid[1] == n:
            arrived_near = (~patch_lost).astype(np.float64) @ _adjacency(*grid)
            alone = patch_lost & (arrived_near == 0)
        else:
            alone = patch_lost & patch_lost.all(axis=1, keepdims=True)
        errors = np.where(alone, blank[None, :], errors)
    if fallback is not None and extra:
        shown = ~lost_packet[:, packets:].any(axis=1, keepdims=True)  # every fallback packet
        errors = np.where(patch_lost & shown, fallback.errors[None, :], errors)
    frame_mse = errors.mean(axis=1)
    psnr = -10.0 * np.log10(np.maximum(frame_mse, 1e-10))
    return float(frame_mse.mean()), float(psnr.mean())


def _resent(
    lost: np.ndarray, pattern: np.ndarray, column: int, rounds: int, resends: float
) -> np.ndarray:
    """``lost`` (PATTERNS, k) after up to ``rounds - 1`` rounds that send each still-lost
    packet again, ``resends`` packets at most per pattern. A resend of packet j in a round
    meets the pattern's column ``column + j`` of that round's k columns: resends in one
    round are consecutive, as bursts see them."""
    k = lost.shape[1]
    used = np.zeros(lost.shape[0])
    for _ in range(rounds - 1):
        if column + k > PATTERN_PACKETS or not lost.any():
            break
        allowed = lost & (used[:, None] + np.cumsum(lost, axis=1) <= resends)
        lost = lost & ~(allowed & ~pattern[:, column : column + k])
        used += allowed.sum(axis=1)
        column += k
    return lost


def _adjacency(rows: int, cols: int) -> np.ndarray:
    """(n, n) 0/1: patches that are 8-neighbours (a patch is not its own)."""
    r, c = np.divmod(np.arange(rows * cols), cols)
    near = (np.abs(r[:, None] - r[None, :]) <= 1) & (np.abs(c[:, None] - c[None, :]) <= 1)
    np.fill_diagonal(near, False)
    return near.astype(np.float64)


def _psnr(mse: float) -> float:
    return -10.0 * math.log10(max(mse, 1e-10))


def plan_frame(
    table: RungTable,
    tier1_bytes: Mapping[str, int],
    budget: float,
    *,
    loss: float = 0.0,
    burst: float | None = None,
    index_gain_db: Mapping[str, float] | None = None,
    schedules: Sequence[str] = SCHEDULES,
    parity_ratios: Sequence[float] = PARITY_RATIOS,
    config: PacketizerConfig | None = None,
    floor_db: float | None = None,
    rounds: int = 1,
    fallback: FallbackOption | None = None,
) -> FramePlan:
    """The plan with the best expected PSNR whose tiers 0 and 1 and parity fit
    ``budget`` bytes (with headers and tags). ``tier1_bytes[s]``: what schedule ``s``'s
    tier-1 packets cost (0 for ``"0"``). ``burst``: the mean run of consecutive losses
    (None: independent losses). When nothing fits, the cheapest plan (every patch
    at rung 0, no indices, no parity) is returned: tier 0 is never left out.

    ``rounds`` above 1: lost tier-0 packets are sent again, in up to ``rounds - 1`` more
    rounds (``frame_outcomes``), from what the budget leaves. No parity is sent then; each
    of ``parity_ratios`` instead sets aside that share of tier 0's size for resends.

    ``fallback``: each plan is also priced with the frame's fallback sent, in 1 or 2
    copies (``FALLBACK_COPIES``; their bytes taken from the budget first), when there is
    loss."""
    if not 0 <= loss < 1:
        raise ValueError(f"Invalid loss rate {loss}, should be in [0, 1)")
    if budget <= 0:
        raise ValueError(f"Invalid budget {budget} bytes, should be positive")
    if rounds < 1:
        raise ValueError(f"Invalid rounds {rounds}, should be at least 1")
    resending = rounds > 1 and loss > 0
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
    best: FramePlan | None = None
    for schedule in schedules:
        t1 = int(tier1_bytes.get(schedule, 0)) if schedule != "0" else 0
        if schedule not in gains or (schedule != "0" and schedule not in tier1_bytes):
            continue
        if schedule != "0" and gains[schedule] <= 0 and "0" in schedules:
            continue  # bytes for no gain: the plan without indices is better
        # Indices count for what arrives: a lost tier-1 packet takes its share of the gain.
        shrink = 10 ** (-gains[schedule] * (1 - loss) / 10)
        fallbacks: list[FallbackOption | None] = [None]
        if fallback is not None and loss > 0:
            fallbacks += [replace(fallback, copies=c) for c in FALLBACK_COPIES]
        candidates = [(r, s, f) for r in parity_ratios for s in TIER0_PATCHES for f in fallbacks]
        for ratio, split, fb in candidates:
            room = budget - t1 - (fb.total_bytes if fb is not None else 0)
            # Small tier-0 packets pay only with parity or resends (a loss takes less).
            if room <= 0 or (split and not ratio and not resending):
                continue
            packing = replace(cfg, tier0_patches=split)
            rungs = _fit_rungs(table, floor, room, ratio, packing)
            if rungs is None:
                continue
            # With resends, the share ``ratio`` of tier 0 set aside goes to resends, or
            # part of it to parity (and resends of what parity cannot rebuild): each is
            # priced.
            sent = [r for r in parity_ratios if r <= ratio] if resending else [ratio]
            for sent_ratio in sent:
                plan = _priced_plan(
                    table,
                    rungs,
                    shrink,
                    schedule,
                    t1,
                    room,
                    sent_ratio,
                    split,
                    packing,
                    loss,
                    burst,
                    rounds if resending else 1,
                    fb,
                )
                if best is None or plan.expected_psnr > best.expected_psnr:
                    best = plan
    if best is None:
        strings = float(table.bits[:, 0].sum()) / 8
        t0, _, _, _ = tier0_cost(strings, n, 0.0, cfg)
        mse, psnr = frame_outcomes(
            table.error[:, 0], table.lost, 1, 0.0, cfg.fec_block, loss, table.blank, table.grid
        )
        best = FramePlan((0,) * n, "0", 0.0, 0, mse, psnr, t0, 0, 0)
    return best


def _priced_plan(
    table: RungTable,
    rungs: np.ndarray,
    shrink: float,
    schedule: str,
    t1: int,
    room: float,
    ratio: float,
    split: int,
    packing: PacketizerConfig,
    loss: float,
    burst: float | None,
    rounds: int,
    fallback: FallbackOption | None = None,
) -> FramePlan:
    """The plan that sends ``rungs`` with parity ``ratio`` (and ``fallback``) and, with
    ``rounds`` above 1, resends from what ``room`` leaves, with its expected outcome."""
    t0, par, k, _ = _tier0_cost_of(table, rungs, ratio, packing)
    spare = max(0, int(room - t0 - par)) if rounds > 1 else 0
    mse, psnr = frame_outcomes(
        table.error[np.arange(table.patches), rungs] * shrink,
        table.lost,
        k,
        ratio,
        packing.fec_block,
        loss,
        table.blank,
        table.grid,
        burst,
        rounds=rounds,
        resends=spare // max(1.0, t0 / k),
        fallback=fallback,
    )
    fb_bytes = fallback.total_bytes if fallback is not None else 0
    copies = fallback.copies if fallback is not None else 0
    rungs_ = tuple(int(r) for r in rungs)
    return FramePlan(
        rungs_, schedule, ratio, split, mse, psnr, t0, par, t1, spare, fb_bytes, copies
    )


def _tier0_cost_of(
    table: RungTable, rungs: np.ndarray, ratio: float, cfg: PacketizerConfig
) -> tuple[int, int, int, int]:
    bits = table.bits[np.arange(table.patches), rungs]
    return tier0_cost(float(bits.sum()) / 8, table.patches, ratio, cfg, float(bits.max()) / 8)


def _fit_rungs(
    table: RungTable, floor: np.ndarray, room: float, ratio: float, cfg: PacketizerConfig
) -> np.ndarray | None:
    """Rungs whose tier 0 with parity ``ratio`` fits ``room`` bytes, None if rung 0 does not."""
    n = table.patches

    def cost(rungs: np.ndarray) -> int:
        t0, par, _, _ = _tier0_cost_of(table, rungs, ratio, cfg)
        return t0 + par

    if cost(np.zeros(n, int)) > room:
        return None
    # The allocation's budget is for strings alone; shrink it until the whole tier fits.
    strings_budget = room / (1 + ratio)
    for _ in range(24):
        rungs = allocate_rungs(
            table.bits, table.error, table.signal, budget_bits=8 * strings_budget, start=floor
        )
        if cost(rungs) <= room:
            return rungs
        strings_budget *= 0.93
    return np.zeros(n, int)


def choose_scale(
    tables: Mapping[int, RungTable], budget: float, **plan_args: object
) -> tuple[int, bool]:
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


@dataclass(frozen=True)
class PlannedFrame:
    encoded: EncodedImage
    priors: np.ndarray | None  #: the index priors of ``encoded`` (None: fixed-length)
    packetizer: PacketizerConfig  #: the parity ratio of the plan
    plan: FramePlan


def schedule_tier1_bytes(
    codec: HybridCodec, enc: EncodedImage, priors: np.ndarray | None, config: PacketizerConfig
) -> dict[str, int]:
    """What each schedule's tier-1 packets would cost for ``enc`` (headers and tags)."""
    from hfstream.codec.frame_coding import index_entries
    from hfstream.codec.schedules import Schedule
    from hfstream.protocol.packetizer import _bins

    out = {}
    for label in SCHEDULES[1:]:
        sched = Schedule.parse(label)
        frame = replace(enc, patches=tuple(replace(p, schedule=sched) for p in enc.patches))
        entries = index_entries(frame, 1, config.index_groups, priors)
        payloads = _bins([e.to_list() for e in entries], config.mtu - OVERHEAD)
        out[label] = sum(len(p) + OVERHEAD for p in payloads)
    return out


def encode_within(
    codec: HybridCodec,
    image: np.ndarray,
    budget: float,
    *,
    loss: float = 0.0,
    burst: float | None = None,
    config: PacketizerConfig | None = None,
    prior_coding: bool = True,
    schedules: Sequence[str] = SCHEDULES,
    parity_ratios: Sequence[float] = PARITY_RATIOS,
    refine_steps: int = 0,
    rounds: int = 1,
    scales: Sequence[int] = SCALES,
) -> PlannedFrame:
    """Encode ``image`` to fit ``budget`` bytes of tiers 0, 1 and parity, planned for
    ``loss`` in runs of ``burst`` packets on average (None: independent; see the module
    doc). ``refine_steps``: the continuous latent's refinement at the planned rungs
    (``HybridCodec.encode``); the plan is made from the unrefined latent, and the
    refined strings are checked against the budget like any others. ``rounds``: lost
    tier-0 packets are sent again in up to ``rounds - 1`` more rounds (``plan_frame``);
    the plan then leaves room for them instead of parity. ``scales``: where the frame's
    tier 0 does not fit the budget at full size even at the lowest rungs, it is coded at
    1/2 of its size, or 1/4 where that does not fit either (``choose_scale``; tier 0
    alone then), when the scale divides both sides. Returns the encoding, its index priors, the
    packetizer settings to send it with and the plan."""
    from hfstream.codec.frame_coding import index_priors
    from hfstream.codec.hybrid import QUALITY_FLOOR_DB, to_uint8_image
    from hfstream.codec.scaling import scalable
    from hfstream.codec.schedules import Schedule

    cfg = config or PacketizerConfig()
    shown = codec.shown_gain_db
    gains = DEFAULT_INDEX_GAIN_DB if shown is None else shown
    if not any(g > 0 for g in gains.values()):
        # The receiver shows the continuous picture whatever indices arrive (auto mode):
        # plan tier 0 alone, send no withheld indices and spare the index priors.
        schedules, prior_coding = ("0",), False
        cfg = replace(cfg, send_withheld=False)
    channel = {"loss": loss, "burst": burst, "rounds": rounds}
    image = to_uint8_image(image)
    order = [1] if 1 in scales else []
    order += sorted(s for s in set(scales) - {1} if scalable(image.shape[0], image.shape[1], s))
    if not order:
        raise ValueError(
            f"no scale in {tuple(scales)} divides a {image.shape[1]}x{image.shape[0]} frame"
        )
    tables: dict[int, RungTable] = {}

    def best_scale() -> tuple[int, bool]:
        return choose_scale(
            tables,
            budget,
            index_gain_db=gains,
            parity_ratios=parity_ratios,
            config=cfg,
            floor_db=QUALITY_FLOOR_DB,
            **channel,
        )

    # A smaller size only where no larger one fits the budget: weighed by expected PSNR
    # against a full-size plan that fits, half size lost where it was taken (0.6 dB
    # under bursty loss, 0.05 at 20 %: docs/benchmarks.md), so the scale is a fallback.
    for candidate in order:
        tables[candidate] = codec.rung_table(image, candidate)
        scale, fits = best_scale() if len(order) > 1 else (candidate, True)
        if fits:
            break
    table = tables[scale]
    if scale != 1:
        # Indices are not planned at a scale: the picture they refine is up-scaled.
        schedules, prior_coding = ("0",), False
        cfg = replace(cfg, send_withheld=False)

    fallback = fallback_option(codec, image, table, scale, cfg) if loss > 0 else None

    def planned(room: float, tier1: Mapping[str, int] | None = None) -> FramePlan:
        return plan_frame(
            table,
            tier1_bytes if tier1 is None else tier1,
            room,
            index_gain_db=gains,
            schedules=schedules,
            parity_ratios=parity_ratios,
            config=cfg,
            floor_db=QUALITY_FLOOR_DB,
            fallback=fallback[0] if fallback is not None else None,
            **channel,  # type: ignore[arg-type]
        )

    if schedules != ("0",):
        # A schedule's plan only loses by dearer indices: when it loses with tier 1 at its
        # floor (``tier1_floor``) it loses at the true price, and the index priors (about
        # 100 ms a frame) need not be run.
        groups = cfg.index_groups
        floor = {s: tier1_floor(s, table.patches, groups) for s in schedules if s != "0"}
        if planned(budget, floor).schedule == "0":
            schedules, prior_coding = ("0",), False
            cfg = replace(cfg, send_withheld=False)
    tier1_bytes: dict[str, int] = {}
    first = priors = None
    if schedules != ("0",):  # tier 1's price needs the indices and their priors first
        start = min(codec.continuous.config.default_rung, table.rungs - 1)
        first = codec.encode(image, "1_1", rungs=[start] * table.patches, scale=scale)
        priors = index_priors(codec, first) if prior_coding else None
        tier1_bytes = schedule_tier1_bytes(codec, first, priors, cfg)

    plan = planned(budget)
    # ``first`` priced tier 1 unrefined: its strings are coded again, refined, below.
    stale = refine_steps > 0
    if first is None:  # tier 0 alone: code it once, at the planned rungs
        first = codec.encode(
            image, "1_1", rungs=list(plan.rungs), refine_steps=refine_steps, scale=scale
        )
        stale = False
    enc = first
    room = budget
    for attempt in range(3):  # the plan estimates; plan again for less if packets overshoot
        if stale or list(plan.rungs) != [p.rung for p in enc.patches]:
            enc = codec.recode_continuous(image, first, plan.rungs, refine_steps)
            stale = False
        over = _actual_bytes(codec, enc, plan, cfg) - budget
        room -= over
        if over <= 0 or room <= 0 or attempt == 2:
            break
        plan = planned(room)
    smaller = tuple(s for s in order if s > scale)
    if over > 0 and smaller:
        # The estimate fitted, the strings do not (a frame at its lowest rungs): the next
        # smaller size.
        return encode_within(
            codec,
            image,
            budget,
            loss=loss,
            burst=burst,
            config=config,
            prior_coding=prior_coding,
            schedules=schedules,
            parity_ratios=parity_ratios,
            refine_steps=refine_steps,
            rounds=rounds,
            scales=smaller,
        )
    if enc is not first:
        priors = index_priors(codec, enc) if prior_coding else None
    sched = Schedule.parse(plan.schedule)
    enc = replace(enc, patches=tuple(replace(p, schedule=sched) for p in enc.patches))
    if plan.fallback_bytes and fallback is not None:
        enc = replace(enc, fallback=fallback[1])
    packing = replace(
        cfg,
        parity_ratio=plan.parity_ratio,
        tier0_patches=plan.tier0_patches,
        fallback_copies=max(1, plan.fallback_copies),
    )
    return PlannedFrame(enc, priors, packing, plan)


def tier1_floor(label: str, patches: int, groups: int) -> int:
    """Fewer bytes than schedule ``label``'s tier 1 can take for ``patches`` patches in
    ``groups`` index groups: one datagram's overhead and, per patch and group that keeps
    an index, the smallest entry msgpack can frame (``INDEX_ENTRY_MIN_BYTES``), whatever
    the prior makes of the indices themselves."""
    from hfstream.codec.frame_coding import group_positions
    from hfstream.codec.schedules import Schedule

    sched = Schedule.parse(label)
    kept = 0
    for g in range(groups):
        kept += int(len(group_positions(sched, 1, g, groups)) > 0)
    return OVERHEAD + INDEX_ENTRY_MIN_BYTES * patches * kept


def _actual_bytes(
    codec: HybridCodec, enc: EncodedImage, plan: FramePlan, cfg: PacketizerConfig
) -> int:
    """Tier 0 and its parity as the packetizer will send them, and tier 1 as planned."""
    from hfstream.codec.frame_coding import tier0_entries
    from hfstream.protocol.packetizer import Packetizer

    packing = replace(cfg, parity_ratio=plan.parity_ratio, tier0_patches=plan.tier0_patches)
    t0, parity = Packetizer(codec.model_id, config=packing).tier0_bytes(tier0_entries(enc))
    return t0 + parity + plan.tier1_bytes + plan.fallback_bytes


def fallback_option(
    codec: HybridCodec, image: np.ndarray, table: RungTable, scale: int, cfg: PacketizerConfig
) -> tuple[FallbackOption, EncodedImage] | None:
    """The fallback of ``image`` coded at 1/``scale`` (``hfstream.codec.fallback``) as the
    planner prices it, and its encoding; None where the frame can have none."""
    from hfstream.codec.fallback import FALLBACK_SCALE, encode_small, patch_errors
    from hfstream.codec.frame_coding import tier0_entries
    from hfstream.codec.scaling import scalable
    from hfstream.protocol.packetizer import fallback_bins
    from hfstream.protocol.wire import FallbackPayload

    if table.grid is None or scale >= FALLBACK_SCALE:
        return None
    if not scalable(*image.shape[:2], FALLBACK_SCALE):
        return None
    small = encode_small(codec, image)
    picture = codec.decode(small, mode="continuous")
    payload = FallbackPayload(FALLBACK_SCALE, tuple(tier0_entries(small)))
    packets = fallback_bins(payload, cfg.mtu - OVERHEAD)
    size = sum(len(p) + OVERHEAD for p in packets)
    errors = patch_errors(image, picture, table.grid, scale)
    return FallbackOption(size, len(packets), errors), small


__all__ = [
    "DEFAULT_INDEX_GAIN_DB",
    "FallbackOption",
    "FramePlan",
    "PlannedFrame",
    "choose_scale",
    "encode_within",
    "plan_frame",
    "schedule_tier1_bytes",
    "tier0_cost",
    "frame_outcomes",
    "loss_patterns",
]
