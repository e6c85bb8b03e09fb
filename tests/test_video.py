"""30 video frames end to end, and the PyAV reader and writer."""

import asyncio

import numpy as np
import pytest

from hfstream.media.video import VideoWriter, pattern_frames, read_frames
from hfstream.stream.coding import FixedCoding
from hfstream.stream.collect import collect_frames, in_order
from hfstream.stream.receiver import Receiver, ReceiverConfig
from hfstream.stream.sender import Sender, SenderConfig
from hfstream.transports.memory import memory_pair


def test_pattern_frames_differ():
    frames = list(pattern_frames(3, 64, 96))
    assert frames[0].shape == (64, 96, 3) and frames[0].dtype == np.uint8
    assert not np.array_equal(frames[0], frames[1])


@pytest.mark.slow  # 30 frames encoded and decoded; test_stream covers one in the fast suite
def test_thirty_frames_end_to_end(codec, tmp_path):
    frames = list(pattern_frames(30, 256, 256))

    async def main():
        tx, rx = memory_pair()
        sender = Sender(tx, codec, SenderConfig(rate_bytes_per_s=1e6, coding=FixedCoding("1_4")))
        receiver = Receiver(rx, codec, ReceiverConfig(max_frames=32))
        async with receiver:
            collector = asyncio.create_task(collect_frames(receiver, 30, idle_timeout_s=20))
            sent = await sender.send_frames(frames, fps=15)
            await sender.flush()
            records = await collector
        await sender.close()
        return sent, records

    sent, records = asyncio.run(main())
    assert len(sent) == 30
    assert sorted(records) == list(range(30))
    assert all(r.image is not None and r.image.shape == (256, 256, 3) for r in records.values())
    out = tmp_path / "received.mp4"
    with VideoWriter(out, fps=15) as w:
        for img in in_order(records, 30, (256, 256, 3)):
            w.write(img)
    back = list(read_frames(out))
    assert len(back) == 30 and back[0].shape == (256, 256, 3)


def test_bad_video_file(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    try:
        list(read_frames(bad))
    except ValueError as e:
        assert "cannot open video" in str(e)
    else:
        raise AssertionError("expected ValueError")


def test_a_faster_clip_is_sampled_by_timestamp():
    from hfstream.media.video import sample_frames

    at_25 = [(i / 25, i) for i in range(26)]  # one second of a 25 fps clip
    assert list(sample_frames(at_25, 10)) == [0, 3, 5, 8, 10, 13, 15, 18, 20, 23, 25]
    assert list(sample_frames(at_25, 25)) == list(range(26))
    assert list(sample_frames(at_25, 50)) == list(range(26))  # never repeated


def test_send_samples_a_25_fps_clip_at_10_fps(tmp_path):
    import argparse

    from hfstream.apps.stream import _frames

    clip = tmp_path / "clip.mp4"
    with VideoWriter(clip, fps=25) as w:
        for frame in pattern_frames(25, 64, 96):
            w.write(frame)
    args = argparse.Namespace(input=str(clip), fps=10.0, frames=None, max_megapixels=16.0)
    frames, fps = _frames(args)
    assert fps == 10.0 and len(list(frames)) == 10  # one second, at 10 fps
    args.fps = 50.0
    frames, fps = _frames(args)
    assert fps == 25.0 and len(list(frames)) == 25  # a slower clip keeps its own rate
