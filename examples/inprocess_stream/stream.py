"""Stream one image from a Sender to a Receiver in this process and save each picture."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from PIL import Image

from hfstream.apps.demo import loss_pattern
from hfstream.codec import HybridCodec
from hfstream.codec.frames import to_uint8_image
from hfstream.media.samples import bundled_image
from hfstream.stream.coding import FixedCoding
from hfstream.stream.receiver import Receiver
from hfstream.stream.sender import Sender, SenderConfig
from hfstream.transports.memory import memory_pair


async def main(args: argparse.Namespace) -> None:
    codec = HybridCodec.from_pretrained()
    image = to_uint8_image(args.image) if args.image else bundled_image()
    if args.rtc:
        from hfstream.transports.rtc import rtc_pair

        tx, rx = await rtc_pair()
    else:
        tx, rx = memory_pair(loss_a_to_b=loss_pattern(args.loss))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sender = Sender(tx, codec, SenderConfig(coding=FixedCoding(args.schedule)))
    async with Receiver(rx, codec) as receiver:
        await sender.send_image(image)
        while True:
            try:
                update = await asyncio.wait_for(receiver.__anext__(), timeout=0.5)
            except asyncio.TimeoutError:
                if receiver.idle:
                    break
                continue
            name = out / f"{update.stage.name.lower()}.png"
            Image.fromarray(update.image).save(name)
            print(f"{update.stage.name:8s} after {1000 * update.latency_s:6.0f} ms -> {name}")
            if update.final:
                break
    await sender.close()
    await tx.close()
    await rx.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("image", nargs="?")
    p.add_argument("--loss", type=float, default=0.2, help="share of packets the link drops")
    p.add_argument("--rtc", action="store_true", help="WebRTC data channels instead")
    p.add_argument("--schedule", default="auto")
    p.add_argument("--out", default="out/inprocess")
    asyncio.run(main(p.parse_args()))
