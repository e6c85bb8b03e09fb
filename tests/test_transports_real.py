"""Real sockets: UDP on loopback and aiortc data channels in one process."""

import asyncio

import numpy as np

from hfstream.progressive import Stage
from hfstream.receiver import Receiver, ReceiverConfig
from hfstream.sender import Sender, SenderConfig
from hfstream.transports.rtc import rtc_pair
from hfstream.transports.udp import UdpTransport


async def _one_image(codec, image, tx, rx):
    sender = Sender(tx, codec, SenderConfig(rate_bytes_per_s=2e6, schedule="1_4"))
    receiver = Receiver(rx, codec, ReceiverConfig(frame_timeout_s=5.0))
    final = None
    async with receiver:
        await sender.send_image(image)
        await sender.flush()

        async def wait_final():
            async for u in receiver:
                if u.final:
                    return u

        final = await asyncio.wait_for(wait_final(), 60)
    await sender.close()
    return final, receiver


def test_image_over_udp_loopback(codec, small_image):
    async def main():
        rx = await UdpTransport.open(("127.0.0.1", 0))
        tx = await UdpTransport.open(("127.0.0.1", 0), remote=rx.local_address)
        try:
            return await _one_image(codec, small_image, tx, rx)
        finally:
            await tx.close()
            await rx.close()

    final, receiver = asyncio.run(main())
    assert final.stage == Stage.REFINED
    assert np.array_equal(final.image, codec.decode(codec.encode(small_image, "1_4")))
    assert receiver.drops == {}


def test_image_over_aiortc_in_one_process(codec, small_image):
    async def main():
        tx, rx = await rtc_pair(tier0_lifetime_ms=1000)
        try:
            return await _one_image(codec, small_image, tx, rx)
        finally:
            await tx.close()
            await rx.close()

    final, _ = asyncio.run(main())
    assert final.stage == Stage.REFINED
    assert np.array_equal(final.image, codec.decode(codec.encode(small_image, "1_4")))
