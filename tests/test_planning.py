"""The frame planner: rungs, schedule and tier-0 parity from a budget and a loss rate."""

from __future__ import annotations

import numpy as np
import pytest

from hfstream.codec.estimates import RungTable
from hfstream.codec.rates import PerPatch
from hfstream.planning import (
    Channel,
    FramePlan,
    PatchErrors,
    frame_outcomes,
    plan_frame,
    tier0_cost,
)
from hfstream.protocol.packetizer import PacketizerConfig

TIER1 = {"1_16": 120, "1_9": 260, "1_4": 420, "1_2": 800, "1_1": 1500}


def table(patches: int = 6, rungs: int = 4) -> RungTable:
    """Each rung costs more and leaves less error; patch i is (i+1) times as busy."""
    busy = np.arange(1, patches + 1, dtype=float)[:, None]
    bits = busy * (800.0 * 1.4 ** np.arange(rungs))[None, :]
    thumb = busy * (4e-3 * 0.7 ** np.arange(rungs))[None, :]
    return RungTable(
        bits=bits,
        error=thumb + 1e-3,
        signal=busy[:, 0] * 0.05,
        thumb_error=thumb,
        lost=busy[:, 0] * 0.06,
    )


def test_frame_outcomes_over_fixed_loss_patterns():
    received, lost = np.full(6, 1e-3), np.full(6, 0.05)
    errors = PatchErrors(received, lost)
    assert frame_outcomes(errors, Channel(loss=0.0), packets=3, parity_ratio=0.0, fec_block=16) == (
        pytest.approx(1e-3),
        pytest.approx(30),
    )
    # One packet, no parity: about half the patterns lose every patch.
    mse, _ = frame_outcomes(errors, Channel(loss=0.5), packets=1, parity_ratio=0.0, fec_block=16)
    assert mse == pytest.approx(0.5 * 1e-3 + 0.5 * 0.05, rel=0.15)
    # More parity, fewer frames with a lost patch; the same patterns every call.
    psnrs = [
        frame_outcomes(errors, Channel(loss=0.3), packets=3, parity_ratio=r, fec_block=16)[1]
        for r in (0.0, 0.5, 1.0, 2.0)
    ]
    assert all(a < b for a, b in zip(psnrs, psnrs[1:], strict=False))
    assert frame_outcomes(
        errors, Channel(loss=0.3), packets=3, parity_ratio=1.0, fec_block=16
    ) == frame_outcomes(errors, Channel(loss=0.3), packets=3, parity_ratio=1.0, fec_block=16)


def test_tier0_cost_counts_packets_and_parity():
    cfg = PacketizerConfig(mtu=1200)
    t0, parity, k, m = tier0_cost(2500.0, 6, parity_ratio=0.0, config=cfg)
    assert (k, m, parity) == (3, 0, 0) and t0 > 2500
    _, parity, k, m = tier0_cost(2500.0, 6, parity_ratio=1.0, config=cfg)
    assert (k, m) == (3, 3) and parity > 2500


def plan_bytes_fit(plan: FramePlan, budget: float) -> bool:
    return plan.bytes <= budget


def test_a_clean_channel_spends_the_budget_without_parity():
    t = table()
    small = plan_frame(t, TIER1, 2500)
    big = plan_frame(t, TIER1, 7000)
    for plan, budget in ((small, 2500), (big, 7000)):
        assert plan.parity_ratio == 0 and plan_bytes_fit(plan, budget)
    assert big.expected_mse < small.expected_mse
    assert sum(big.rungs) > sum(small.rungs) or big.tier1_bytes > small.tier1_bytes
    assert big.bytes > 0.9 * 7000  # the budget is used, not left idle


def test_loss_buys_parity_and_a_lower_rung():
    t = table()
    clean = plan_frame(t, TIER1, 6000)
    lossy = plan_frame(t, TIER1, 6000, channel=Channel(loss=0.4))
    assert clean.parity_ratio == 0 and lossy.parity_ratio > 0
    assert lossy.parity_bytes > 0 and plan_bytes_fit(lossy, 6000)
    assert sum(lossy.rungs) <= sum(clean.rungs)
    assert lossy.expected_mse > clean.expected_mse


def test_index_gain_decides_the_schedule():
    t = table()
    none = plan_frame(t, TIER1, 8000, index_gain_db={"0": 0.0, "1_4": 0.0, "1_1": 0.0})
    assert none.schedule == "0"  # indices that add nothing get no bytes
    rich = plan_frame(t, TIER1, 8000, index_gain_db={"0": 0.0, "1_1": 6.0})
    assert rich.schedule == "1_1"


def test_a_budget_below_rung_zero_gives_the_cheapest_plan():
    plan = plan_frame(table(), TIER1, 100, channel=Channel(loss=0.3))
    assert plan.rungs == (0,) * 6 and plan.schedule == "0" and plan.parity_ratio == 0
    assert plan.bytes > 100  # tier 0 is never left out; the caller says "over budget"


def test_the_floor_raises_patches_that_would_lose_their_subject():
    t = table()
    dark = RungTable(t.bits, t.error, t.signal * 0.02, t.thumb_error, t.lost)
    plain = plan_frame(dark, TIER1, 20_000, schedules=("0",))
    floored = plan_frame(dark, TIER1, 20_000, schedules=("0",), floor_db=3.0)
    assert sum(floored.rungs) >= sum(plain.rungs)


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError, match="loss rate"):
        plan_frame(table(), TIER1, 5000, channel=Channel(loss=1.0))
    with pytest.raises(ValueError, match="budget"):
        plan_frame(table(), TIER1, 0)


def test_tier0_patches_sets_how_many_patches_share_a_packet():
    from hfstream.protocol.packetizer import FrameEntries, Packetizer
    from hfstream.protocol.schedules import Schedule
    from hfstream.protocol.wire import Tier0Entry

    entries = [Tier0Entry(i, Schedule.QUARTER, bytes(150), bytes(20), 1) for i in range(4)]
    frame = FrameEntries(height=512, width=512, codebook_size=1024, prior_coded=True, tier0=entries)
    packed = Packetizer(1, config=PacketizerConfig(parity_ratio=0.5)).packetize(frame, frame_id=0)
    single = Packetizer(1, config=PacketizerConfig(parity_ratio=0.5, tier0_patches=1)).packetize(
        frame, frame_id=0
    )
    assert (len(packed.tier0), len(packed.parity)) == (1, 1)
    assert (len(single.tier0), len(single.parity)) == (4, 2)
    assert max(map(len, single.parity)) < max(map(len, packed.parity))  # parity in small steps


def test_patches_sharing_a_tier0_packet_are_spread_over_the_frame():
    from hfstream.protocol.packetizer import FrameEntries, Packetizer
    from hfstream.protocol.schedules import Schedule
    from hfstream.protocol.wire import Tier0Entry, parse_header, parse_tier0

    entries = [Tier0Entry(i, Schedule.QUARTER, bytes(100), bytes(20), 1) for i in range(12)]
    frame = FrameEntries(
        height=768, width=1024, codebook_size=1024, prior_coded=True, tier0=entries
    )
    cfg = PacketizerConfig(parity_ratio=0.5, tier0_patches=3)
    packets = Packetizer(1, config=cfg).packetize(frame, frame_id=0).tier0
    groups = [[e.patch for e in parse_tier0(parse_header(p)[1], 12)] for p in packets]
    assert groups == [[0, 4, 8], [1, 5, 9], [2, 6, 10], [3, 7, 11]]


def test_a_lost_patch_costs_its_distance_from_the_neighbours_colour():
    from hfstream.codec.estimates import borrowed_error

    patches = np.full((4, 256, 256, 3), 100, np.uint8)  # 2x2 patches, flat
    patches[3] = 200  # one unlike its neighbours
    err = borrowed_error(patches, 2, 2)
    assert err[3] == pytest.approx((100 / 255) ** 2)
    assert err[0] == pytest.approx((100 / 3 / 255) ** 2)  # one of three neighbours differs
    single = borrowed_error(patches[:1], 1, 1)  # no neighbour: shown mid-grey
    assert single[0] == pytest.approx((100 / 255 - 0.5) ** 2)


def test_a_patch_with_no_neighbour_left_costs_a_blank_patch():
    received, lost, blank = np.full(4, 1e-3), np.full(4, 0.01), np.full(4, 0.2)
    errors = PatchErrors(received, lost)
    # One packet holds every patch: when it is lost nothing is left to borrow from.
    plain = frame_outcomes(errors, Channel(loss=0.5), packets=1, parity_ratio=0.0, fec_block=16)
    blanked = frame_outcomes(
        PatchErrors(received, lost, blank),
        Channel(loss=0.5),
        packets=1,
        parity_ratio=0.0,
        fec_block=16,
    )
    assert blanked[0] > 5 * plain[0] and blanked[1] < plain[1]
    # Four packets, one patch each: without the grid only a frame that lost all four
    # shows blank patches; in a row of four, a lost patch whose one or two neighbours
    # were lost too is blank as well.
    any_left = frame_outcomes(
        PatchErrors(received, lost, blank),
        Channel(loss=0.5),
        packets=4,
        parity_ratio=0.0,
        fec_block=16,
    )
    in_a_row = frame_outcomes(
        PatchErrors(received, lost, blank, (1, 4)),
        Channel(loss=0.5),
        packets=4,
        parity_ratio=0.0,
        fec_block=16,
    )
    assert plain[0] < any_left[0] < in_a_row[0]


def test_bursts_take_parity_with_the_data():
    from hfstream.planning import loss_patterns

    independent = loss_patterns(0.3)
    bursty = loss_patterns(0.3, 4.0)
    for pattern, run in ((independent, 1 / 0.7), (bursty, 4.0)):
        starts = (pattern[:, 1:] & ~pattern[:, :-1]).sum()
        assert pattern.mean() == pytest.approx(0.3, abs=0.01)
        assert pattern.sum() / starts == pytest.approx(run, rel=0.08)
    received, lost = np.full(6, 1e-3), np.full(6, 0.02)
    errors = PatchErrors(received, lost)

    def gain(burst):
        base = frame_outcomes(
            errors, Channel(loss=0.3, burst=burst), packets=6, parity_ratio=0.0, fec_block=16
        )[1]
        return (
            frame_outcomes(
                errors, Channel(loss=0.3, burst=burst), packets=6, parity_ratio=1.0, fec_block=16
            )[1]
            - base
        )

    assert 0 < gain(4.0) < gain(None)


def test_the_tier0_estimate_is_not_short_of_what_is_sent(codec):
    """The planner prices tier 0 from the rate table; the packetizer sends real strings.
    Short estimates made plans that the budget then cut a parity packet from."""
    from conftest import bundled_image

    from hfstream.codec.frame_coding import tier0_entries
    from hfstream.planning import tier0_cost_at
    from hfstream.protocol.packetizer import Packetizer

    image = bundled_image()[:512, :512]
    table = codec.rung_table(image)
    for rung in (0, table.rungs - 1):
        rungs = np.full(table.patches, rung)
        enc = codec.encode(image, "1_4", rate=PerPatch(rungs))
        sent, _ = Packetizer(codec.model_id).tier0_bytes(tier0_entries(enc))
        estimate, _, _, _ = tier0_cost_at(table, rungs, 0.0, PacketizerConfig())
        assert estimate >= 0.98 * sent, (rung, estimate, sent)
        assert estimate <= 1.05 * sent, (rung, estimate, sent)


def test_resent_tier0_packets_are_lost_only_when_every_send_is():
    received, lost = np.full(6, 1e-3), np.full(6, 0.05)
    errors = PatchErrors(received, lost)
    once = frame_outcomes(errors, Channel(loss=0.4), packets=6, parity_ratio=0.0, fec_block=16)[0]
    # No budget for resends: the same as sending once.
    assert (
        frame_outcomes(
            errors,
            Channel(loss=0.4, rounds=4),
            packets=6,
            parity_ratio=0.0,
            fec_block=16,
            resends=0,
        )[0]
        == once
    )
    # Four sends: a packet is lost in about 0.4 ** 4 of the patterns.
    four = frame_outcomes(
        errors, Channel(loss=0.4, rounds=4), packets=6, parity_ratio=0.0, fec_block=16
    )[0]
    assert four - 1e-3 == pytest.approx(0.4**4 * (0.05 - 1e-3), rel=0.3)
    # A budget for two resends lies between.
    two = frame_outcomes(
        errors, Channel(loss=0.4, rounds=4), packets=6, parity_ratio=0.0, fec_block=16, resends=2
    )[0]
    assert four < two < once


def test_with_resends_the_plan_keeps_room_for_them_instead_of_parity():
    t = table()
    fec = plan_frame(t, TIER1, 6000, channel=Channel(loss=0.4))
    arq = plan_frame(t, TIER1, 6000, channel=Channel(loss=0.4, rounds=4))
    assert arq.parity_ratio == 0 and arq.parity_bytes == 0
    assert arq.resend_bytes > 0 and arq.bytes + arq.resend_bytes <= 6000
    assert arq.expected_psnr > fec.expected_psnr  # resends cost only when a packet is lost
    clean = plan_frame(
        t, TIER1, 6000, channel=Channel(rounds=4)
    )  # nothing is lost: nothing set aside
    assert clean == plan_frame(t, TIER1, 6000) and clean.resend_bytes == 0
    with pytest.raises(ValueError, match="rounds"):
        plan_frame(t, TIER1, 6000, channel=Channel(rounds=0))


def test_a_resend_credit_lets_the_plan_spend_its_room_on_tier0():
    t = table()
    kept = plan_frame(t, TIER1, 6000, channel=Channel(loss=0.2, rounds=2))
    credited = plan_frame(t, TIER1, 6000, channel=Channel(loss=0.2, rounds=2, resend_credit=6000))
    # Resends paid for later: the plan keeps less of the frame's budget idle for them.
    assert credited.bytes > kept.bytes and credited.bytes <= 6000
    assert credited.expected_psnr > kept.expected_psnr
    with pytest.raises(ValueError, match="resend credit"):
        Channel(resend_credit=-1)
