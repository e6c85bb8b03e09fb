"""VP8 / H.264 with NACK, resends within the latency budget, PLIs and forced key frames, on
a tiny synthetic clip with scripted losses."""

from __future__ import annotations

import re

import numpy as np
import pytest

from hfstream.protocol.wire import OVERHEAD
from sim.channel import mtu_chunks
from sim.loss import Bernoulli, NoLoss
from sim.video_channel import encode_clip, packet_bytes, video_deliver
from sim.webrtc_video import ForcedKeyEncoder, resend_rounds, webrtc_deliver

MTU = 300  # small pieces: a frame of the tiny clip takes several packets
RATE = 400_000


class LoseDraws:
    """A scripted loss model: the packets at these positions in sending order are lost."""

    def __init__(self, *lost: int) -> None:
        self.lost_at, self.draws = set(lost), 0

    def lost(self) -> bool:
        self.draws += 1
        return self.draws - 1 in self.lost_at


def moving_gradient(frames: int = 8, height: int = 64, width: int = 96) -> list[np.ndarray]:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    return [
        np.stack(
            [127 + 100 * np.sin((xx + 5 * t) / 9), 127 + 100 * np.cos((yy - 3 * t) / 7), xx + yy],
            axis=-1,
        )
        .clip(0, 255)
        .astype(np.uint8)
        for t in range(frames)
    ]


@pytest.fixture(scope="module")
def clip():
    return moving_gradient()


def encoder(clip, codec: str) -> ForcedKeyEncoder:
    return ForcedKeyEncoder(clip, codec, bitrate=RATE, fps=10, gop=30)


def pieces(enc: ForcedKeyEncoder, frames: range) -> int:
    """Packets of these frames in the run that forced no key frame."""
    return sum(len(mtu_chunks(enc.frame(i, ())[0], MTU)) for i in frames)


def is_intra(codec: str, data: bytes) -> bool:
    """Read from the bitstream: a VP8 key frame, or an H.264 access unit with an IDR slice."""
    if codec == "vp8":
        return data[0] & 1 == 0  # the frame tag's first bit: 0 for a key frame
    return any(data[m.end()] & 0x1F == 5 for m in re.finditer(b"\x00\x00\x01", data))


def test_resend_rounds_fit_the_budget():
    assert resend_rounds(100, 200) == 1
    assert resend_rounds(100, 50) == 0
    assert resend_rounds(100, 350) == 3
    assert resend_rounds(40, 100) == 2
    with pytest.raises(ValueError, match="under the one-way delay"):
        resend_rounds(100, 40)
    with pytest.raises(ValueError, match="round trip must be positive"):
        resend_rounds(0, 100)


@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_without_loss_the_pictures_are_the_no_recovery_paths(clip, codec):
    coded = encode_clip(clip, codec, RATE, fps=10, gop=30)
    plain = video_deliver(clip, codec, 0, NoLoss(), mtu=MTU, coded=coded)
    d = webrtc_deliver(encoder(clip, codec), NoLoss(), mtu=MTU)
    assert all(np.array_equal(a, b) for a, b in zip(d.shown, plain.shown, strict=True))
    assert all(d.fresh) and d.delay_ms == [50.0] * len(clip)
    assert d.bytes_sent == packet_bytes(coded, MTU) == sum(d.frame_bytes)
    assert d.key_frames == [0] and d.resends == d.plis == d.packets_lost == 0


@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_a_packet_resent_in_time_keeps_the_frame(clip, codec):
    enc = encoder(clip, codec)
    first = pieces(enc, range(3))  # frame 3's first packet
    d = webrtc_deliver(enc, LoseDraws(first), mtu=MTU)
    assert all(d.fresh) and d.resends == 1 and d.plis == 0
    # Resent one round trip later, it arrives at capture + 50 + 100 ms; frame 4, captured
    # 100 ms after frame 3, arrives just as frame 3 is shown.
    assert d.delay_ms == [50.0, 50.0, 50.0, 150.0, 50.0, 50.0, 50.0, 50.0]
    data = enc.frame(3, ())[0]
    resent = len(mtu_chunks(data, MTU)[0]) + OVERHEAD
    assert d.frame_bytes[3] == len(data) + OVERHEAD * pieces(enc, range(3, 4)) + resent
    clean = webrtc_deliver(enc, NoLoss(), mtu=MTU)
    assert all(np.array_equal(a, b) for a, b in zip(d.shown, clean.shown, strict=True))


@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_a_frame_past_the_budget_freezes_until_the_key_frame_of_the_pli(clip, codec):
    enc = encoder(clip, codec)
    first = pieces(enc, range(2))  # frame 2's first packet, then its resend (sent at t=300,
    resend = pieces(enc, range(3))  # before frame 3's packets): both lost
    d = webrtc_deliver(enc, LoseDraws(first, resend), mtu=MTU)
    # Frame 2 misses its deadline (t=400): PLI, at the sender at 450, so frame 5 (t=500)
    # is coded as a key frame; frames 2-4 freeze on frame 1.
    assert d.fresh == [True, True, False, False, False, True, True, True]
    assert d.plis == 1 and d.key_frames == [0, 5] and d.resends == 1
    assert all(np.array_equal(d.shown[k], d.shown[1]) for k in (2, 3, 4))
    assert d.delay_ms == [50.0, 50.0, None, None, None, 50.0, 50.0, 50.0]
    assert is_intra(codec, enc.frame(5, (5,))[0]) and not is_intra(codec, enc.frame(5, ())[0])
    # The key frame restarts the picture: frame 5 on is as sharp as without loss.
    clean = webrtc_deliver(enc, NoLoss(), mtu=MTU)
    for k in (5, 6, 7):
        assert np.abs(d.shown[k].astype(int) - clean.shown[k]).mean() < 3


def test_a_lost_first_key_frame_shows_grey_and_asks_again(clip):
    enc = encoder(clip, "vp8")
    d = webrtc_deliver(enc, LoseDraws(0, pieces(enc, range(1))), mtu=MTU)
    assert d.fresh == [False, False, False, True, True, True, True, True]
    assert (d.shown[0] == 128).all() and d.key_frames == [0, 3] and d.plis == 1


def test_runs_are_deterministic_and_share_the_encoder_cache(clip):
    enc = encoder(clip, "h264")
    runs = [
        webrtc_deliver(enc, Bernoulli(0.3, np.random.default_rng(7)), mtu=MTU) for _ in range(2)
    ]
    fresh_encoder = webrtc_deliver(
        encoder(clip, "h264"), Bernoulli(0.3, np.random.default_rng(7)), mtu=MTU
    )
    for d in (runs[1], fresh_encoder):
        assert d.fresh == runs[0].fresh and d.frame_bytes == runs[0].frame_bytes
        assert d.key_frames == runs[0].key_frames and d.delay_ms == runs[0].delay_ms
        assert all(np.array_equal(a, b) for a, b in zip(d.shown, runs[0].shown, strict=True))
    assert runs[0].packets_lost > 0


def test_a_key_frame_cannot_be_forced_in_the_future(clip):
    with pytest.raises(ValueError, match="forced at 3"):
        encoder(clip, "vp8").frame(2, (3,))
    with pytest.raises(ValueError, match='Invalid video codec "av1"'):
        ForcedKeyEncoder(clip, "av1", bitrate=RATE, fps=10, gop=30)
