"""``hfstream send`` and ``hfstream recv``: stream an image or a video over UDP or WebRTC.

    hfstream recv --listen 127.0.0.1:5000 --out out/recv            # start first
    hfstream send photo.png --to 127.0.0.1:5000
    hfstream send video.mp4 --to 127.0.0.1:5000 --fps 10 --target 60000
    hfstream send pattern --frames 30 --to 127.0.0.1:5000           # generated test video

With ``--rtc`` the address is the TCP signalling address instead: the receiver listens
there, the sender connects, and the frames go over WebRTC data channels.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
from pathlib import Path

from PIL import Image

from hfstream.codec.hybrid import HybridCodec, to_uint8_image
from hfstream.collect import FrameRecord, in_order
from hfstream.protocol.auth import KEY_ENV, parse_key
from hfstream.receiver import Receiver, ReceiverConfig
from hfstream.sender import Sender, SenderConfig
from hfstream.transports.base import DatagramTransport
from hfstream.video import VideoWriter, pattern_frames, read_frames, video_fps

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f'Invalid address "{text}", should be HOST:PORT')
    return host or "127.0.0.1", int(port)


def add_arguments(send: argparse.ArgumentParser, recv: argparse.ArgumentParser) -> None:
    send.add_argument("input", help='an image, a video, or "pattern" for a generated video')
    send.add_argument("--to", default="127.0.0.1:5000", help="receiver (or signalling) HOST:PORT")
    send.add_argument("--rtc", action="store_true", help="WebRTC data channels instead of UDP")
    send.add_argument("--fps", type=float, default=None, help="frame rate (default: the video's)")
    send.add_argument("--frames", type=int, default=None, help="at most this many frames")
    send.add_argument("--rate", type=float, default=250_000, help="pacing rate, bytes/s")
    send.add_argument("--target", type=float, default=None, help="rate-control target, bytes/s")
    send.add_argument("--schedule", default="auto")
    send.add_argument("--model", default=None)
    recv.add_argument("--listen", default="127.0.0.1:5000", help="HOST:PORT to listen on")
    recv.add_argument("--rtc", action="store_true", help="WebRTC data channels instead of UDP")
    recv.add_argument("--out", default="out/recv", help="folder for previews, video and CSV")
    recv.add_argument("--frames", type=int, default=1, help="stop after this many frames")
    recv.add_argument("--timeout", type=float, default=10.0, help="give up after this long idle")
    recv.add_argument("--fps", type=float, default=10.0, help="frame rate of the written video")
    recv.add_argument(
        "--save-frames",
        action="store_true",
        help="also write the best picture of every frame as frameNNNNN.png (lossless)",
    )
    recv.add_argument("--model", default=None)
    for p in (send, recv):
        p.add_argument(
            "--key",
            default=None,
            help=f"pre-shared key, hex (default: ${KEY_ENV}); without one, nothing is "
            "authenticated",
        )


def stream_key(args: argparse.Namespace) -> bytes | None:
    """The pre-shared key from --key or the environment; None: unkeyed."""
    text = args.key if args.key is not None else os.environ.get(KEY_ENV)
    return None if text is None else parse_key(text)


def _frames(args: argparse.Namespace) -> tuple[list, float]:
    src = args.input
    if src == "pattern":
        return list(pattern_frames(args.frames or 30)), args.fps or 10.0
    path = Path(src)
    if not path.exists():
        raise FileNotFoundError(f"No such file: {src}")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return [to_uint8_image(path)], args.fps or 1.0
    return list(read_frames(path, args.frames)), args.fps or video_fps(path)


async def _open(args: argparse.Namespace, sending: bool) -> DatagramTransport:
    if args.rtc:
        from hfstream.transports.rtc import rtc_connect

        host, port = parse_address(args.to if sending else args.listen)
        role = "answer" if sending else "offer"
        return await rtc_connect(role, host, port, key=stream_key(args))
    from hfstream.transports.udp import UdpTransport

    if sending:
        return await UdpTransport.open(("0.0.0.0", 0), remote=parse_address(args.to))
    return await UdpTransport.open(parse_address(args.listen))


async def run_send(args: argparse.Namespace) -> int:
    parse_address(args.to)  # a bad address or key fails before any work
    key = stream_key(args)
    codec = HybridCodec.from_pretrained(args.model)
    frames, fps = _frames(args)
    transport = await _open(args, sending=True)
    config = SenderConfig(
        rate_bytes_per_s=args.rate,
        schedule=args.schedule,
        target_bytes_per_s=args.target,
        fps=fps,
        key=key,
    )
    sender = Sender(transport, codec, config)
    try:
        sent = await sender.send_frames(frames, fps)
        await sender.flush()
        await asyncio.sleep(0.2)  # let the last datagrams leave (and late reports arrive)
    finally:
        await sender.close()
        await transport.close()
    total = sum(sum(s.bytes.values()) for s in sent)
    print(
        f"sent {len(sent)} frame(s), {sender.packets_sent} packets, {total} bytes queued, "
        f"{sender.bytes_sent} sent; {sender.reports_received} receiver reports"
    )
    return 0


async def run_recv(args: argparse.Namespace) -> int:
    parse_address(args.listen)
    key = stream_key(args)
    codec = HybridCodec.from_pretrained(args.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    transport = await _open(args, sending=False)
    receiver = Receiver(transport, codec, ReceiverConfig(key=key))
    records: dict[int, FrameRecord] = {}
    finals = 0
    print(f"listening on {args.listen} ({'WebRTC' if args.rtc else 'UDP'})")
    async with receiver:
        while finals < args.frames:
            try:
                u = await asyncio.wait_for(receiver.__anext__(), args.timeout)
            except (asyncio.TimeoutError, StopAsyncIteration):
                break
            rec = records.setdefault(
                u.frame_id, FrameRecord(u.frame_id, u.stage, u.latency_s, u.latency_s, 0, None)
            )
            rec.updates += 1
            rec.stage, rec.latency_s, rec.image = u.stage, u.latency_s, u.image
            finals += u.final
            if args.frames == 1:
                Image.fromarray(u.image).save(out / f"frame{u.frame_id}_{u.stage.name.lower()}.png")
            print(
                f"frame {u.frame_id}: {u.stage.name.lower():8s} after {1000 * u.latency_s:6.1f} ms "
                "(tiers received "
                + " / ".join(f"{u.received[t]:.0%}" for t in ("tier0", "tier1", "tier2"))
                + ")"
            )
    await transport.close()
    with (out / "frames.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["frame", "stage", "latency_ms", "first_picture_ms", "updates"])
        for r in sorted(records.values(), key=lambda r: r.frame_id):
            w.writerow(
                [
                    r.frame_id,
                    r.stage.name.lower(),
                    f"{1000 * r.latency_s:.1f}",
                    f"{1000 * r.first_picture_s:.1f}",
                    r.updates,
                ]
            )
    if records and args.frames > 1:
        n = max(records) + 1
        shape = next(r.image for r in records.values() if r.image is not None).shape
        pictures = in_order(records, n, shape)
        with VideoWriter(out / "received.mp4", args.fps) as w:
            for img in pictures:
                w.write(img)
        if args.save_frames:
            for i, img in enumerate(pictures):
                Image.fromarray(img).save(out / f"frame{i:05d}.png")
    print(
        f"{len(records)} frame(s), {finals} complete; "
        f"drops {receiver.drops or 'none'}; wrote {out}/"
    )
    return 0 if records else 1
