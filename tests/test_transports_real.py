"""Real sockets: UDP on loopback and aiortc data channels in one process."""

import asyncio

import numpy as np
import pytest

from hfstream.stream.coding import FixedCoding
from hfstream.stream.progressive import Stage
from hfstream.stream.receiver import Receiver, ReceiverConfig
from hfstream.stream.sender import Sender, SenderConfig
from hfstream.transports.base import TransportClosed
from hfstream.transports.rtc import rtc_pair
from hfstream.transports.udp import UdpTransport


async def _one_image(codec, image, tx, rx):
    sender = Sender(tx, codec, SenderConfig(rate_bytes_per_s=2e6, coding=FixedCoding("1_4")))
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


def test_rtc_signalling_refuses_a_peer_without_the_key():
    import socket

    from hfstream.transports.rtc import rtc_connect

    key = bytes(range(16))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def main():
        offer = asyncio.create_task(rtc_connect("offer", "127.0.0.1", port, key=key))
        await asyncio.sleep(0.3)
        try:
            # A stranger connects first: its answer does not verify, so it is refused...
            await asyncio.wait_for(rtc_connect("answer", "127.0.0.1", port, key=bytes(16)), 5)
        except (ValueError, asyncio.TimeoutError) as e:
            stranger = str(e) or type(e).__name__
        # ...and the peer with the key still gets through.
        answer = await asyncio.wait_for(rtc_connect("answer", "127.0.0.1", port, key=key), 30)
        a = await asyncio.wait_for(offer, 30)
        await answer.send(b"HF hello")
        got = await asyncio.wait_for(a.recv(), 10)
        await a.close()
        await answer.close()
        return stranger, got

    stranger, got = asyncio.run(main())
    assert "offer failed authentication" in stranger
    assert got == b"HF hello"


def test_a_udp_transport_closes_when_its_block_ends():
    async def main():
        async with await UdpTransport.open(("127.0.0.1", 0)) as rx:
            async with await UdpTransport.open(("127.0.0.1", 0), remote=rx.local_address) as tx:
                await tx.send(b"HF hello")
                got = await asyncio.wait_for(rx.recv(), 5)
            with pytest.raises(TransportClosed):
                await tx.send(b"after")
        with pytest.raises(TransportClosed):
            await rx.recv()
        return got

    assert asyncio.run(main()) == b"HF hello"


def test_an_rtc_transport_closes_when_its_block_ends():
    async def main():
        a, b = await rtc_pair()
        async with a, b:
            await a.send(b"HF hello")
            got = await asyncio.wait_for(b.recv(), 10)
        assert a.pc.connectionState == "closed" and b.pc.connectionState == "closed"
        with pytest.raises(TransportClosed):
            await b.recv()
        return got

    assert asyncio.run(main()) == b"HF hello"
