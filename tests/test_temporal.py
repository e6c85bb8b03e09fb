"""Predicted frames: reuse and motion, the planner's reuse rung, the wire, the decoder, and
the simulator's acknowledged references."""

from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest
from PIL import Image

from hfstream.codec.estimates import RungTable
from hfstream.codec.frame_coding import packetize
from hfstream.codec.motion import BLOCKS, global_shift, motion_picture, search, shifted
from hfstream.codec.rates import Fixed
from hfstream.codec.temporal import predicted
from hfstream.eval.metrics import psnr
from hfstream.geometry import FINE, STILL, SUBPEL
from hfstream.media.samples import bundled_image
from hfstream.planning.frame_budgets import KEY_SHARE, LIVE_KEY_SHARE
from hfstream.planning.temporal import LOST_WEIGHT, REUSE, encode_predicted, reuse_table
from hfstream.protocol.packetizer import FrameEntries, Packetizer
from hfstream.protocol.reassembly import PacketDropped, Reassembler, ReassemblerConfig
from hfstream.protocol.wire import MotionEntry, WireError, pack_payload, parse_header, parse_tier0
from hfstream.stream.progressive import FrameDecodeState, build_encoded
from sim.loss import LossModel
from sim.temporal_video import ack_delay_frames, hfstream_temporal_deliver, trusted


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    """The bundled photo at 640x448, to cut 256x512 windows from."""
    return np.asarray(Image.fromarray(bundled_image()).resize((640, 448), Image.Resampling.LANCZOS))


def window(scene: np.ndarray, dy: int = 0, dx: int = 0) -> np.ndarray:
    return np.ascontiguousarray(scene[64 + dy : 64 + dy + 256, 64 + dx : 64 + dx + 512])


def reassemble(codec, packets: list[bytes]):
    r = Reassembler(ReassemblerConfig(codec.model_id, rungs=codec.continuous.rungs))
    events = [ev for p in packets for ev in r.receive(p, 0.0)]
    return r, events


def test_motion_search_finds_a_pan(scene):
    frame, reference = window(scene, 6, -9), window(scene)
    assert global_shift(frame, reference) == (6, -9)
    motion, best, still = search(frame, reference, (1, 2), 1)
    # One vector for all four blocks of each patch, in quarter pixels.
    assert motion.tolist() == [[[6 * SUBPEL, -9 * SUBPEL]] * BLOCKS] * 2
    # Only the rows and columns the shift brings in from outside the reference differ.
    assert (best < 0.002).all() and (still > 5 * best).all()


def test_a_half_pixel_shift_is_found_and_moved_exactly_in_integers(scene):
    # The frame is the scene moved by half a pixel down: the mean of two rows.
    big = window(scene).astype(np.int32)
    below = np.ascontiguousarray(scene[65 : 65 + 256, 64 : 64 + 512]).astype(np.int32)
    frame = ((big + below + 1) // 2).astype(np.uint8)
    reference = window(scene)
    motion, best, still = search(frame, reference, (1, 2), 1)
    assert (motion == [SUBPEL // 2, 0]).all() and (best < still / 10).all()
    # Both ends move it with the same integers: (a + b + 1) // 2 inside the picture.
    moved = shifted(reference, 0, 0, size=(255, 512), motion=(SUBPEL // 2, 0))
    assert (moved == frame[:255]).all()
    assert shifted(reference, 0, 0, size=(8, 8), motion=(1, 3)).dtype == np.uint8


def test_blocks_that_move_apart_get_a_vector_each(scene):
    # The left half of the first patch moves 3 px right; the rest is still.
    reference = window(scene)
    frame = reference.copy()
    frame[:, :128] = np.ascontiguousarray(scene[64 : 64 + 256, 61 : 61 + 128])
    motion, best, still = search(frame, reference, (1, 2), 1)
    assert motion[0, 0].tolist() == [0, -3 * SUBPEL] == motion[0, 2].tolist()
    assert motion[0, 1].tolist() == [0, 0] == motion[0, 3].tolist()
    # Only the 3 columns brought in from outside the picture differ.
    assert (motion[1] == 0).all() and best[0] < still[0] / 20
    picture = motion_picture(reference, motion, (1, 2), 1)
    assert (picture[:, 3:125] == frame[:, 3:125]).all()


def test_pixels_moved_in_from_outside_the_picture_are_smooth_not_streaks():
    rng = np.random.default_rng(1)
    reference = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    block = shifted(reference, 32, 16, size=(32, 32), motion=(12 * SUBPEL, -20 * SUBPEL))
    block = block.astype(float)
    # Rows 0..19 are inside the picture: copied exactly.
    assert (block[:20, 4:] == reference[44:64, :28]).all()
    # Rows past the bottom edge: the edge row averaged along it, far smoother than the
    # edge row the old repetition drew as vertical streaks.
    past = block[20:, 4:]
    assert (past == past[0]).all()
    assert (
        np.abs(np.diff(past[0], axis=0)).mean()
        < np.abs(np.diff(reference[63].astype(float), axis=0)).mean() / 3
    )
    assert abs(past.mean() - reference[63].mean()) < 8


def test_the_reuse_rung_costs_no_entry_and_only_better_rungs_follow():
    table = RungTable(
        bits=np.array([[800.0, 1600, 3200], [800, 1600, 3200]]),
        error=np.array([[0.010, 0.005, 0.002], [0.010, 0.005, 0.002]]),
        signal=np.ones(2),
        thumb_error=np.zeros((2, 3)),
        lost=np.ones(2),
        grid=(1, 2),
    )
    virtual, columns = reuse_table(
        table,
        np.array([0.004, 0.5]),
        still=np.array([0.03, 0.5]),
        moved=np.array([True, False]),
        motion_bytes=np.array([6.0, 0.0]),
    )
    # Patch 0's reference beats rungs 0 and 1: reuse, then rung 2 (repeated to fill).
    assert columns.tolist() == [[REUSE, 2, 2, 2], [REUSE, 0, 1, 2]]
    assert virtual.bits[0, 0] == -8 * (11 - 6) and virtual.bits[1, 0] == -8 * 11
    assert virtual.error[0].tolist() == [0.004, 0.002, 0.002, 0.002]
    # A lost entry shows the reference unmoved, in this frame alone: weighed less.
    assert virtual.lost.tolist() == [0.03 * LOST_WEIGHT, 0.5 * LOST_WEIGHT]
    assert 0 < LOST_WEIGHT < 1


def test_a_predicted_frame_travels_and_shows_its_reference_where_not_coded(codec, scene):
    reference = codec.decode(codec.encode_tier0(window(scene), rate=Fixed(3)))
    frame = window(scene, 4, 0)
    coded = codec.encode_tier0(frame, rate=Fixed(3))
    motion = np.zeros((2, BLOCKS, 2), int)
    motion[0] = [4 * SUBPEL, 0]
    enc = predicted(coded, {0}, reference=9, motion=motion)
    assert enc.predicted and enc.patches[0].continuous is None
    packets = packetize(enc, Packetizer(codec.model_id), frame_id=11).in_priority_order()
    r, events = reassemble(codec, [p for _, p in packets])
    assert not any(isinstance(ev, PacketDropped) for ev in events)
    (state,) = r
    down = ((4 * SUBPEL, 0),) * BLOCKS
    assert state.complete and state.reference == 9 and state.motion == {0: down}
    received = build_encoded(codec, state, FrameDecodeState())
    assert received.reference == 9 and received.patches[0].motion == down
    assert received.patches[1].motion == STILL
    picture = codec.decode(received, reference=reference)
    # Patch 0 shows the reference moved down 4 rows (away from the blend into patch 1).
    assert (picture[:200, :200] == reference[4:204, :200]).all()
    assert psnr(frame[:, 300:], picture[:, 300:]) > 24
    with pytest.raises(ValueError, match="needs that frame's picture"):
        codec.decode(received)


def test_a_frame_that_reuses_everything_is_one_empty_packet(codec, scene):
    enc = predicted(codec.encode_tier0(window(scene), rate=Fixed(0)), {0, 1}, reference=3)
    fp = packetize(enc, Packetizer(codec.model_id), frame_id=4)
    assert len(fp.tier0) == 1 and not fp.tier1 and not fp.tier2
    r, _ = reassemble(codec, fp.tier0)
    (state,) = r
    assert state.complete and state.reference == 3 and not state.tier0
    # An intra frame's empty tier-0 packet is refused, as before.
    data = Packetizer(codec.model_id).packetize(
        FrameEntries(256, 512, 1024, False, reference_back=1), frame_id=4
    )
    forged = data.tier0[0][:39] + b"\x00" + data.tier0[0][40:]  # reference field: intra
    _, events = reassemble(codec, [forged])
    assert [ev.reason for ev in events if isinstance(ev, PacketDropped)] == ["field"]


def test_forged_motion_is_refused():
    good = MotionEntry(1, ((-3, 7),) * BLOCKS)
    assert good.to_list() == [1, -3, 7]  # one vector for all blocks: sent once
    split = MotionEntry(0, ((-3, 7), (0, 0), (1, -1), (500, -512)))
    assert len(split.to_list()) == 1 + 2 * BLOCKS
    payload = pack_payload([good.to_list(), split.to_list()])
    assert parse_tier0(payload, 2, predicted=True) == [good, split]
    with pytest.raises(WireError, match="motion must be an integer in -512..512"):
        parse_tier0(pack_payload([[1, 600, 0]]), 2, predicted=True)
    with pytest.raises(WireError, match="tier-0 entry must be an array of 5"):
        parse_tier0(pack_payload([[1, 2, 3, 4, 5, 6, 7]]), 2, predicted=True)
    with pytest.raises(WireError, match="tier-0 entry must be an array of 5"):
        parse_tier0(pack_payload([[1, 2, 3]]), 2)


def test_the_planner_reuses_a_still_patch_and_codes_the_changed_one(codec, scene):
    reference_frame = window(scene)
    reference = codec.decode(codec.encode_tier0(reference_frame, rate=Fixed(5)))
    frame = reference_frame.copy()
    frame[:, 300:] = window(scene, 100, 0)[:, 300:]  # the right patch changes
    planned = encode_predicted(codec, frame, 600, reference=reference, reference_id=0, scales=(1,))
    assert planned.plan.rungs[0] == REUSE and planned.plan.rungs[1] >= 0
    assert planned.plan.bytes <= 600
    shown = codec.decode(planned.encoded, reference=reference)
    assert psnr(frame[:, :200], shown[:, :200]) == psnr(
        reference_frame[:, :200], reference[:, :200]
    )


class Scripted(LossModel):
    """Loses the packets whose sending positions are listed."""

    def __init__(self, lost: set[int]) -> None:
        self.lost_at, self.n = lost, -1

    def lost(self) -> bool:
        self.n += 1
        return self.n in self.lost_at


def intra_frames(detail: str) -> int:
    """How many frames a delivery's detail lists as intra, at any scale."""
    return sum(int(n) for n in re.findall(r"intra [^,]*? x(\d+)", detail))


def test_references_are_acknowledged_frames_and_a_loss_does_not_spread(codec, scene):
    assert ack_delay_frames(100, 10) == 2 and ack_delay_frames(0, 30) == 1
    clip = [window(scene, 0, 3 * i) for i in range(5)]
    clean = hfstream_temporal_deliver(
        codec, clip, 900, Scripted(set()), fps=10, rtt_ms=100, in_flight=False
    )
    # Frames 0 and 1 go before any acknowledgement: intra; 2.. are predicted.
    assert clean.detail.startswith("temporal; ") and intra_frames(clean.detail) == 2
    # Within the rate but for what the intra frames borrowed (at most KEY_SHARE - 1
    # frames' budgets, repaid by the frames after them).
    assert all(clean.fresh) and clean.bytes_sent <= (5 + KEY_SHARE - 1) * 900
    intra = hfstream_temporal_deliver(codec, clip, 900, Scripted(set()), temporal=False)
    assert "P " not in intra.detail
    # Frame 0's first packet lost: it is not complete, so never acknowledged, and frame 2
    # (whose only candidate would have been frame 0) is intra too; frame 3 predicts from 1.
    lossy = hfstream_temporal_deliver(codec, clip, 900, Scripted({0}), fps=10, in_flight=False)
    assert all(lossy.fresh[1:]) and lossy.packets_lost == 1
    assert intra_frames(lossy.detail) == 3


def test_in_flight_references_end_a_lost_chain_when_its_acknowledgement_is_due(codec, scene):
    clip = [window(scene, 0, 3 * i) for i in range(5)]
    clean = hfstream_temporal_deliver(codec, clip, 900, Scripted(set()), fps=10, rtt_ms=100)
    # Every frame after the first is predicted from the one just sent.
    assert intra_frames(clean.detail) == 1 and all(clean.fresh)
    acked_only = hfstream_temporal_deliver(
        codec, clip, 900, Scripted(set()), fps=10, rtt_ms=100, in_flight=False
    )

    def mean_psnr(shown: list[np.ndarray]) -> float:
        return float(np.mean([psnr(a, b) for a, b in zip(clip, shown, strict=True)]))

    assert mean_psnr(clean.shown) > mean_psnr(acked_only.shown)
    # Frame 0's first packet lost: frame 1 is still predicted from it (its loss is not
    # known yet) and shown from what the receiver has; at frame 2 frame 0's
    # acknowledgement is due and missing, so frames 0 and 1 are out, and frame 2 is intra.
    lossy = hfstream_temporal_deliver(codec, clip, 900, Scripted({0}), fps=10, rtt_ms=100)
    assert lossy.packets_lost == 1 and all(lossy.fresh[1:])
    assert intra_frames(lossy.detail) == 2
    # The chain rule itself: acknowledged, in flight, overdue.
    refs = {0: None, 1: 0, 2: 1}
    assert trusted(2, 3, {0: 2}, refs, 3)  # 2 in flight, 1 in flight, 0 acknowledged
    assert not trusted(2, 3, {}, refs, 3)  # 0's acknowledgement was due at 3
    assert trusted(2, 3, {}, refs, 4)  # not yet due: intra frame 0 in flight


def test_a_stream_predicts_from_what_the_receiver_acknowledged(codec, scene):
    """A planned stream over memory: the receiver acknowledges frames decoded whole, the
    sender predicts later frames from them, and the receiver shows every frame."""

    from hfstream.stream.coding import PlannedCoding
    from hfstream.stream.collect import collect_frames
    from hfstream.stream.receiver import Receiver, ReceiverConfig
    from hfstream.stream.sender import Sender, SenderConfig
    from hfstream.transports.memory import memory_pair

    clip = [window(scene, 0, 2 * i) for i in range(6)]

    async def main(temporal: bool):
        tx, rx = memory_pair()
        coding = PlannedCoding(5_000, fps=5, temporal=temporal)
        sender = Sender(tx, codec, SenderConfig(coding=coding, rate_bytes_per_s=50_000))
        config = ReceiverConfig(max_frames=16, feedback_interval_s=0.05)
        async with Receiver(rx, codec, config) as receiver:
            collector = asyncio.create_task(collect_frames(receiver, len(clip), 20))
            sent = [await sender.send_image(f) for f in clip[:1]]
            for f in clip[1:]:
                await sender.flush()
                await asyncio.sleep(0.4)  # reports come back between frames
                sent.append(await sender.send_image(f))
            await sender.flush()
            records = await collector
            stats = receiver.stats
        await sender.close()
        return sent, records, stats

    sent, records, stats = asyncio.run(main(True))
    references = [s.reference for s in sent]
    assert references[0] is None and any(r is not None for r in references)
    assert all(r is None or r < s.frame_id for r, s in zip(references, sent, strict=True))
    assert len(records) == len(clip) and stats["missing_references"] == 0
    assert stats["references"] >= 1
    for s in sent:
        assert psnr(clip[s.frame_id], records[s.frame_id].image) > 20
    # The intra frame borrowed from the predicted frames after it (``FrameBudgets``).
    assert sum(sent[0].bytes.values()) > 5_000 / 5
    sent, _, _ = asyncio.run(main(False))
    assert all(s.reference is None for s in sent)
    assert sum(sent[0].bytes.values()) <= 5_000 / 5 * 1.05  # headers and tags


def test_the_sender_predicts_from_the_newest_acknowledged_picture_it_holds():
    from hfstream.stream.references import DecodedPictures, SentPictures

    sent = SentPictures(window=4)
    pictures = {i: np.full((2, 2, 3), i, np.uint8) for i in range(10)}
    assert sent.reference() is None  # nothing acknowledged: intra
    for i in range(3):
        sent.sent(i, pictures[i])
    sent.acknowledge([0, 1, 7])  # 7 was never sent: ignored
    ref_id, picture = sent.reference()
    assert ref_id == 1 and (picture == 1).all()
    sent.acknowledge([0])  # a restarted receiver's report lists only what it holds
    assert sent.reference()[0] == 0
    for i in range(3, 8):
        sent.sent(i, pictures[i])
    assert sent.reference() is None  # frame 0 fell out of the window: intra again
    # Frame ids wrap: 2**32 - 1 is one frame behind 0.
    wrapped = SentPictures(window=4)
    wrapped.sent(0xFFFFFFFF, pictures[1])
    wrapped.sent(0, pictures[2])
    wrapped.acknowledge([0xFFFFFFFF])
    assert wrapped.reference()[0] == 0xFFFFFFFF
    held = DecodedPictures(keep=2)
    for i in range(3):
        held.add(i, pictures[i])
    assert held.ids() == [1, 2] and held.get(0) is None and len(held) == 2
    assert held.matching(2, (2, 2)) is pictures[2] and held.matching(2, (4, 2)) is None


def test_an_acknowledgement_that_comes_before_the_sender_keeps_its_picture_counts():
    from hfstream.stream.references import SentPictures

    sent = SentPictures(window=4)
    sent.acknowledge([0])  # the receiver was quicker than the sender's own decode
    assert sent.reference() is None
    sent.sent(0, np.zeros((2, 2, 3), np.uint8))
    assert sent.reference()[0] == 0


def test_a_sender_queues_a_frame_before_its_own_decode_of_it_ends(codec, scene):
    import threading

    from hfstream.stream.coding import PlannedCoding
    from hfstream.stream.sender import Sender, SenderConfig
    from hfstream.transports.memory import memory_pair

    async def main(live: bool) -> tuple[list, int, bool]:
        tx, _ = memory_pair()
        coding = PlannedCoding(9_000, fps=10, key_share=1)
        sender = Sender(tx, codec, SenderConfig(coding=coding, live=live))
        release, kept = threading.Event(), []
        keep = sender._keep

        def slow_keep(frame_id, *args):
            assert release.wait(30), "never released"
            keep(frame_id, *args)
            kept.append(frame_id)

        sender._keep = slow_keep
        first = await sender.send_image(window(scene))
        queued = len(sender.pacer) + sender.packets_sent
        assert first.packets and queued > 0 and kept == []  # queued, its decode held
        if live:  # the next frame does not wait for it: nothing is acknowledged anyway
            second = await sender.send_image(window(scene, 2, 3))
            release.set()
        else:  # the next frame waits: it is predicted from this one
            release.set()
            second = await sender.send_image(window(scene, 2, 3))
        await sender._keeping
        await sender.close()
        return kept, queued, second.reference

    kept, _, reference = asyncio.run(main(live=False))
    assert kept == [0, 1] and reference == 0
    kept, _, reference = asyncio.run(main(live=True))
    assert kept == [0, 1] and reference is None


def test_the_sender_predicts_from_a_frame_in_flight_until_its_acknowledgement_is_due():
    from hfstream.stream.references import IN_FLIGHT_MAX_LOSS, SentPictures

    pictures = {i: np.full((2, 2, 3), i, np.uint8) for i in range(6)}
    sent = SentPictures(window=8, in_flight_s=0.5)
    sent.sent(0, pictures[0], now=0.0)  # intra
    assert sent.reference(0.1)[0] == 0  # in flight, not yet acknowledged
    sent.sent(1, pictures[1], reference=0, now=0.1)
    sent.sent(2, pictures[2], reference=1, now=0.2)
    assert sent.reference(0.3)[0] == 2  # its chain back to intra frame 0 is in flight
    # Over a channel that loses this much, acknowledged frames only.
    assert sent.reference(0.3, loss=IN_FLIGHT_MAX_LOSS) is None
    assert sent.reference(0.3, size=(4, 4)) is None  # none of that size
    # Frame 0's acknowledgement is overdue at 0.5 s: frames 1 and 2 lean on it.
    assert sent.reference(0.55) is None
    sent.acknowledge([0])
    assert sent.reference(0.55)[0] == 2 and sent.trusted(1, 0.55)
    # Frame 2 is overdue at 0.7 s; frame 1 (0.6 s) too: only frame 0 is left.
    assert sent.reference(0.7)[0] == 0
    # Without in-flight references only acknowledged frames count.
    acked_only = SentPictures(window=8)
    acked_only.sent(0, pictures[0], now=0.0)
    assert acked_only.reference(0.0) is None
    with pytest.raises(ValueError, match="in_flight_s"):
        SentPictures(in_flight_s=-1)


def test_the_receiver_shows_a_frame_from_an_inexact_reference_and_never_reports_it():
    from hfstream.stream.references import DecodedPictures

    pictures = {i: np.full((2, 2, 3), i, np.uint8) for i in range(6)}
    held = DecodedPictures(keep=4)
    held.add(0, pictures[0])
    held.add(1, pictures[1], exact=False)  # shown, but not the sender's picture
    assert held.ids() == [0]  # only exact pictures are acknowledged
    assert held.for_reference(0, (2, 2)) == (pictures[0], True)
    picture, exact = held.for_reference(1, (2, 2))
    assert picture is pictures[1] and not exact
    # A reference never shown here: the newest picture before it stands in.
    picture, exact = held.for_reference(3, (2, 2))
    assert picture is pictures[1] and not exact
    assert held.for_reference(1, (4, 2)) == (None, False)  # nothing of that size
    held.add(1, pictures[2])  # frame 1 decoded whole later
    assert held.ids() == [0, 1] and held.for_reference(1, (2, 2))[1]
    held.add(1, pictures[3], exact=False)  # a later partial picture does not replace it
    assert held.for_reference(1, (2, 2))[0] is pictures[2]


def test_a_lost_packet_resent_in_time_completes_its_frame(codec, scene):
    clip = [window(scene, 0, 3 * i) for i in range(4)]
    d = hfstream_temporal_deliver(
        codec,
        clip,
        2000,
        Scripted({0}),
        expected_loss=0.2,
        fps=10,
        resends=1,
        key_share=1,
        in_flight=False,
    )
    # Frame 0's tier-0 packet is lost and resent a round trip later (from the frame's
    # resend credit): its tier 0 whole, shown at 50 + 100 ms, the others at 50 ms. Its
    # tier-2 packet no longer fits the budget after the resend, so it is not the
    # sender's picture and is never acknowledged: frames 1 and 2 are intra, frame 3 is
    # predicted from frame 1.
    assert all(d.fresh) and d.delay_ms == [150.0, 50.0, 50.0, 50.0]
    assert intra_frames(d.detail) == 3 and "P " in d.detail


def test_a_restarted_receiver_gets_an_intra_frame_and_then_predicted_ones(codec, scene):
    """The receiver restarts mid-stream, holding none of the references: its first report
    lists no frame, so the sender codes intra again, then predicts from the new
    receiver's frames."""

    from hfstream.stream.coding import PlannedCoding
    from hfstream.stream.receiver import Receiver, ReceiverConfig
    from hfstream.stream.sender import Sender, SenderConfig
    from hfstream.transports.memory import memory_pair

    clip = [window(scene, 0, 2 * i) for i in range(9)]
    config = ReceiverConfig(max_frames=16, feedback_interval_s=0.05)

    async def send(sender, frames):
        out = []
        for f in frames:
            out.append(await sender.send_image(f))
            await sender.flush()
            await asyncio.sleep(0.4)  # its report comes back
        return out

    async def main():
        tx, rx = memory_pair()
        sender = Sender(tx, codec, SenderConfig(coding=PlannedCoding(5_000, fps=5)))
        async with Receiver(rx, codec, config):  # the first receiver
            before = await send(sender, clip[:4])
        second = Receiver(rx, codec, config)
        async with second:
            after = await send(sender, clip[4:])
            stats = second.stats
        await sender.close()
        return before, after, stats

    before, after, stats = asyncio.run(main())
    assert any(s.reference is not None for s in before)
    # The first frame after the restart was predicted from the old receiver's frames (the
    # sender could not know yet); the new receiver drops it and reports nothing held.
    assert after[0].reference is not None and stats["missing_references"] >= 1
    intra = [i for i, s in enumerate(after) if s.reference is None]
    assert intra, "the sender went back to an intra frame"
    assert any(s.reference is not None for s in after[intra[0] + 1 :])
    assert all(
        s.reference is None or s.reference >= after[intra[0]].frame_id for s in after[intra[0] :]
    )


def test_a_frame_of_another_size_is_intra(codec, scene):
    from hfstream.stream.coding import PlannedCoding
    from hfstream.stream.sender import Sender, SenderConfig
    from hfstream.transports.memory import memory_pair

    tx, _ = memory_pair()
    sender = Sender(tx, codec, SenderConfig(coding=PlannedCoding(5_000, fps=5)))
    sender._prepare(window(scene), 0, 1000, 0.0, 0)
    sender.sent_pictures.acknowledge([0])  # as a report would
    _, _, reference, _ = sender._prepare(window(scene)[:, :256], 1, 1000, 0.0, 0)
    assert reference is None  # nothing of that size to predict from
    sender.sent_pictures.acknowledge([0])
    # Frame 1, newer and in flight, is of the other size: frame 0 is the reference.
    _, _, reference, _ = sender._prepare(window(scene, 0, 4), 2, 1000, 0.0, 0)
    assert reference == 0


def test_an_older_reference_is_taken_only_when_it_shows_its_frame_much_better():
    from hfstream.stream.references import BETTER_BY, SentPictures, choose_reference

    # Frame 1 (a second intra frame, on a smaller budget) is far worse than frame 0.
    assert choose_reference({0: 0.001, 1: 0.004}) == 0
    assert choose_reference({0: 0.001, 1: 0.001 * BETTER_BY * 0.9}) == 1  # the newest
    # Only the two newest are weighed.
    assert choose_reference({0: 0.0001, 4: 0.004, 5: 0.004}) == 5
    sent = SentPictures(window=4)
    for i, error in enumerate((0.001, 0.004, 0.003)):
        sent.sent(i, np.full((2, 2, 3), i, np.uint8), error=error)
    sent.acknowledge([0, 1])
    assert sent.reference()[0] == 0
    sent.acknowledge([0, 1, 2])
    assert sent.reference()[0] == 2


def test_an_extended_reference_moves_pixels_as_the_picture_itself_does():
    from hfstream.codec.motion import Extended

    rng = np.random.default_rng(3)
    reference = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    extended = Extended(reference, margin=20)
    for motion in [(0, 0), (-60, 44), (75, -79), (-3, 5), (80, 80), (-200, 0)]:
        for top, left in [(0, 0), (24, 40), (10, 3)]:
            size = (16, 16)
            want = shifted(reference, top, left, size=size, motion=motion)
            got = shifted(extended, top, left, size=size, motion=motion)
            assert (got == want).all(), (motion, top, left)


def test_a_search_without_split_gives_each_patch_one_vector(scene):
    reference = window(scene)
    frame = reference.copy()
    frame[:, :128] = np.ascontiguousarray(scene[64 : 64 + 256, 61 : 61 + 128])
    motion, best, _ = search(frame, reference, (1, 2), 1, split=False)
    split_motion, split_best, _ = search(frame, reference, (1, 2), 1)
    assert (motion == motion[:, :1]).all()  # the four blocks of a patch alike
    assert best[0] > split_best[0]  # the blocks that moved apart cost it


def test_a_search_without_split_finds_a_pan_on_half_size_gray_levels(scene):
    frame, reference = window(scene, 7, -5), window(scene)
    # Half size: an even shift, which the whole-pixel search around it corrects.
    dy, dx = global_shift(frame, reference, step=2)
    assert abs(dy - 7) <= 1 and abs(dx + 5) <= 1 and dy % 2 == 0 and dx % 2 == 0
    motion, best, still = search(frame, reference, (1, 2), 1, split=False)
    assert motion.tolist() == [[[7 * SUBPEL, -5 * SUBPEL]] * BLOCKS] * 2
    # The errors the plan weighs are the colour pictures', as with ``split``.
    _, split_best, split_still = search(frame, reference, (1, 2), 1)
    assert np.allclose(still, split_still) and np.allclose(best, split_best)


def test_a_fast_plan_codes_differences_at_the_fine_scale_within_its_budget(codec, scene):
    reference_frame = window(scene)
    reference = codec.decode(codec.encode_tier0(reference_frame, rate=Fixed(5)))
    frame = window(scene, 2, 3)
    planned = encode_predicted(codec, frame, 900, reference=reference, reference_id=0, fast=True)
    assert planned.encoded.residual and planned.encoded.scale == FINE
    assert planned.plan.bytes <= 900
    shown = codec.decode(planned.encoded, reference=reference)
    assert psnr(frame, shown) > psnr(frame, reference)


def test_a_live_sender_codes_its_predicted_frames_below_the_fine_scale(codec, scene):
    from hfstream.planning.temporal import LIVE_SCALES
    from hfstream.stream.coding import PlannedCoding
    from hfstream.stream.sender import Sender, SenderConfig
    from hfstream.transports.memory import memory_pair

    reference_frame = window(scene)
    reference = codec.decode(codec.encode_tier0(reference_frame, rate=Fixed(5)))
    frame = window(scene, 2, 3)
    planned = encode_predicted(
        codec, frame, 900, reference=reference, reference_id=0, fast=True, scales=LIVE_SCALES
    )
    assert FINE not in LIVE_SCALES and planned.encoded.scale == 1
    assert planned.plan.bytes <= 900
    # The sender: a live one codes its predicted frames below FINE until its own
    # timings say that FINE keeps up with the frame clock.
    scales = {}
    for live, fast_enough in ((False, False), (True, False), (True, True)):
        tx, _ = memory_pair()
        coding = PlannedCoding(9_000, fps=10, key_share=1)
        sender = Sender(tx, codec, SenderConfig(coding=coding, live=live))
        # A live receiver decodes only the newest frame: no in-flight references.
        assert sender.sent_pictures.in_flight_s == (0.0 if live else coding.in_flight_s)
        sender._prepare(reference_frame, 0, 900, 0.0, 0)
        sender.sent_pictures.acknowledge([0])
        if fast_enough:
            sender.live_scales.coded(0.01, 1)
        packets, _, used, _ = sender._prepare(frame, 1, 900, 0.0, 0)
        assert used == 0
        scales[live, fast_enough] = parse_header(packets.in_priority_order()[0][1])[0].scale
    assert scales == {(False, False): FINE, (True, False): 1, (True, True): FINE}
    assert sender.live_scales.last is not None and sender.live_scales.last[1] == FINE


def test_a_sender_predicts_from_the_frame_it_just_sent_before_any_acknowledgement(codec, scene):
    from hfstream.stream.coding import PlannedCoding
    from hfstream.stream.sender import Sender, SenderConfig
    from hfstream.transports.memory import memory_pair

    used = {}
    for live in (False, True):
        tx, _ = memory_pair()
        coding = PlannedCoding(9_000, fps=10, key_share=1)
        sender = Sender(tx, codec, SenderConfig(coding=coding, live=live))
        sender._prepare(window(scene), 0, 900, 0.0, 0)
        # However long frame 0 took to code, it was sent just now: frame 1 leans on it.
        _, _, used[live], _ = sender._prepare(window(scene, 2, 3), 1, 900, 0.0, 0)
    assert used == {False: 0, True: None}
    # A live sender's key frames borrow less: a larger one delays every frame behind it.
    for live, share in ((False, KEY_SHARE), (True, LIVE_KEY_SHARE)):
        config = SenderConfig(coding=PlannedCoding(9_000), live=live)
        assert Sender(memory_pair()[0], codec, config).budgets.key_share == share
    assert LIVE_KEY_SHARE < KEY_SHARE


def test_a_live_sender_codes_a_cheap_intra_frame_and_waits_for_its_acknowledgement(codec, scene):
    import time

    from hfstream.planning.temporal import LIVE_SCALES
    from hfstream.stream.coding import PlannedCoding
    from hfstream.stream.sender import Sender, SenderConfig
    from hfstream.transports.memory import memory_pair

    coding = PlannedCoding(9_000, fps=10, key_share=1)
    sender = Sender(memory_pair()[0], codec, SenderConfig(coding=coding, live=True))
    assert not sender.awaiting_reference()  # nothing sent: the first frame is due
    packets, _, reference, _ = sender._prepare(window(scene), 0, 4 * 900, 0.0, 0)
    assert reference is None and sender.last_plan is not None
    # Tier 0 alone, at a scale that keeps up: no indices to code or decode.
    assert sender.last_plan.schedule == "0" and sender.last_plan.tier1_bytes == 0
    assert parse_header(packets.in_priority_order()[0][1])[0].scale in LIVE_SCALES
    now = time.monotonic()
    assert sender.awaiting_reference(now)  # its acknowledgement may still come
    assert not sender.awaiting_reference(now + sender.config.key_wait_s)  # it did not
    # A second intra frame with no report ever come: a receiver that does not report
    # (no reference will ever come either) is not waited for again.
    sender._prepare(window(scene, 1, 1), 1, 4 * 900, 0.0, 0)
    assert not sender.awaiting_reference(time.monotonic())
    sender.reports_received = 1  # ...but one that reported once is
    assert sender.awaiting_reference(time.monotonic())
    sender.sent_pictures.acknowledge([0])
    assert not sender.awaiting_reference(now)  # the next frame is predicted from it
    with pytest.raises(ValueError, match="key_wait_s"):
        SenderConfig(key_wait_s=-1)


def test_a_live_sender_codes_fine_only_while_it_would_keep_up():
    from hfstream.geometry import SCALES
    from hfstream.planning.temporal import LIVE_SCALES
    from hfstream.stream.live_scales import FINE_COST, LiveScales

    choice = LiveScales()
    assert choice.scales(0.1) == LIVE_SCALES  # no timing yet: the cheap way
    choice.coded(0.1 / FINE_COST * 0.9, 1)
    assert choice.scales(0.1) == SCALES  # FINE would fit the interval
    choice.coded(0.1 / FINE_COST * 1.1, 1)
    assert choice.scales(0.1) == LIVE_SCALES
    choice.coded(0.09, FINE)
    assert choice.scales(0.1) == SCALES
    choice.coded(0.2, FINE)
    assert choice.scales(0.1) == LIVE_SCALES
