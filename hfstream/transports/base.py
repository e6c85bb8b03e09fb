"""The transport interface: unreliable, message-oriented, asyncio."""

from __future__ import annotations

import asyncio
from typing import Protocol, TypeVar, runtime_checkable


class TransportClosed(Exception):
    """The transport was closed; no more datagrams will come."""


@runtime_checkable
class DatagramTransport(Protocol):
    """Moves whole datagrams; may lose, duplicate or reorder them, never splits them."""

    async def send(self, data: bytes) -> None: ...

    async def recv(self) -> bytes:
        """The next datagram; raises ``TransportClosed`` once closed."""
        ...

    async def close(self) -> None: ...


_T = TypeVar("_T", bound="ClosingTransport")


class ClosingTransport:
    """``async with`` for a transport: entering gives the transport, leaving closes it
    (whether the block ended normally or on an error), as a socket does.

        async with await UdpTransport.open(local) as udp:
            await udp.send(datagram)

    Kept out of ``DatagramTransport`` so that any object with ``send``, ``recv`` and
    ``close`` (a wrapper, a simulated link) still is a transport."""

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self: _T) -> _T:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


_CLOSED = object()


class Inbox:
    """The received datagrams a transport has not handed out yet.

    Bounded (``max_items``; 0 = unbounded): when the application falls behind, new
    datagrams are dropped and counted in ``overflow``, as a kernel socket buffer drops
    them, instead of growing memory. Once closed, every ``get`` raises ``TransportClosed``.
    """

    def __init__(self, max_items: int = 0) -> None:
        self._queue: asyncio.Queue = asyncio.Queue(max_items)
        self.overflow = 0

    def put(self, data: bytes) -> None:
        try:
            self._queue.put_nowait(data)
        except asyncio.QueueFull:
            self.overflow += 1

    async def get(self) -> bytes:
        item = await self._queue.get()
        if item is _CLOSED:
            self._queue.put_nowait(_CLOSED)  # every later get sees the close too
            raise TransportClosed("transport is closed")
        return item

    def drain(self) -> list[bytes]:
        """Every datagram waiting now, without blocking (the close marker stays)."""
        out = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is _CLOSED:
                self._queue.put_nowait(_CLOSED)
                break
            out.append(item)
        return out

    def close(self) -> None:
        """Queue the close marker, evicting the oldest datagram if the inbox is full."""
        while True:
            try:
                self._queue.put_nowait(_CLOSED)
                return
            except asyncio.QueueFull:
                self._queue.get_nowait()
