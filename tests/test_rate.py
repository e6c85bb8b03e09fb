"""Feedback reports and the rate controller."""

import asyncio

import pytest

from hfstream.media.video import pattern_frames
from hfstream.planning import Channel, encode_within
from hfstream.planning.frame_budgets import KEY_SHARE
from hfstream.protocol.feedback import RateController, Report, ReportBuilder
from hfstream.protocol.wire import WireError, parse_header
from hfstream.stream.coding import PlannedCoding
from hfstream.stream.collect import collect_frames
from hfstream.stream.receiver import Receiver, ReceiverConfig
from hfstream.stream.sender import Sender, SenderConfig
from hfstream.transports.memory import memory_pair


def test_report_round_trip_and_loss():
    r = Report(0.25, (10, 8, 4), (10, 6, 1), 2, 9000)
    h, payload = parse_header(r.to_packet(7, 0, 3), model_id=7)
    back = Report.from_payload(payload)
    assert back == r and h.frame_id == 3
    assert back.loss == (0.0, 0.25, 0.75) and back.throughput == 36000


def test_forged_reports_are_refused():
    from hfstream.protocol.wire import pack_payload

    for bad in (
        [1, 2, 3],
        [250, [1, 2], [1, 2, 3], 0, 0],
        [250, [1, 2, 3], [1, 2, 3], -1, 0],
        [True, [0] * 3, [0] * 3, 0, 0],
    ):
        with pytest.raises(WireError):
            Report.from_payload(pack_payload(bad))


def test_report_builder_intervals():
    b = ReportBuilder(started=1.0)
    assert b.report(1.5) is None
    b.frame_done((4, 4, 4), (4, 3, 5))
    b.bytes = 1000
    r = b.report(2.0)
    assert r.expected == (4, 4, 4) and r.received == (4, 3, 4) and r.interval_s == 1.0
    assert b.report(2.5) is None


def test_controller_tracks_rate_and_loss():
    c = RateController(10_000, fps=10)  # 1000 B per frame
    assert c.frame_budget == 1000 and c.loss == 0
    c.on_report(Report(1.0, (10, 10, 10), (10, 5, 5), 0, 6000))  # heavy loss, 6 kB/s got through
    assert c.rate == pytest.approx(5400)
    assert c.loss == pytest.approx(1 / 3)  # the first report sets the estimate
    c.on_report(Report(1.0, (10, 10, 10), (10, 10, 10), 0, 10_000))
    assert 0 < c.loss < 1 / 3  # later ones move it
    for _ in range(20):
        c.on_report(Report(1.0, (10, 10, 10), (10, 10, 10), 0, 10_000))
    assert c.rate == 10_000 and c.loss < 0.01


@pytest.mark.slow  # 60 frames through the real codec
def test_sender_stays_within_its_target_rate(codec):
    """30 frames at 10 fps with a budget below what every tier would need. Measured per
    frame (bytes queued against the budget), not against the wall clock."""
    frames = list(pattern_frames(30, 256, 256))
    target, fps = 10_000.0, 10.0

    async def main():
        tx, rx = memory_pair()
        cfg = SenderConfig(coding=PlannedCoding(target, fps=fps), rate_bytes_per_s=target)
        sender = Sender(tx, codec, cfg)
        receiver = Receiver(rx, codec, ReceiverConfig(max_frames=32, feedback_interval_s=0.2))
        async with receiver:
            collector = asyncio.create_task(collect_frames(receiver, 30, idle_timeout_s=20))
            sent = await sender.send_frames(frames, fps=fps)
            await sender.flush()
            await collector
        await sender.close()
        return sender, sent

    sender, sent = asyncio.run(main())
    budget = target / fps
    per_frame = [sum(s.bytes.values()) for s in sent]
    assert sender.reports, "the receiver's reports reached the sender"
    # Within the rate over the clip: an intra frame may borrow KEY_SHARE - 1 frames'
    # budgets, which the frames after it repay, and a frame may spend what the frames
    # before it left (``FrameBudgets``).
    assert max(per_frame) <= KEY_SHARE * budget
    for n in range(1, len(per_frame) + 1):
        assert sum(per_frame[:n]) <= (n + KEY_SHARE - 1) * budget
    assert sum(per_frame) <= len(per_frame) * budget * 1.02
    assert sum(per_frame) / len(per_frame) > 0.5 * budget


@pytest.mark.slow
def test_tight_budget_cuts_tier1_and_parity_not_tier0(codec):
    """800 bytes a frame is less than tier 0, its parity packet and tier 1 of two patches:
    the sender cuts tier 1 and parity so every frame stays within it (tier 0 is whole)."""
    frames = list(pattern_frames(8, 256, 384))
    target, fps = 8_000.0, 10.0

    async def main():
        tx, rx = memory_pair()
        # key_share=1: no intra frame borrows, whenever acknowledgements come.
        coding = PlannedCoding(target, fps=fps, key_share=1)
        cfg = SenderConfig(coding=coding, rate_bytes_per_s=50_000)
        sender = Sender(tx, codec, cfg)
        receiver = Receiver(rx, codec, ReceiverConfig(max_frames=16))
        async with receiver:
            collector = asyncio.create_task(collect_frames(receiver, 8, idle_timeout_s=20))
            sent = await sender.send_frames(frames, fps=fps)
            await sender.flush()
            records = await collector
        await sender.close()
        return sent, records

    sent, records = asyncio.run(main())
    budget = target / fps
    for s in sent:
        assert sum(s.bytes.values()) <= budget or set(s.bytes) == {0}
    assert len(records) == 8 and all(r.image is not None for r in records.values())


def test_sender_plans_tier0_parity_for_the_reported_loss(codec, small_image):
    tx, _ = memory_pair()
    # key_share=1: each intra frame within its own budget, not borrowing; in_flight_s=0:
    # frame 1 is intra too (nothing acknowledged).
    coding = PlannedCoding(50_000, fps=10, key_share=1, in_flight_s=0)
    sender = Sender(tx, codec, SenderConfig(coding=coding))
    clean, *_ = sender._prepare(small_image, 0, 5000, 0.0, 0)
    lossy, *_ = sender._prepare(small_image, 1, 5000, 0.3, 0)
    assert not clean.parity and lossy.parity
    assert sender.last_plan is not None and sender.last_plan.parity_ratio > 0
    for packets in (clean, lossy):
        assert sum(len(p) + 16 for _, p in packets.in_priority_order()) <= 5000


def test_a_sender_whose_frames_fit_one_packet_counts_on_resends_over_its_budget(codec, small_image):
    tx, _ = memory_pair()
    # 900 B a frame fits one packet: the plan spends the frame's room on tier 0 and
    # counts on the transport's resends going on top of the target.
    cfg = SenderConfig(coding=PlannedCoding(9_000, fps=10, tier0_sends=4, key_share=1))
    sender = Sender(tx, codec, cfg)
    lossy, *_ = sender._prepare(small_image, 0, 900, 0.3, 0)
    assert not lossy.parity
    plan = sender.last_plan
    assert plan is not None and plan.resend_bytes > 900 - plan.bytes
    # Without the credit the plan keeps room for its own protection (a fallback): less
    # goes to tier 0.
    kept = encode_within(codec, small_image, 900, channel=Channel(loss=0.3, rounds=4))
    assert plan.tier0_bytes > kept.plan.tier0_bytes
    assert sum(len(p) + 16 for _, p in lossy.in_priority_order()) <= 900


def test_a_sender_whose_transport_resends_tier0_plans_room_for_it(codec, small_image):
    tx, _ = memory_pair()
    cfg = SenderConfig(coding=PlannedCoding(50_000, fps=10, tier0_sends=4, key_share=1))
    sender = Sender(tx, codec, cfg)
    lossy, *_ = sender._prepare(small_image, 0, 5000, 0.3, 0)
    assert not lossy.parity  # the transport resends: parity would only cost
    assert sender.last_plan is not None and sender.last_plan.resend_bytes > 0
    assert sum(len(p) + 16 for _, p in lossy.in_priority_order()) <= 5000
    with pytest.raises(ValueError, match="tier0_sends"):
        PlannedCoding(50_000, tier0_sends=0)
