"""``python -m hfstream.apps.bench_transport``: the transport's numbers on this machine.

Measures, with the shipped model and the bundled photo (or ``--image``):
header overhead; time from a patch's tier-0 arrival to its preview; end-to-end frame
latency in-process and over aiortc; aiortc unreliable-channel delivery with pacing at
0 % configured loss; the rate controller's achieved bitrate against its target.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import numpy as np

from hfstream.apps.collect import collect_frames
from hfstream.apps.demo import bundled_image
from hfstream.codec.hybrid import HybridCodec, to_uint8_image
from hfstream.codec.shared import shared_codec
from hfstream.progressive import Stage
from hfstream.protocol.wire import OVERHEAD, PacketType, parse_header
from hfstream.receiver import Receiver, ReceiverConfig
from hfstream.sender import Sender, SenderConfig
from hfstream.transports.memory import memory_pair
from hfstream.video import pattern_frames


async def header_overhead(codec: HybridCodec, image: np.ndarray) -> dict:
    tx, rx = memory_pair()
    sender = Sender(tx, codec, SenderConfig(rate_bytes_per_s=1e9, schedule="auto"))
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
        sender = Sender(tx, codec, SenderConfig(rate_bytes_per_s=2e6, schedule="auto"))
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
    sender = Sender(
        tx, codec, SenderConfig(target_bytes_per_s=target, fps=fps, rate_bytes_per_s=target)
    )
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


async def main_async(args: argparse.Namespace) -> None:
    codec = shared_codec()
    image = to_uint8_image(args.image) if args.image else bundled_image()
    h, w = image.shape[:2]
    print(f"model {codec.model_id:08x}; image {w}x{h}")
    t = time.perf_counter()
    print("header overhead:", await header_overhead(codec, image))
    print("in-process latency:", await latency(codec, image, rtc=False, runs=args.runs))
    print("aiortc latency:", await latency(codec, image, rtc=True, runs=args.runs))
    print("aiortc delivery:", await rtc_delivery(args.messages, args.rtc_rate))
    for target in args.targets:
        print("rate control:", await rate_control(codec, target, args.frames, args.fps))
    print(f"({time.perf_counter() - t:.0f} s)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hfstream.apps.bench_transport", description=__doc__)
    p.add_argument("--image", default=None)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--messages", type=int, default=5000)
    p.add_argument("--rtc-rate", type=float, default=2e6, help="pacing rate, bytes/s")
    p.add_argument("--targets", type=float, nargs="*", default=[8000.0, 20000.0])
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--fps", type=float, default=10.0)
    asyncio.run(main_async(p.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
