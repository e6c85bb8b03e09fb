"""``hfstream recv``'s bookkeeping without a network: counting frames from a late join,
the video's timeline, the summary, and the line that says why no picture arrived."""

import asyncio
from pathlib import Path

import numpy as np

from hfstream.apps.drops import why_no_picture
from hfstream.apps.stream import _Stream, _summary
from hfstream.stream.collect import FrameRecord, capture_fps, on_timeline
from hfstream.stream.progressive import Stage
from hfstream.stream.receiver import FrameUpdate, Receiver, ReceiverConfig
from hfstream.stream.sender import Sender, SenderConfig
from hfstream.transports.memory import memory_pair

START = 1_700_000_000.0  # a capture time (unix seconds)


def update(frame_id, *, final=True, at=None, value=0, stage=Stage.FULL):
    image = np.full((4, 6, 3), value, np.uint8)
    captured = START + frame_id / 5 if at is None else at
    return FrameUpdate(frame_id, stage, image, {}, 0.01, final, 0.02, "hybrid", captured)


def test_a_late_live_receiver_counts_frames_from_its_first_picture():
    stream = _Stream(Path("."))
    stream.add(update(42, final=False), live=True, session=1)
    assert stream.finals == 0  # frames 0..41 came before this receiver started
    stream.add(update(42), live=True, session=1)
    assert stream.finals == 1
    stream.add(update(45, final=False), live=True, session=1)  # 43 and 44 skipped or lost
    assert stream.finals == 3
    wrapped = _Stream(Path("."))
    wrapped.add(update(0xFFFFFFFF), live=True, session=1)
    wrapped.add(update(0), live=True, session=1)  # ids wrap: the next frame
    assert wrapped.finals == 2


def records(*updates):
    return {u.frame_id: FrameRecord.first(u) for u in updates}


def test_the_video_starts_at_the_first_frame_received_and_keeps_capture_time():
    # Frames 40, 41 and 44 of a 5 fps stream: no grey frames for 0..39, and the two
    # missing slots (42, 43: skipped by a live sender, or lost) repeat frame 41.
    got = records(update(40, value=40), update(41, value=41), update(44, value=44))
    assert capture_fps(got.values()) == 5.0
    pictures = on_timeline(got, 5.0)
    assert [int(p[0, 0, 0]) for p in pictures] == [40, 41, 41, 41, 44]


def test_the_frame_rate_comes_from_whole_ms_capture_times():
    times = [START + round(i * 1000 / 30) / 1000 for i in (0, 1, 2, 4, 7, 30)]
    got = records(*(update(i, at=t) for i, t in enumerate(times)))
    assert capture_fps(got.values()) == 30.0
    assert capture_fps(records(update(0)).values()) is None  # one frame tells no rate


def test_a_run_that_is_not_live_says_nothing_of_live_skips(capsys):
    stream = _Stream(Path("out"))
    stream.add(update(0), live=False, session=1)
    _summary(stream, [], {}, [], live=False)
    assert "skipped" not in capsys.readouterr().out
    _summary(stream, [], {}, [], live=True)
    assert "0 frame(s) skipped (live mode" in capsys.readouterr().out


def test_why_no_picture_names_the_reason_most_packets_were_dropped_for():
    assert why_no_picture({}, {}) is None
    assert why_no_picture({"auth": 40, "truncated": 1}, {}) == (
        "no picture arrived: 40 of 41 packets failed authentication: wrong --key, or a key "
        "on one side only?"
    )
    message = "packet for model 0000abcd, this receiver decodes c3f27db3"
    assert why_no_picture({"model": 9}, {"model": message}) == (
        f"no picture arrived: 9 of 9 packets were for another model: {message}: use the same "
        "--model on both sides"
    )
    assert why_no_picture({"geometry": 2}, {"geometry": "frame size 0x0"}) == (
        "no picture arrived: 2 of 2 packets were dropped as geometry: frame size 0x0"
    )


def test_a_receiver_with_another_key_counts_every_packet_as_auth(codec, small_image):
    async def run():
        tx, rx = memory_pair()
        sender = Sender(tx, codec, SenderConfig(key=b"s" * 16))
        receiver = Receiver(rx, codec, ReceiverConfig(key=b"r" * 16))
        async with receiver:
            await sender.send_image(small_image)
            await sender.flush()
            await tx.close()
            async for _ in receiver:
                raise AssertionError("no picture can come")
        await sender.close()
        return receiver, sender.packets_sent

    receiver, sent = asyncio.run(run())
    assert receiver.drops == {"auth": sent}
    assert why_no_picture(receiver.drops, receiver.drop_messages).startswith(
        f"no picture arrived: {sent} of {sent} packets failed authentication: wrong --key"
    )
