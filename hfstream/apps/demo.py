"""The built-in demo: stream a bundled photo over a lossy in-process link.

The photo is matplotlib's ``grace_hopper.jpg`` sample (matplotlib is a dependency), so
the demo needs no file of its own and no network. Every packet goes through the real
packetizer, pacer, reassembler and progressive decoder; the link drops a fixed share of
them by a deterministic pattern. Each picture the receiver shows is written as a PNG.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
from PIL import Image

from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.shared import shared_codec
from hfstream.eval.metrics import all_metrics
from hfstream.files import container
from hfstream.media.samples import bundled_image
from hfstream.stream.receiver import FrameUpdate, Receiver
from hfstream.stream.sender import Sender, SenderConfig
from hfstream.transports.memory import memory_pair


def loss_pattern(share: float, length: int = 100) -> list[bool]:
    """A cyclic pattern dropping ``share`` of the packets, spread evenly."""
    n = round(share * length)
    return [(i * n) // length != ((i + 1) * n) // length for i in range(length)]


async def _stream(
    codec: HybridCodec, img: np.ndarray, loss: float
) -> tuple[list[FrameUpdate], Sender]:
    tx, rx = memory_pair(loss_a_to_b=loss_pattern(loss))
    sender = Sender(tx, codec, SenderConfig(rate_bytes_per_s=250_000))
    receiver = Receiver(rx, codec)
    updates: list[FrameUpdate] = []
    async with receiver:
        await sender.send_image(img)
        await sender.flush()

        # With packets lost the frame may never be complete: stop once nothing better
        # has come for a while, and its last picture is the final one.
        while True:
            try:
                u = await asyncio.wait_for(receiver.__anext__(), timeout=0.5)
            except asyncio.TimeoutError:
                if receiver.idle:
                    break
                continue
            except StopAsyncIteration:
                break
            updates.append(u)
            if u.final:
                break
    await sender.close()
    await tx.close()
    return updates, sender


def run_demo(out: Path, loss: float = 0.2) -> int:
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    codec = shared_codec()
    img = bundled_image()
    h, w = img.shape[:2]
    print(f"model {codec.name} ({codec.model_id:08x}) loaded in {time.perf_counter() - t0:.1f} s")
    print(f"streaming a {w}x{h} photo over an in-process link that drops {loss:.0%} of packets")
    Image.fromarray(img).save(out / "original.png")
    updates, sender = asyncio.run(_stream(codec, img, loss))
    print(
        f"sent {sender.packets_sent} packets, {sender.bytes_sent} bytes "
        f"({8 * sender.bytes_sent / (h * w):.4f} bpp)"
    )
    print(
        f"{'picture':28s} {'after':>8s} {'PSNR':>6s} {'MS-SSIM':>8s} {'HaarPSI':>8s}  "
        "tiers received"
    )
    for i, u in enumerate(updates):
        name = f"{i:02d}_{u.stage.name.lower()}.png"
        Image.fromarray(u.image).save(out / name)
        m = all_metrics(img, u.image)
        rec = " / ".join(f"{u.received[t]:.0%}" for t in ("tier0", "tier1", "tier2"))
        print(
            f"{name:28s} {1000 * u.latency_s:6.0f}ms {m['psnr']:6.2f} {m['ms_ssim']:8.4f} "
            f"{m['haarpsi']:8.4f}  {rec}"
        )
    if not updates:
        print("no picture arrived")
        return 1
    print(f"first picture {1000 * updates[0].latency_s:.0f} ms after the first packet")
    print()
    print("the same photo through each decode mode (no loss, .hfs file sizes):")
    print(f"{'decode':30s} {'bytes':>7s} {'bpp':>7s} {'PSNR':>6s} {'MS-SSIM':>8s} {'HaarPSI':>8s}")
    for label, schedule, mode in [
        ("continuous only", "0", "continuous"),
        ("preview (tier 0 only)", "0", "hybrid"),
        ("hybrid, dynamic schedule", "auto", "hybrid"),
        ("hybrid, 1_4", "1_4", "hybrid"),
        ("hybrid, all indices", "1_1", "hybrid"),
        ("vq only, all indices", "1_1", "vq"),
    ]:
        enc = codec.encode(img, schedule=schedule)
        data = container.write(enc, codec)
        dec = codec.decode(container.read(data, codec), mode=mode)
        m = all_metrics(img, dec)
        print(
            f"{label:30s} {len(data):7d} {8 * len(data) / (h * w):7.4f} {m['psnr']:6.2f} "
            f"{m['ms_ssim']:8.4f} {m['haarpsi']:8.4f}"
        )
    print(f"pictures in {out}/")
    return 0
