"""A video clip through a lossy channel: VP8 / H.264 (PyAV) against hfstream, frame by frame.

The video codecs encode the whole clip in real-time mode (no B-frames, no look-ahead, a
key frame every ``gop`` frames) at a bitrate searched so that the bytes sent, the 56-byte
per-packet header included, fit the same budget as hfstream's. Each coded frame is cut
into MTU-sized packets; a frame any of whose packets is lost is removed before decoding
(no partial frames: the decoder never sees a truncated payload). The decoder then runs
on what is left, with FFmpeg's own error concealment for frames whose references are
missing. A frame the decoder gives no picture for is shown as the last picture shown
(a freeze), or mid-grey before any.

hfstream sends every frame on its own (intra only) through the real packetizer and
reassembler at the same per-frame budget; it never waits for a key frame.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from PIL import Image

from hfstream.codec.hybrid import HybridCodec
from hfstream.protocol.wire import OVERHEAD, TAG_SIZE
from sim.channel import FALLBACK_GREY, hfstream_packets, hfstream_receive, mtu_chunks
from sim.loss import LossModel

VIDEO_CODECS = {"vp8": ("libvpx", "vp8"), "h264": ("libx264", "h264")}
ENCODER_OPTIONS = {
    "vp8": {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "error-resilient": "1"},
    "h264": {"preset": "veryfast", "tune": "zerolatency"},
}


@dataclass(frozen=True)
class ClipDelivery:
    shown: list[np.ndarray]  # what the receiver displays for each source frame
    fresh: list[bool]  # False: the decoder gave nothing new for this frame (frozen or grey)
    bytes_sent: int
    packets_sent: int
    packets_lost: int
    detail: str
    #: capture to display of each frame, ms (None: frozen); None: not modelled
    delay_ms: list[float | None] | None = None


def pan_clip(image: np.ndarray, frames: int, height: int, width: int) -> list[np.ndarray]:
    """A camera pan across a photo: a ``height`` x ``width`` window sliding diagonally
    over ``image`` (scaled up if it is smaller), one window per frame."""
    h, w = image.shape[:2]
    if h < height or w < width:
        scale = max(height / h, width / w)
        size = (int(np.ceil(w * scale)), int(np.ceil(h * scale)))
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))
        h, w = image.shape[:2]
    xs = np.linspace(0, w - width, frames).round().astype(int)
    ys = np.linspace(0, h - height, frames).round().astype(int)
    windows = zip(xs, ys, strict=True)
    return [np.ascontiguousarray(image[y : y + height, x : x + width]) for x, y in windows]


# ---------------------------------------------------------------- VP8 / H.264
def open_encoder(
    codec: str,
    shape: tuple[int, ...],
    bitrate: int,
    fps: int,
    gop: int,
    *,
    extra_options: dict[str, str] | None = None,
) -> av.CodecContext:
    """A real-time encoder (``ENCODER_OPTIONS``, no B-frames) for frames of ``shape``."""
    if codec not in VIDEO_CODECS:
        raise ValueError(f'Invalid video codec "{codec}", should be one of {list(VIDEO_CODECS)}')
    h, w = shape[:2]
    if h % 2 or w % 2:
        raise ValueError(f"frame size {w}x{h} must be even for yuv420p")
    ctx = av.CodecContext.create(VIDEO_CODECS[codec][0], "w")
    ctx.width, ctx.height, ctx.pix_fmt = w, h, "yuv420p"
    ctx.time_base = Fraction(1, fps)
    ctx.framerate = Fraction(fps, 1)
    ctx.bit_rate = bitrate
    ctx.gop_size = gop
    ctx.max_b_frames = 0
    ctx.options = {**ENCODER_OPTIONS[codec], **(extra_options or {})}
    return ctx


def yuv_frame(arr: np.ndarray, pts: int) -> av.VideoFrame:
    """An rgb24 picture as the yuv420p frame the encoders take."""
    frame = av.VideoFrame.from_ndarray(arr, format="rgb24").reformat(format="yuv420p")
    frame.pts = pts
    return frame


def encode_clip(
    frames: Sequence[np.ndarray], codec: str, bitrate: int, fps: int, gop: int
) -> list[bytes]:
    """One coded frame per source frame, in order (real-time settings: no reordering)."""
    ctx = open_encoder(codec, frames[0].shape, bitrate, fps, gop)
    out: list[bytes] = []
    for i, arr in enumerate(frames):
        out.extend(bytes(p) for p in ctx.encode(yuv_frame(arr, i)))
    out.extend(bytes(p) for p in ctx.encode(None))
    if len(out) != len(frames):
        raise RuntimeError(f"{codec} gave {len(out)} packets for {len(frames)} frames")
    return out


def packet_bytes(coded: Sequence[bytes], mtu: int) -> int:
    """Bytes on the wire: the coded frames cut at the MTU, each piece with its header."""
    return sum(len(c) + OVERHEAD * len(mtu_chunks(c, mtu)) for c in coded)


def fit_bitrate(
    frames: Sequence[np.ndarray], codec: str, budget: int, fps: int, gop: int, mtu: int
) -> tuple[list[bytes], int]:
    """The highest bitrate (searched by bisection) whose clip fits ``budget`` bytes."""
    seconds = len(frames) / fps
    nominal = int(8 * budget / seconds)
    lo, hi = nominal // 8, nominal * 2
    best: tuple[list[bytes], int] | None = None
    for _ in range(10):
        mid = (lo + hi) // 2
        coded = encode_clip(frames, codec, mid, fps, gop)
        if packet_bytes(coded, mtu) <= budget:
            best, lo = (coded, mid), mid
        else:
            hi = mid
        if hi - lo < nominal // 50:
            break
    if best is None:  # even the lowest rate overshoots: send the lowest and say so
        return encode_clip(frames, codec, lo, fps, gop), lo
    return best


def decode_clip(
    coded: Sequence[bytes], received: Sequence[bool], codec: str, shape: tuple[int, ...]
) -> tuple[list[np.ndarray], list[bool]]:
    """Decode the frames that arrived whole; freeze on the last picture otherwise."""
    ctx = av.CodecContext.create(VIDEO_CODECS[codec][1], "r")
    ctx.options = {"ec": "favor_inter+guess_mvs+deblock"} if codec == "h264" else {}
    last = np.full(shape, FALLBACK_GREY, np.uint8)
    shown: list[np.ndarray] = []
    fresh: list[bool] = []
    for data, ok in zip(coded, received, strict=True):
        pictures = []
        if ok:
            try:
                pictures = ctx.decode(av.Packet(data))
            except av.error.FFmpegError:  # broken references: nothing to show
                pictures = []
        if pictures:
            last = pictures[-1].to_ndarray(format="rgb24")
        shown.append(last)
        fresh.append(bool(pictures))
    return shown, fresh


def video_deliver(
    frames: Sequence[np.ndarray],
    codec: str,
    budget_per_frame: int,
    loss: LossModel,
    fps: int = 10,
    gop: int = 30,
    mtu: int = 1200,
    coded: list[bytes] | None = None,
) -> ClipDelivery:
    """VP8 or H.264 over the channel. ``coded`` skips the bitrate search when the caller
    already holds the clip coded for this budget (from ``fit_bitrate``)."""
    detail = ""
    if coded is None:
        coded, rate = fit_bitrate(frames, codec, budget_per_frame * len(frames), fps, gop, mtu)
        detail = f"{rate / 1000:.0f} kbit/s gop {gop}"
    received, sent, lost = [], 0, 0
    for c in coded:
        pieces = mtu_chunks(c, mtu)
        fates = [loss.lost() for _ in pieces]
        sent += len(pieces)
        lost += sum(fates)
        received.append(not any(fates))
    shown, fresh = decode_clip(coded, received, codec, frames[0].shape)
    return ClipDelivery(shown, fresh, packet_bytes(coded, mtu), sent, lost, detail)


# ---------------------------------------------------------------- hfstream
def hfstream_clip_packets(
    codec: HybridCodec,
    frames: Sequence[np.ndarray],
    budget_per_frame: int,
    fec: bool = True,
    loss: float = 0.0,
) -> tuple[list[list[bytes]], str]:
    """Each frame coded on its own and packetized within the per-frame budget, planned for
    the loss rate ``loss``; also the plans chosen (with how many frames got each)."""
    out, chosen = [], Counter()
    for f in frames:
        packets, detail = hfstream_packets(codec, f, budget_per_frame, "hybrid", fec, loss)
        out.append(packets)
        chosen[detail] += 1
    return out, "intra; " + ", ".join(f"{d} x{n}" for d, n in chosen.most_common())


def hfstream_clip_deliver(
    codec: HybridCodec,
    frames: Sequence[np.ndarray],
    packets: Sequence[list[bytes]],
    loss: LossModel,
    decode_cache: dict | None = None,
    progress: Callable[[], None] | None = None,
    detail: str = "intra",
) -> ClipDelivery:
    """hfstream frame by frame over the channel (``packets`` from
    ``hfstream_clip_packets``). ``decode_cache`` reuses the picture of a frame whose
    same packets arrived in an earlier run."""
    cache = {} if decode_cache is None else decode_cache
    last = np.full(frames[0].shape, FALLBACK_GREY, np.uint8)
    shown, fresh, sent, lost = [], [], 0, 0
    for i, frame_packets in enumerate(packets):
        fates = [loss.lost() for _ in frame_packets]
        sent += len(frame_packets)
        lost += sum(fates)
        key = (i, tuple(fates))
        if key not in cache:
            arrived = [p for p, f in zip(frame_packets, fates, strict=True) if not f]
            cache[key] = hfstream_receive(codec, arrived, frames[i].shape, "hybrid")
        img, ok = cache[key]
        if ok:
            last = img
        shown.append(last)
        fresh.append(ok)
        if progress is not None:
            progress()
    total = sum(len(p) + TAG_SIZE for fp in packets for p in fp)  # as sealed
    return ClipDelivery(shown, fresh, total, sent, lost, detail)
