"""Sender and receiver end to end over the in-memory transport, with the real model."""

import asyncio
import contextlib

import numpy as np
import pytest

from hfstream.protocol.auth import DATA, Opener
from hfstream.protocol.packetizer import PacketizerConfig
from hfstream.protocol.reassembly import Reassembler, ReassemblerConfig
from hfstream.protocol.wire import PacketType, WireError
from hfstream.stream.coding import FixedCoding
from hfstream.stream.progressive import FrameDecodeState, Stage, build_encoded
from hfstream.stream.receiver import Receiver, ReceiverConfig
from hfstream.stream.sender import Sender, SenderConfig
from hfstream.transports.memory import memory_pair


class TypeFilter:
    """Wraps a transport and drops every datagram whose packet type is in ``drop``."""

    def __init__(self, inner, drop):
        self.inner, self.drop = inner, set(drop)

    async def send(self, data):
        if data[3] not in self.drop:
            await self.inner.send(data)

    async def recv(self):
        return await self.inner.recv()

    async def close(self):
        await self.inner.close()


async def stream(codec, image, tx, rx, config=None):
    sender = Sender(
        tx, codec, config or SenderConfig(rate_bytes_per_s=5e6, coding=FixedCoding("1_4"))
    )
    receiver = Receiver(rx, codec, ReceiverConfig(frame_timeout_s=0.5))
    updates = []
    async with receiver:
        sent = await sender.send_image(image)
        await sender.flush()
        await asyncio.sleep(0.05)
        await tx.close()
        async for u in receiver:
            updates.append(u)
    await sender.close()
    return sent, updates, receiver


def test_image_end_to_end_in_memory(codec, small_image):
    tx, rx = memory_pair()
    sent, updates, receiver = asyncio.run(stream(codec, small_image, tx, rx))
    assert updates and updates[-1].final and updates[-1].stage == Stage.REFINED
    assert [u.stage for u in updates] == sorted(u.stage for u in updates)
    enc = codec.encode(small_image, "1_4")
    assert np.array_equal(updates[-1].image, codec.decode(enc))
    assert receiver.drops == {}
    assert sent.packets[0] >= 1 and sent.packets[1] >= 1


def test_all_index_packets_lost_still_gives_the_preview(codec, small_image):
    tx, rx = memory_pair()
    lossy = TypeFilter(tx, {PacketType.TIER1, PacketType.TIER2})
    _, updates, _ = asyncio.run(stream(codec, small_image, lossy, rx))
    assert updates and all(u.stage == Stage.PREVIEW for u in updates)
    expected = codec.decode(codec.encode(small_image, "1_4").without_indices())
    assert np.array_equal(updates[-1].image, expected)


def test_tier0_loss_within_fec_is_repaired(codec, small_image):
    tx, rx = memory_pair()
    lossy = TypeFilter(tx, {PacketType.TIER0})  # every tier-0 packet lost: parity alone
    cfg = SenderConfig(
        rate_bytes_per_s=5e6,
        coding=FixedCoding("1_4"),
        packetizer=PacketizerConfig(parity_ratio=1.0),
    )
    _, updates, _ = asyncio.run(stream(codec, small_image, lossy, rx, cfg))
    assert updates[-1].received["tier0"] == 1.0


def _frame_packets(codec, image):
    async def collect():
        tx, rx = memory_pair()
        sender = Sender(tx, codec, SenderConfig(rate_bytes_per_s=1e9, coding=FixedCoding("auto")))
        await sender.send_image(image)
        await sender.flush()
        await sender.close()
        return rx.inbox.drain()

    return asyncio.run(collect())


def _picture(codec, datagrams):
    opener = Opener(None, DATA)  # the tag first, as the receiver does
    r = Reassembler(ReassemblerConfig(codec.model_id))
    for d in datagrams:
        with contextlib.suppress(WireError):  # duplicates are refused as replays
            r.receive(opener.open(d), 0.0)
    (frame,) = r
    return codec.decode(build_encoded(codec, frame, FrameDecodeState()))


@pytest.mark.slow
def test_reordered_and_duplicated_delivery_gives_the_same_picture(codec, small_image):
    packets = _frame_packets(codec, small_image)
    rng = np.random.default_rng(7)
    in_order = _picture(codec, packets)
    shuffled = [packets[i] for i in rng.permutation(len(packets))] + packets[::2]
    assert np.array_equal(_picture(codec, shuffled), in_order)


@pytest.mark.parametrize("lost_share", [0.2])
def test_explicit_loss_pattern_is_deterministic(codec, small_image, lost_share):
    packets = _frame_packets(codec, small_image)
    pattern = [i % 5 == 2 for i in range(len(packets))]  # every fifth packet lost
    kept = [p for p, lost in zip(packets, pattern, strict=True) if not lost]
    assert np.array_equal(_picture(codec, kept), _picture(codec, kept))


def test_a_sender_block_lets_its_packets_leave_then_stops(codec, small_image):
    async def run():
        tx, rx = memory_pair()
        async with Sender(tx, codec, SenderConfig(rate_bytes_per_s=5e6)) as sender:
            assert sender._feedback_task is not None  # reading reports from the start
            sent = await sender.send_image(small_image)
        # Leaving flushed: every queued packet is on the wire, and the tasks are done.
        queued = sum(sent.packets.values())
        assert sender.packets_sent == queued == len(rx.inbox.drain())
        assert sender._pump_task.done() and sender._feedback_task.done()
        # On an error the block does not wait for the queue: it stops at once.
        slow = Sender(tx, codec, SenderConfig(rate_bytes_per_s=1000))
        with pytest.raises(RuntimeError):
            async with slow:
                await slow.send_image(small_image)
                raise RuntimeError("boom")
        assert slow._pump_task.done() and slow.packets_sent < queued
        await tx.close()

    asyncio.run(run())


def test_a_sender_whose_transport_closes_flushes_without_hanging(codec, small_image):
    async def run():
        tx, _ = memory_pair()
        async with Sender(tx, codec, SenderConfig(rate_bytes_per_s=1000)) as sender:
            await sender.send_image(small_image)
            await tx.close()
        return sender

    sender = asyncio.run(asyncio.wait_for(run(), 60))
    assert sender._pump_task.done() and sender.packets_sent <= 2


def test_a_frame_of_tier0_alone_gives_one_final_preview(codec, small_image):
    """A live fixed-coding frame goes as tier 0 alone where the receiver's picture would
    not use its indices; the header says so (``FLAG_NO_TIER1``), so its tier 0 completes
    it: the instant preview is its only update, and final, while the link stays open (no
    wait for the frame's timeout, no second copy of the same picture)."""

    async def run():
        tx, rx = memory_pair()
        sender = Sender(tx, codec, SenderConfig(rate_bytes_per_s=5e6, live=True))
        receiver = Receiver(rx, codec, ReceiverConfig(frame_timeout_s=60))
        async with receiver:
            await sender.send_image(small_image)
            await sender.flush()
            update = await asyncio.wait_for(receiver.__anext__(), 60)  # a safety net
            stats = receiver.stats
        await sender.close()
        return update, stats

    update, stats = asyncio.run(run())
    assert (update.stage, update.mode, update.final) == (Stage.PREVIEW, "continuous", True)
    assert stats["frames_open"] == 0 and stats["updates_waiting"] == 0


def test_report_watch_judges_only_a_receiver_it_heard():
    from hfstream.protocol.feedback import ReportWatch

    watch = ReportWatch(10.0)
    assert not watch.gone(1000.0) and watch.silent_for(1000.0) is None  # never heard
    watch.on_report(5.0)
    assert not watch.gone(14.9) and watch.gone(15.0) and watch.silent_for(15.0) == 10.0
    watch.on_report(15.0)
    assert not watch.gone(20.0)
    with pytest.raises(ValueError, match="timeout_s must be positive"):
        ReportWatch(0)


def test_a_sender_stops_once_its_receiver_stops_reporting(codec, small_image):
    from hfstream.stream.sender import ReceiverGone

    async def run():
        tx, rx = memory_pair()
        config = SenderConfig(rate_bytes_per_s=5e6, receiver_timeout_s=0.3)
        sender = Sender(tx, codec, config)
        async with Receiver(rx, codec, ReceiverConfig(feedback_interval_s=0.05)):
            await sender.send_image(small_image)
            while not sender.reports_received:  # heard once; the receiver then stops
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.4)  # longer than the timeout, without a report
        try:
            with pytest.raises(ReceiverGone) as e:
                await sender.send_image(small_image)
        finally:
            await sender.close()
        return e.value

    gone = asyncio.run(run())
    assert gone.silent_s >= 0.3 and gone.reports >= 1
    assert str(gone).startswith("no receiver report for ")


def test_each_stage_of_a_frame_comes_once(codec, small_image):
    """Every packet is in before the first decode: the instant preview is labelled by what
    it shows (tier 0 alone), not by the frame's stage, which comes with the next picture."""
    tx, rx = memory_pair()
    _, updates, _ = asyncio.run(stream(codec, small_image, tx, rx))
    stages = [u.stage for u in updates]
    assert (stages[0], updates[0].mode) == (Stage.PREVIEW, "continuous")
    assert len(stages) == len(set(stages)) and updates[-1].final
