"""The bounded inbox every transport receives into."""

import asyncio

import pytest

from hfstream.transports.base import Inbox, TransportClosed
from hfstream.transports.memory import memory_pair


def test_a_full_inbox_drops_and_counts_new_datagrams():
    inbox = Inbox(max_items=2)
    for d in (b"a", b"b", b"c", b"d"):
        inbox.put(d)
    assert inbox.overflow == 2
    assert inbox.drain() == [b"a", b"b"]


def test_close_on_a_full_inbox_evicts_the_oldest_and_every_get_raises():
    async def run() -> list[bytes]:
        inbox = Inbox(max_items=2)
        inbox.put(b"a")
        inbox.put(b"b")
        inbox.close()
        got = [await inbox.get()]
        for _ in range(2):
            with pytest.raises(TransportClosed):
                await inbox.get()
        return got

    assert asyncio.run(run()) == [b"b"]


def test_drain_leaves_the_close_marker():
    async def run() -> None:
        a, b = memory_pair()
        await a.send(b"x")
        await a.close()
        assert b.inbox.drain() == [b"x"]
        with pytest.raises(TransportClosed):
            await b.recv()

    asyncio.run(run())


def test_a_memory_transport_closes_when_its_block_ends():
    async def run() -> None:
        a, b = memory_pair()
        async with a as entered, b:
            assert entered is a
            await a.send(b"x")
            assert await b.recv() == b"x"
        for end in (a, b):
            with pytest.raises(TransportClosed):
                await end.send(b"y")
        with pytest.raises(TransportClosed):
            await b.recv()
        # Leaving on an error closes too.
        c, _ = memory_pair()
        with pytest.raises(RuntimeError):
            async with c:
                raise RuntimeError("boom")
        with pytest.raises(TransportClosed):
            await c.send(b"z")

    asyncio.run(run())
