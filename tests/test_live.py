"""Real time: the capture time travels with the frame, and in live mode the newest frame
wins on both sides (the receiver skips stale frames, the sender skips frames it cannot
encode in time). Bursts are injected at once, so the order of events is deterministic."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from hfstream.codec.frame_coding import index_priors, packetize
from hfstream.protocol.auth import DATA, Sealer
from hfstream.protocol.packetizer import Packetizer, PacketizerConfig
from hfstream.protocol.reassembly import Reassembler, ReassemblerConfig
from hfstream.protocol.wire import Packet, parse_header
from hfstream.stream.coding import FixedCoding
from hfstream.stream.receiver import Receiver, ReceiverConfig
from hfstream.stream.sender import Sender, SenderConfig
from hfstream.transports.memory import memory_pair

SESSION = 0x65A1B2C3_00000001
LIVE = ReceiverConfig(live=True, live_settle_s=0, feedback_interval_s=None)


@pytest.fixture(scope="module")
def tier0(codec, small_image) -> bytes:
    """The one tier-0 packet of a one-patch frame (frame id 0, capture field 1000 ms)."""
    enc = codec.encode(small_image[:, :256], "1_4")
    packetizer = Packetizer(codec.model_id, config=PacketizerConfig(parity_ratio=0))
    fp = packetize(enc, packetizer, frame_id=0, priors=index_priors(codec, enc), capture_ms=1000)
    (packet,) = fp.tier0
    return packet


def renumber(packet: bytes, frame_id: int) -> bytes:
    header, payload = parse_header(packet)
    return Packet(dataclasses.replace(header, frame_id=frame_id), payload).serialize()


def test_every_packet_of_a_frame_carries_its_capture_time(codec, small_image):
    enc = codec.encode(small_image, "1_4")
    fp = packetize(enc, Packetizer(codec.model_id), frame_id=3, capture_ms=4321)
    headers = [parse_header(p)[0] for _, p in fp.in_priority_order()]
    assert len(headers) > 2 and {h.capture_ms for h in headers} == {4321}
    # A packet that disagrees with its frame's capture time is refused, not merged.
    r = Reassembler(ReassemblerConfig(codec.model_id))
    r.receive(fp.tier0[0], 0.0)
    assert r.frames[3].capture_ms == 4321
    other = parse_header(fp.tier1[0])
    forged = Packet(dataclasses.replace(other[0], capture_ms=4322), other[1]).serialize()
    (ev,) = r.receive(forged, 0.0)
    assert ev.reason == "inconsistent" and "capture time" in ev.message


async def _live(codec, batches: list[list[bytes]]):
    """Inject each batch at once; wait for a picture after every batch but the last."""
    tx, rx = memory_pair()
    receiver = Receiver(rx, codec, LIVE)
    sealer = Sealer(None, DATA, SESSION)
    updates = []
    async with receiver:
        for n, batch in enumerate(batches):
            for p in batch:
                rx.inbox.put(sealer.seal(p))
            if n < len(batches) - 1:
                updates.append(await asyncio.wait_for(receiver.__anext__(), 120))
        await tx.close()
        async for u in receiver:
            updates.append(u)
    return updates, receiver


def test_live_receiver_decodes_only_the_newest_of_a_burst(codec, tier0):
    burst = [renumber(tier0, f) for f in range(6)]
    updates, receiver = asyncio.run(_live(codec, [burst]))
    # Tier 0 alone: the instant preview (tier 0 up-sampled) is the best picture, shown
    # once; when the input ends nothing new came, so it is not shown again.
    assert [(u.frame_id, u.mode) for u in updates] == [(5, "continuous")]
    assert (receiver.frames_shown, receiver.frames_skipped) == (1, 5)
    assert sorted(receiver.skipped_ids) == [0, 1, 2, 3, 4]
    assert receiver.stats["decode_queue"] == 0 and receiver.stats["decode_caches"] == 0


def test_live_receiver_never_shows_a_frame_after_a_newer_one(codec, tier0):
    # Frame 3 is shown; frame 1 arrives afterwards (reordered or late): it is skipped.
    batches = [[renumber(tier0, 3)], [renumber(tier0, 1), renumber(tier0, 4)]]
    updates, receiver = asyncio.run(_live(codec, batches))
    assert [u.frame_id for u in updates] == [3, 4]
    assert (receiver.frames_shown, receiver.frames_skipped) == (2, 1)
    assert list(receiver.skipped_ids) == [1]  # frame 3 was shown before 4 won


def test_without_live_mode_every_frame_is_shown(codec, tier0):
    async def run():
        tx, rx = memory_pair()
        config = dataclasses.replace(LIVE, live=False)
        sealer = Sealer(None, DATA, SESSION)
        async with Receiver(rx, codec, config) as receiver:
            for f in range(4):
                rx.inbox.put(sealer.seal(renumber(tier0, f)))
            await tx.close()
            return [u.frame_id async for u in receiver], receiver

    ids, receiver = asyncio.run(run())
    assert sorted(ids) == [0, 1, 2, 3] and receiver.frames_skipped == 0


def test_capture_latency_runs_from_the_senders_capture_time(codec, small_image):
    async def run(at_session_start: bool):
        tx, rx = memory_pair()
        sender = Sender(tx, codec, SenderConfig(rate_bytes_per_s=5e6, coding=FixedCoding("1_4")))
        taken = float(sender.session_id >> 32) if at_session_start else None
        config = ReceiverConfig(frame_timeout_s=0.5, feedback_interval_s=None)
        async with Receiver(rx, codec, config) as receiver:
            sent = await sender.send_image(small_image, capture_time=taken)
            await sender.flush()
            await tx.close()
            updates = [u async for u in receiver]
        await sender.close()
        return sent, taken, updates

    sent, _, updates = asyncio.run(run(False))
    # Captured before its first packet left: the capture latency covers the first-packet
    # latency (the field has ms resolution, rounded to the nearest).
    assert updates and all(u.capture_latency_s >= u.latency_s - 0.001 for u in updates)
    # A frame taken at the session's start second: field 0, and the receiver counts from
    # that second (read from the session id), not from when the packets came.
    sent, taken, updates = asyncio.run(run(True))
    assert sent.capture_ms == 0
    age = time.time() - taken  # the test's own clock, read after the pictures
    assert updates and all(u.latency_s <= u.capture_latency_s <= age for u in updates)


@pytest.mark.parametrize("live", [False, True])
def test_live_sender_skips_frames_whose_successor_is_already_due(codec, small_image, live):
    # At 10**6 fps every later slot passes during the first encode: live mode skips the
    # stale frames but always sends the last; otherwise every frame is encoded, late.
    async def run():
        tx, rx = memory_pair()
        sender = Sender(tx, codec, SenderConfig(rate_bytes_per_s=5e7, live=live))
        sent = await sender.send_frames([small_image] * 5, fps=1e6)
        await sender.close()
        await tx.close()
        return sent, sender

    sent, sender = asyncio.run(run())
    assert len(sent) + sender.frames_skipped == 5
    assert [s.frame_id for s in sent] == list(range(len(sent)))
    # Tier 2 refines a picture that the next frame replaces: a live sender leaves it out.
    assert all((2 in s.packets) is not live for s in sent)
    assert sender.config.packetizing.send_withheld is not live
    if live:
        # Frame 0 may go before the next slot passes; frames 1..3 never do.
        assert len(sent) <= 2 and sender.frames_skipped >= 3
        assert sent[-1].capture_ms == max(s.capture_ms for s in sent)
    else:
        assert len(sent) == 5 and sender.frames_skipped == 0


def test_live_sender_sends_no_index_the_receiver_would_not_show(codec, small_image):
    """Without a target, a live frame's tier 1 goes only where ``auto`` would show it."""

    async def tiers(schedule: str, live: bool) -> set[int]:
        tx, _ = memory_pair()
        config = SenderConfig(rate_bytes_per_s=5e7, coding=FixedCoding(schedule), live=live)
        sender = Sender(tx, codec, config)
        sent = await sender.send_image(small_image)
        await sender.close()
        await tx.close()
        return set(sent.packets)

    original = codec.index_gain_db
    try:
        codec.index_gain_db = {"0": 0.0, "1_4": 0.05, "1_1": 0.3}  # 1_4 below the threshold
        assert asyncio.run(tiers("1_4", live=True)) == {0}
        assert asyncio.run(tiers("1_1", live=True)) == {0, 1}
        assert asyncio.run(tiers("1_4", live=False)) == {0, 1, 2}
    finally:
        codec.index_gain_db = original


def test_skipped_frames_are_kept_per_session(codec, tier0):
    """Two streams one after the other both number their frames from 0: a stream's
    summary lists its own skipped frames, not the next stream's."""
    burst = [renumber(tier0, f) for f in range(3)]
    _, receiver = asyncio.run(_live(codec, [burst]))
    session = receiver.session_id
    assert session != 0
    assert receiver.skipped_in(session) == [0, 1]
    assert receiver.skipped_in(session + 1) == []
    assert receiver.skipped_ids == [0, 1]
