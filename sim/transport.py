"""An asyncio transport over simulated links, so the real Sender and Receiver run on it.

``sim_pair(forward, backward)`` returns two endpoints; what one sends goes through its
``Link`` (loss, bottleneck, delay...) and is delivered to the other by a timer armed for
the link's next arrival. Time is the event loop's clock.
"""

from __future__ import annotations

import asyncio

from hfstream.transports.base import TransportClosed
from sim.link import Link

_CLOSE = object()


class SimTransport:
    def __init__(self, link: Link) -> None:
        self.link = link  # carries what this endpoint sends
        self.peer: SimTransport | None = None
        self._inbox: asyncio.Queue = asyncio.Queue()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    async def send(self, data: bytes) -> None:
        if self._closed:
            raise TransportClosed("transport is closed")
        loop = asyncio.get_running_loop()
        self.link.send(data, loop.time())
        self._flush()

    def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        assert self.peer is not None, "simulated transport has no peer"
        for d in self.link.deliver(loop.time()):
            self.peer._inbox.put_nowait(d)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        nxt = self.link.next_time()
        if nxt is not None:
            self._timer = loop.call_at(nxt, self._flush)

    async def recv(self) -> bytes:
        item = await self._inbox.get()
        if item is _CLOSE:
            self._inbox.put_nowait(_CLOSE)
            raise TransportClosed("transport is closed")
        return item

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        self._inbox.put_nowait(_CLOSE)
        if self.peer is not None:
            self.peer._inbox.put_nowait(_CLOSE)


def sim_pair(forward: Link, backward: Link) -> tuple[SimTransport, SimTransport]:
    """(a, b): a's datagrams cross ``forward`` to b, b's cross ``backward`` to a."""
    a, b = SimTransport(forward), SimTransport(backward)
    a.peer, b.peer = b, a
    return a, b
