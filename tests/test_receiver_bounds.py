"""The receiver's work and memory stay bounded, whatever arrives: regression tests for the
decode hang, the orphan leak and the growing lists, driven through the in-memory transport
with packets injected in one burst (deterministic: the burst is handled before any decode
task runs)."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest

from hfstream.codec.frame_coding import index_priors, packetize
from hfstream.protocol.auth import DATA, FEEDBACK, Sealer
from hfstream.protocol.packetizer import Packetizer, PacketizerConfig
from hfstream.protocol.reassembly import Reassembler, ReassemblerConfig
from hfstream.protocol.wire import Packet, PacketType, parse_header
from hfstream.stream.progressive import Stage
from hfstream.stream.receiver import Receiver, ReceiverConfig

SESSION = 0x65A1B2C3_00000001


@pytest.fixture(scope="module")
def one_patch(codec, small_image) -> dict[str, list[bytes]]:
    """The packets of a one-patch frame (frame id 0), by type, prior-coded, no parity."""
    enc = codec.encode(small_image[:, :256], "1_4")
    packetizer = Packetizer(codec.model_id, config=PacketizerConfig(parity_ratio=0))
    fp = packetize(enc, packetizer, frame_id=0, priors=index_priors(codec, enc))
    return {"tier0": fp.tier0, "tier1": fp.tier1, "tier2": fp.tier2}


def renumber(packet: bytes, frame_id: int) -> bytes:
    header, payload = parse_header(packet)
    return Packet(dataclasses.replace(header, frame_id=frame_id), payload).serialize()


async def run_burst(codec, burst: list[bytes], config: ReceiverConfig, timeout: float = 120):
    """Inject ``burst`` into a receiver's inbox at once, close, collect every update."""
    from hfstream.transports.memory import memory_pair

    tx, rx = memory_pair()
    receiver = Receiver(rx, codec, config)
    sealer = Sealer(None, DATA, SESSION)  # unkeyed, as the configs here are
    updates = []
    async with receiver:
        for p in burst:
            rx.inbox.put(sealer.seal(p))
        await tx.close()

        async def consume():
            async for u in receiver:
                updates.append(u)

        await asyncio.wait_for(consume(), timeout)
        stats = receiver.stats
    return updates, stats, receiver


def test_frame_evicted_before_its_decode_starts_still_ends_with_its_picture(codec, one_patch):
    # Frame 0's tier 0, then 8 newer frames in the same burst: with 8 frame slots frame 0
    # is evicted before its decode task runs (this raised KeyError and hung the iterator).
    burst = [one_patch["tier0"][0]] + [renumber(one_patch["tier0"][0], f) for f in range(1, 9)]
    config = ReceiverConfig(max_frames=8, feedback_interval_s=None)
    updates, stats, receiver = asyncio.run(run_burst(codec, burst, config))
    finals = {u.frame_id for u in updates if u.final}
    assert finals == set(range(9))
    assert all(u.stage == Stage.PREVIEW for u in updates)
    assert stats["decode_queue"] == 0 and stats["decode_caches"] == 0
    assert stats["tasks"] == 2  # receive loop and decoder, whatever the frame count
    assert receiver.decode_errors == 0


def test_index_packets_without_tier0_leave_no_state(codec, one_patch):
    # Tier-1 packets of 300 frames that never get tier 0 (what a lossy stream or a forger
    # sends): they used to pile up as orphans and dirty ids.
    burst = [renumber(p, f) for f in range(300) for p in one_patch["tier1"]]
    config = ReceiverConfig(max_frames=4, feedback_interval_s=None)
    updates, stats, receiver = asyncio.run(run_burst(codec, burst, config))
    assert updates == []
    assert receiver.reassembler.drops == {}  # every packet was well-formed
    assert stats["frames_open"] <= 4
    assert stats["decode_queue"] == 0 and stats["decode_caches"] == 0
    assert receiver.frames_expired == 296  # evicted, each counted once


def test_full_decode_queue_skips_the_oldest_frames(codec, one_patch):
    burst = [renumber(one_patch["tier0"][0], f) for f in range(6)]
    config = ReceiverConfig(max_frames=8, decode_queue=2, feedback_interval_s=None)
    updates, stats, receiver = asyncio.run(run_burst(codec, burst, config))
    # The burst is queued before the first decode: frames 0..3 gave way to the newest two.
    assert [u.frame_id for u in updates] == [4, 5]  # one picture each: tier 0 alone
    # Four skipped in the burst, and again when the transport's end offered each of them
    # a last decode: older frames never displace newer ones.
    assert receiver.decodes_skipped == 8
    assert stats["decode_caches"] == 0


def test_unread_updates_are_bounded(codec, one_patch):
    burst = [renumber(one_patch["tier0"][0], f) for f in range(3)]
    config = ReceiverConfig(max_updates=1, feedback_interval_s=None, instant_preview=False)

    async def main():
        from hfstream.transports.memory import memory_pair

        tx, rx = memory_pair()
        async with Receiver(rx, codec, config) as receiver:
            sealer = Sealer(None, DATA, SESSION)
            for p in burst:
                rx.inbox.put(sealer.seal(p))
            while not receiver.idle or not receiver.stats["updates_waiting"]:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            return receiver.stats, [u.frame_id async for u in _take(receiver, 1)]

    stats, taken = asyncio.run(main())
    assert stats["updates_waiting"] == 1 and stats["updates_dropped"] == 2
    assert taken == [2]  # the newest picture is the one kept


async def _take(receiver, n):
    for _ in range(n):
        yield await receiver.__anext__()


def test_declared_geometry_over_the_cap_is_dropped_at_the_header(one_patch):
    big = dataclasses.replace(parse_header(one_patch["tier0"][0])[0], height=16384, width=16384)
    forged = Packet(big, parse_header(one_patch["tier0"][0])[1]).serialize()
    r = Reassembler(ReassemblerConfig(big.model_id))
    (ev,) = r.receive(forged, 0.0)
    assert ev.reason == "geometry" and "16384x16384" in ev.message
    assert not r.frames
    small = Reassembler(ReassemblerConfig(big.model_id, max_frame_pixels=240 * 256 - 1))
    (ev,) = small.receive(one_patch["tier0"][0], 0.0)
    assert ev.reason == "geometry"
    assert len(Reassembler(ReassemblerConfig(big.model_id)).receive(one_patch["tier0"][0], 0)) == 2


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: PacketizerConfig(mtu=300), "mtu must be in 576..65507 bytes, got 300"),
        (lambda: PacketizerConfig(fec_block=33), "fec_block must be in 1..32, got 33"),
        (lambda: ReceiverConfig(max_frames=0), "max_frames must be at least 1, got 0"),
        (lambda: ReceiverConfig(decode_queue=0), "decode_queue must be at least 1, got 0"),
        (lambda: ReceiverConfig(frame_timeout_s=0), "frame_timeout_s must be positive"),
        (lambda: ReassemblerConfig(1, max_frame_pixels=0), "max_frame_pixels must be at least 1"),
        (lambda: ReassemblerConfig(1, mtu=10), "mtu must be in"),
    ],
)
def test_configs_are_checked_with_value_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_sender_config_and_pacer_are_checked_with_value_errors():
    from hfstream.protocol.pacer import Pacer
    from hfstream.stream.coding import PlannedCoding
    from hfstream.stream.sender import SenderConfig

    with pytest.raises(ValueError, match="rate_bytes_per_s must be positive, got 0"):
        SenderConfig(rate_bytes_per_s=0)
    with pytest.raises(ValueError, match="target_bytes_per_s must be positive, got -1"):
        SenderConfig(coding=PlannedCoding(target_bytes_per_s=-1))
    with pytest.raises(ValueError, match="rate must be positive"):
        Pacer(0)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda c: c.FixedCoding("1_5"), 'schedule must be one of auto, 0, 1_1, .*, got "1_5"'),
        (lambda c: c.FixedCoding(codebook_size=0), "codebook_size must be a positive number"),
        (lambda c: c.PlannedCoding(0), "target_bytes_per_s must be positive, got 0"),
        (lambda c: c.PlannedCoding(8000, fps=0), "fps must be positive, got 0"),
        (lambda c: c.PlannedCoding(8000, tier0_sends=0), "tier0_sends must be positive, got 0"),
    ],
)
def test_coding_configs_are_checked_up_front(make, message):
    from hfstream.stream import coding

    with pytest.raises(ValueError, match=message):
        make(coding)


def test_a_sender_refuses_a_coding_its_model_cannot_give(codec):
    from hfstream.stream.coding import FixedCoding
    from hfstream.stream.sender import Sender, SenderConfig
    from hfstream.transports.memory import memory_pair

    with pytest.raises(TypeError, match="coding must be a FixedCoding or a PlannedCoding"):
        SenderConfig(coding="1_4")  # type: ignore[arg-type]
    tx, _ = memory_pair()
    with pytest.raises(ValueError, match="codebook_size must be one of the model's"):
        Sender(tx, codec, SenderConfig(coding=FixedCoding(codebook_size=100)))


def test_sender_keeps_only_the_newest_reports(codec):
    from hfstream.protocol.feedback import Report
    from hfstream.stream.sender import Sender, SenderConfig
    from hfstream.transports.memory import memory_pair

    async def main():
        tx, rx = memory_pair()
        sender = Sender(tx, codec, SenderConfig(max_reports=4))
        sender.start()
        sealer = Sealer(None, FEEDBACK, sender.session_id)
        for n in range(50):
            report = Report(0.25, (n, 0, 0), (n, 0, 0), 0, 100)
            tx.inbox.put(sealer.seal(report.to_packet(codec.model_id, 0, n)))
        while sender.reports_received < 50:
            await asyncio.sleep(0.01)
        await sender.close()
        return sender

    sender = asyncio.run(main())
    assert len(sender.reports) == 4 and sender.reports_received == 50
    assert [r.expected[0] for r in sender.reports] == [46, 47, 48, 49]


def test_importing_the_codec_prints_no_torch_deprecation_warning():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-W", "default", "-c", "import hfstream.codec.hybrid"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "jit.script" not in out.stderr and "FutureWarning" not in out.stderr


def test_preview_picture_is_the_real_one(codec, one_patch, small_image):
    updates, _, _ = asyncio.run(
        run_burst(codec, one_patch["tier0"], ReceiverConfig(feedback_interval_s=None))
    )
    # Tier 0 alone, which ``auto`` shows as the continuous picture: the instant preview is
    # the frame's best picture, and its one update.
    (instant,) = updates
    enc = codec.encode(small_image[:, :256], "1_4").without_indices()
    assert np.array_equal(instant.image, codec.decode(enc))
    assert instant.mode == "continuous"
    assert np.array_equal(instant.image, codec.decode(enc, mode="continuous"))
    assert PacketType.TIER0 == 0


def test_the_preview_is_the_picture_when_auto_shows_tier0(codec, one_patch, monkeypatch):
    """With ``auto`` showing the continuous picture, a frame whose tier 0 was whole at the
    instant preview is decoded once and shown once."""
    calls = []
    decode = codec.decode

    def counting(enc, *args, **kwargs):
        calls.append(kwargs.get("mode"))
        return decode(enc, *args, **kwargs)

    monkeypatch.setattr(codec, "decode", counting)
    monkeypatch.setattr(codec, "index_gain_db", {"0": -1.0, "1_4": -1.0, "1_9": -1.0, "1_2": -1.0})
    updates, _, _ = asyncio.run(
        run_burst(codec, one_patch["tier0"], ReceiverConfig(feedback_interval_s=None))
    )
    (instant,) = updates  # the same picture is not shown twice
    assert instant.mode == "continuous"
    assert calls == ["continuous"]


def test_a_frame_whose_fallback_alone_arrived_is_shown(codec, small_image):
    from hfstream.codec.fallback import encode_fallback
    from hfstream.eval.metrics import psnr

    image = small_image[:240, :256]
    enc = encode_fallback(codec, image, codec.encode(image, "0"))
    fp = packetize(enc, Packetizer(codec.model_id), frame_id=0)
    updates, _, receiver = asyncio.run(
        run_burst(codec, fp.fallback, ReceiverConfig(feedback_interval_s=None))
    )
    assert updates and updates[-1].final and updates[-1].stage == Stage.PREVIEW
    assert receiver.decode_errors == 0
    grey = np.full_like(image, 128)
    assert psnr(image, updates[-1].image) > psnr(image, grey) + 3
