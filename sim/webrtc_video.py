"""VP8 / H.264 sent as WebRTC sends them: NACK and resend within a latency budget, and a key
frame on request (PLI) when a frame misses it.

The model, times in ms, frame ``i`` captured at ``t_i = 1000 i / fps``:

- The sender codes each frame when it is captured (real-time settings, the
  ``ENCODER_OPTIONS`` of ``sim.video_channel``) and sends its MTU pieces at once; they
  arrive one way later, ``rtt/2``. Every packet, first send or resend, meets the loss
  model in the order the packets leave the sender; resends due at a capture instant leave
  before the new frame's packets (a pacer sends retransmissions first).
- The receiver sees a lost packet at once (the gap in sequence numbers) and NACKs it: the
  resend leaves one round trip after the copy it replaces and arrives at
  ``t_i + rtt/2 + k rtt`` for the k-th resend. A frame must be shown by
  ``t_i + latency_ms``, so a packet gets at most ``K = floor((latency - rtt/2) / rtt)``
  resends (``resend_rounds``): 1 at the defaults, 100 ms RTT and a 200 ms budget. The
  receiver NACKs every lost packet while that allows, even in a frame it will drop for a
  broken reference chain (a real one stops sooner; here that only adds resent bytes).
- A frame whose packets are all in is shown when its last packet arrives, or when the
  frame before it was shown if that is later (decoding is in order). Its capture-to-display
  delay is then ``rtt/2 + k rtt``, k its slowest packet's resends (or more, waiting).
- A frame still missing a packet at its deadline cannot be decoded, nor can any frame
  after it up to the next key frame (a jitter buffer passes no frame whose reference chain
  is broken). At that deadline the receiver sends a PLI; it reaches the sender ``rtt/2``
  later, and the first frame captured at or after that is coded as a key frame (an IDR
  for H.264, checked on the packet). Only a frame the decoder was waiting for asks: a
  dropped P frame does not, a lost key frame asks again.
- A frame with nothing to show freezes on the last picture shown (mid-grey before any);
  it has no delay of its own.

The bitrate is searched (``fit_bitrate``) for the clip without loss to fit the budget over
``1 + loss rate``, leaving room for the resends as a congestion controller does when it
backs off under loss; the bytes reported are those really sent, resends included.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from av.video.frame import PictureType

from hfstream.protocol.wire import OVERHEAD
from sim.channel import mtu_chunks
from sim.loss import LossModel
from sim.video_channel import ClipDelivery, decode_clip, open_encoder, yuv_frame

# FFmpeg's libx264 wrapper has made a forced I frame a plain (non-IDR) I frame in some
# versions: later frames could then still refer to pictures before it.
KEY_OPTIONS = {"vp8": {}, "h264": {"forced-idr": "1"}}
_CLOSE = 1e-6  # ms: times are sums of floats; equal instants must compare equal


@dataclass(frozen=True)
class WebRtcDelivery(ClipDelivery):
    """What the receiver shows of a clip sent with NACK and PLI, with each frame's delay
    and bytes."""

    # ``delay_ms`` (``ClipDelivery``): capture to display of each fresh frame; None: frozen
    #: bytes on the wire for each frame, resends and headers included
    frame_bytes: list[int] = field(default_factory=list)
    #: frames coded as key frames: the first, the GOP's, the PLIs'
    key_frames: list[int] = field(default_factory=list)
    resends: int = 0
    plis: int = 0


class ForcedKeyEncoder:
    """A clip coded frame by frame in real time, with a key frame wherever one is asked for.

    A coded frame depends only on the key frames forced up to it, so frames are cached by
    (frame, forced key frames): runs of a clip that force the same key frames share their
    coded frames. One live encoder follows the run being asked for; a request it cannot
    continue (another key frame forced, or a new frame after cached ones) starts a new
    encoder and re-codes the clip up to there, as an encoder's state cannot be copied.
    """

    def __init__(
        self, frames: Sequence[np.ndarray], codec: str, *, bitrate: int, fps: int, gop: int
    ) -> None:
        if codec not in KEY_OPTIONS:
            raise ValueError(f'Invalid video codec "{codec}", should be one of {list(KEY_OPTIONS)}')
        self.frames, self.codec = frames, codec
        self.bitrate, self.fps, self.gop = bitrate, fps, gop
        self._cache: dict[tuple[int, tuple[int, ...]], tuple[bytes, bool]] = {}
        self._live = None  # the live encoder
        self._live_forced: tuple[int, ...] = ()  # the key frames it was asked to force
        self._live_next = 0  # the frame it codes next

    def frame(self, i: int, forced: tuple[int, ...]) -> tuple[bytes, bool]:
        """Frame ``i`` coded and whether it is a key frame, in the run that forced key
        frames at ``forced`` (ascending, none after ``i``)."""
        if forced and forced[-1] > i:
            raise ValueError(f"frame {i} cannot depend on a key frame forced at {forced[-1]}")
        if (i, forced) in self._cache:
            return self._cache[(i, forced)]
        before = tuple(f for f in forced if f < i)
        if self._live is None or self._live_next != i or self._live_forced != before:
            self._live = open_encoder(
                self.codec,
                self.frames[0].shape,
                self.bitrate,
                self.fps,
                self.gop,
                extra_options=KEY_OPTIONS[self.codec],
            )
            self._live_next = 0
        self._live_forced = forced
        while self._live_next <= i:
            self._code_next()
        return self._cache[(i, forced)]

    def _code_next(self) -> None:
        j = self._live_next
        frame = yuv_frame(self.frames[j], j)
        force = j in self._live_forced
        if force:
            frame.pict_type = PictureType.I
        packets = self._live.encode(frame)
        if len(packets) != 1:
            raise RuntimeError(f"{self.codec} gave {len(packets)} packets for frame {j}")
        if force and not packets[0].is_keyframe:
            raise RuntimeError(f"{self.codec} coded no key frame at frame {j} when forced")
        key = tuple(f for f in self._live_forced if f <= j)
        self._cache[(j, key)] = (bytes(packets[0]), bool(packets[0].is_keyframe))
        self._live_next += 1


def resend_rounds(rtt_ms: float, latency_ms: float) -> int:
    """How many times a lost packet can be resent and still arrive within ``latency_ms``
    of its frame's capture: ``floor((latency - rtt/2) / rtt)``."""
    if rtt_ms <= 0:
        raise ValueError(f"the round trip must be positive, got {rtt_ms} ms")
    if latency_ms < rtt_ms / 2:
        raise ValueError(f"a {latency_ms} ms budget is under the one-way delay {rtt_ms / 2} ms")
    return math.floor((latency_ms - rtt_ms / 2) / rtt_ms + _CLOSE)


@dataclass
class _Sent:
    """One frame on its way: its pieces' sizes and how far their sends have gone."""

    capture_ms: float
    key: bool
    sizes: list[int]
    missing: int  # pieces not in yet
    queued: int = 0  # resends scheduled and not yet sent
    rounds: int = 0  # resends the slowest piece in needed
    bytes: int = 0
    lost: int = 0
    resends: int = 0


@dataclass
class _Receiver:
    """The jitter buffer's verdicts, frame by frame in order, and the PLIs they send."""

    one_way: float
    rtt: float
    latency: float
    chain_ok: bool = False  # the decoder holds an unbroken chain of references
    shown_at: float = -math.inf  # when the last frame decoded was shown
    key_due: float = math.inf  # when the pending PLI reaches the sender
    plis: int = 0
    decodable: list[bool] = field(default_factory=list)
    delays: list[float | None] = field(default_factory=list)

    def settle(self, sent: _Sent) -> None:
        complete = sent.missing == 0
        if complete and sent.key:
            self.chain_ok = True
        if complete and self.chain_ok:
            arrived = sent.capture_ms + self.one_way + sent.rounds * self.rtt
            self.shown_at = max(arrived, self.shown_at)
            self.decodable.append(True)
            self.delays.append(self.shown_at - sent.capture_ms)
            return
        self.decodable.append(False)
        self.delays.append(None)
        if not complete and (self.chain_ok or sent.key):
            self.chain_ok = False
            self.plis += 1
            pli = sent.capture_ms + self.latency + self.one_way
            self.key_due = min(self.key_due, pli)


def webrtc_deliver(
    encoder: ForcedKeyEncoder,
    loss: LossModel,
    *,
    mtu: int = 1200,
    rtt_ms: float = 100.0,
    latency_ms: float = 200.0,
) -> WebRtcDelivery:
    """The clip of ``encoder`` sent over ``loss`` with NACK, resends and PLIs (the model
    of this module's docstring); deterministic for a given loss model and seed."""
    limit = resend_rounds(rtt_ms, latency_ms)
    rx = _Receiver(rtt_ms / 2, rtt_ms, latency_ms)
    sent: list[_Sent] = []
    coded: list[bytes] = []
    forced: list[int] = []
    resends: list[tuple[float, int, int, int]] = []  # (leaves at, frame, piece, round)

    def send(i: int, piece: int, round_: int, now: float) -> None:
        s = sent[i]
        s.bytes += s.sizes[piece] + OVERHEAD
        s.resends += int(round_ > 0)
        if not loss.lost():
            s.missing -= 1
            s.rounds = max(s.rounds, round_)
        elif round_ < limit:
            s.lost += 1
            s.queued += 1
            heapq.heappush(resends, (now + rtt_ms, i, piece, round_ + 1))
        else:
            s.lost += 1

    def until(now: float) -> None:
        """Every resend that leaves by ``now``, then the verdict on every frame (in
        order) with nothing left to send."""
        while resends and resends[0][0] <= now + _CLOSE:
            at, i, piece, round_ = heapq.heappop(resends)
            sent[i].queued -= 1
            send(i, piece, round_, at)
        while len(rx.decodable) < len(sent) and sent[len(rx.decodable)].queued == 0:
            rx.settle(sent[len(rx.decodable)])

    period = 1000.0 / encoder.fps
    for i in range(len(encoder.frames)):
        now = i * period
        until(now)
        if rx.key_due <= now + _CLOSE:
            forced.append(i)
            rx.key_due = math.inf
        data, key = encoder.frame(i, tuple(forced))
        sizes = [len(c) for c in mtu_chunks(data, mtu)]
        coded.append(data)
        sent.append(_Sent(now, key, sizes, missing=len(sizes)))
        for piece in range(len(sizes)):
            send(i, piece, 0, now)
    until(math.inf)
    shown, fresh = decode_clip(coded, rx.decodable, encoder.codec, encoder.frames[0].shape)
    frame_bytes = [s.bytes for s in sent]
    n_resends = sum(s.resends for s in sent)
    keys = [i for i, s in enumerate(sent) if s.key]
    return WebRtcDelivery(
        shown=shown,
        fresh=fresh,
        bytes_sent=sum(frame_bytes),
        packets_sent=sum(len(s.sizes) for s in sent) + n_resends,
        packets_lost=sum(s.lost for s in sent),
        detail=f"{n_resends} resends, {rx.plis} PLIs, key frames {keys}",
        delay_ms=[d if f else None for d, f in zip(rx.delays, fresh, strict=True)],
        frame_bytes=frame_bytes,
        key_frames=keys,
        resends=n_resends,
        plis=rx.plis,
    )
