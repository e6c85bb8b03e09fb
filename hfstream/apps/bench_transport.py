"""``python -m hfstream.apps.bench_transport``: the transport's numbers on this machine.

Measures, with the shipped model and the bundled photo (or ``--image``):
header overhead; time from a patch's tier-0 arrival to its preview; end-to-end frame
latency in-process and over aiortc; aiortc unreliable-channel delivery with pacing at
0 % configured loss; the rate controller's achieved bitrate against its target; and live
video over UDP on loopback (sender and receiver in this process, both in live mode):
frames shown per second and latency from capture to picture, p50/p95 and the last third's
median against the first third's (issue 11: p95 <= 1 s, ratio <= 1.5).

    python -m hfstream.apps.bench_transport --only live    # just the live video
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import numpy as np

from hfstream.codec.frames import to_uint8_image
from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.shared import shared_codec
from hfstream.media.samples import bundled_image
from hfstream.media.video import pattern_frames
from hfstream.protocol.wire import OVERHEAD, PacketType, parse_header
from hfstream.stream.coding import PlannedCoding
from hfstream.stream.collect import collect_frames
from hfstream.stream.progressive import Stage
from hfstream.stream.receiver import Receiver, ReceiverConfig
from hfstream.stream.sender import Sender, SenderConfig
from hfstream.transports.memory import memory_pair


async def header_overhead(codec: HybridCodec, image: np.ndarray) -> dict:
    tx, rx = memory_pair()
    sender = Sender(tx, codec, SenderConfig(rate_bytes_per_s=1e9))
    await sender.send_image(image)
    await sender.flush()
    await sender.close()
    packets = rx.inbox.drain()
    by_type: dict[str, int] = {}
    for p in packets:
        t = PacketType(parse_header(p)[0].type).name
        by_type[t] = by_type.get(t, 0) + 1
    total = sum(map(len, packets))
    return {
        "packets": len(packets),
        "bytes": total,
        "by_type": by_type,
        "header_share": len(packets) * OVERHEAD / total,
        "full_packet_share": OVERHEAD / 1200,
    }


async def latency(codec: HybridCodec, image: np.ndarray, rtc: bool, runs: int) -> dict:
    """First packet -> preview, and send call -> final picture, per run."""
    previews, finals, e2e = [], [], []
    for _ in range(runs):
        if rtc:
            from hfstream.transports.rtc import rtc_pair

            tx, rx = await rtc_pair()
        else:
            tx, rx = memory_pair()
        sender = Sender(tx, codec, SenderConfig(rate_bytes_per_s=2e6))
        loop = asyncio.get_running_loop()
        async with Receiver(rx, codec, ReceiverConfig(frame_timeout_s=5)) as receiver:
            t0 = loop.time()
            await sender.send_image(image)
            async for u in receiver:
                if u.stage == Stage.PREVIEW and not previews[len(finals) :]:
                    previews.append(u.latency_s)
                if u.final:
                    finals.append(u.latency_s)
                    e2e.append(loop.time() - t0)
                    break
        await sender.close()
        await tx.close()
        await rx.close()
    return {
        "preview_ms": 1000 * float(np.median(previews)) if previews else None,
        "final_ms": 1000 * float(np.median(finals)),
        "send_to_final_ms": 1000 * float(np.median(e2e)),
        "runs": runs,
    }


async def rtc_delivery(n: int, rate: float) -> dict:
    """Unreliable channel, paced, 0 % configured loss: share of messages delivered."""
    from hfstream.protocol.pacer import Pacer
    from hfstream.transports.rtc import rtc_pair

    tx, rx = await rtc_pair()
    got = 0

    async def count() -> None:
        nonlocal got
        while True:
            await rx.recv()
            got += 1

    counter = asyncio.create_task(count())
    pacer = Pacer(rate, burst_bytes=2400)
    payload = bytearray(1200)
    payload[3] = int(PacketType.TIER1)  # goes on the unreliable channel
    for _ in range(n):
        pacer.push(bytes(payload), 1, 1e18)
    loop = asyncio.get_running_loop()
    while len(pacer):
        for p in pacer.pop(loop.time()):
            await tx.send(p)
        nxt = pacer.next_time(loop.time())
        if nxt is not None:
            await asyncio.sleep(max(0.0, nxt - loop.time()))
    await asyncio.sleep(1.0)
    counter.cancel()
    await tx.close()
    await rx.close()
    return {"sent": n, "delivered": got, "share": got / n, "rate_bytes_per_s": rate}


async def rate_control(codec: HybridCodec, target: float, frames: int, fps: float) -> dict:
    video = list(pattern_frames(frames, 256, 384))
    tx, rx = memory_pair()
    config = SenderConfig(coding=PlannedCoding(target, fps=fps), rate_bytes_per_s=target)
    sender = Sender(tx, codec, config)
    loop = asyncio.get_running_loop()
    async with Receiver(
        rx, codec, ReceiverConfig(max_frames=64, feedback_interval_s=0.25)
    ) as receiver:
        collector = asyncio.create_task(collect_frames(receiver, frames, idle_timeout_s=30))
        t0 = loop.time()
        await sender.send_frames(video, fps)
        await sender.flush()
        duration = loop.time() - t0
        records = await collector
    await sender.close()
    stages = [r.stage.name for r in records.values()]
    return {
        "target": target,
        "achieved": sender.bytes_sent / duration,
        "duration_s": duration,
        "reports": sender.reports_received,
        "frames_received": len(records),
        "stages": {s: stages.count(s) for s in set(stages)},
    }


async def live_video(
    codec: HybridCodec, height: int, width: int, *, frames: int, fps: float
) -> dict:
    """``frames`` pattern frames at ``fps`` over UDP on loopback, live on both sides."""
    from hfstream.transports.udp import UdpTransport

    video = list(pattern_frames(frames, height, width))
    rx = await UdpTransport.open(("127.0.0.1", 0))
    tx = await UdpTransport.open(("127.0.0.1", 0), remote=rx.local_address)
    sender = Sender(tx, codec, SenderConfig(rate_bytes_per_s=2e6, live=True))
    config = ReceiverConfig(live=True, frame_timeout_s=2.0)
    first: dict[int, float] = {}  # frame -> capture to its first picture
    arrival: dict[int, float] = {}  # frame -> its first packet to its first picture
    loop = asyncio.get_running_loop()
    async with Receiver(rx, codec, config) as receiver:

        async def collect() -> None:
            while True:
                try:
                    u = await asyncio.wait_for(receiver.__anext__(), 5.0)
                except (asyncio.TimeoutError, StopAsyncIteration):
                    return
                first.setdefault(u.frame_id, u.capture_latency_s)
                arrival.setdefault(u.frame_id, u.latency_s)
                last_picture[0] = loop.time()
                if u.frame_id == len(sent_ids) - 1 and sending.done() and u.final:
                    return  # the last frame sent has its last picture

        t0 = loop.time()
        last_picture = [t0]
        sent_ids: list[int] = []
        sending = asyncio.ensure_future(sender.send_frames(video, fps))
        collector = asyncio.create_task(collect())
        sent = await sending
        sent_ids[:] = [s.frame_id for s in sent]
        await sender.flush()
        await collector
        duration = last_picture[0] - t0  # from the first capture to the last picture
        skipped = receiver.frames_skipped
    await sender.close()
    await tx.close()
    await rx.close()
    lat = [first[f] for f in sorted(first)]
    third = max(1, len(lat) // 3)
    head, tail = float(np.median(lat[:third])), float(np.median(lat[-third:]))
    return {
        "size": f"{width}x{height}",
        "frames": frames,
        "fps": fps,
        "sender_skipped": sender.frames_skipped,
        "receiver_skipped": skipped,
        "shown": len(first),
        "shown_fps": round(len(first) / duration, 2),
        "capture_to_first_picture_p50_ms": round(1000 * float(np.percentile(lat, 50))),
        "p95_ms": round(1000 * float(np.percentile(lat, 95))),
        "first_third_median_ms": round(1000 * head),
        "last_third_median_ms": round(1000 * tail),
        "last_over_first": round(tail / head, 2),
        # Where the time goes: the sender's encode (with the index priors) and, at the
        # receiver, the wait for the decoder plus the decode.
        "encode_ms_median": round(1000 * float(np.median([s.encode_s for s in sent]))),
        "first_packet_to_picture_ms_median": round(1000 * float(np.median(list(arrival.values())))),
    }


async def main_async(args: argparse.Namespace) -> None:
    codec = shared_codec()
    image = to_uint8_image(args.image) if args.image else bundled_image()
    h, w = image.shape[:2]
    print(f"model {codec.model_id:08x}; image {w}x{h}")
    t = time.perf_counter()
    if args.only != "live":
        await _transport_benches(codec, image, args)
    for size in args.live_sizes:
        h, w = size
        print("live video:", await live_video(codec, h, w, frames=args.frames, fps=args.fps))
    print(f"({time.perf_counter() - t:.0f} s)")


async def _transport_benches(codec: HybridCodec, image: np.ndarray, args: argparse.Namespace):
    print("header overhead:", await header_overhead(codec, image))
    print("in-process latency:", await latency(codec, image, rtc=False, runs=args.runs))
    print("aiortc latency:", await latency(codec, image, rtc=True, runs=args.runs))
    print("aiortc delivery:", await rtc_delivery(args.messages, args.rtc_rate))
    for target in args.targets:
        print("rate control:", await rate_control(codec, target, args.frames, args.fps))


def _size(text: str) -> tuple[int, int]:
    h, _, w = text.partition("x")
    if not (h.isdigit() and w.isdigit()):
        raise argparse.ArgumentTypeError(f'Invalid size "{text}", should be HEIGHTxWIDTH')
    return int(h), int(w)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hfstream.apps.bench_transport", description=__doc__)
    p.add_argument("--image", default=None)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--messages", type=int, default=5000)
    p.add_argument("--rtc-rate", type=float, default=2e6, help="pacing rate, bytes/s")
    p.add_argument("--targets", type=float, nargs="*", default=[8000.0, 20000.0])
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--fps", type=float, default=10.0)
    p.add_argument("--only", choices=["all", "live"], default="all")
    p.add_argument(
        "--live-sizes",
        type=_size,
        nargs="*",
        default=[(256, 384), (512, 768)],
        help="HEIGHTxWIDTH of each live video (default 256x384 512x768)",
    )
    asyncio.run(main_async(p.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
