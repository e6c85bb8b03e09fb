"""UDP transport on an asyncio datagram endpoint.

The receiving queue is bounded: when the application falls behind, datagrams are
dropped (and counted) as the kernel would drop them, instead of growing memory.

A listening transport has no peer until the application vouches for one: after a
datagram authenticates, ``confirm_peer()`` makes its source the address replies go to.
Answering whoever spoke first would hand the reports to any stranger.
"""

from __future__ import annotations

import asyncio

from hfstream.transports.base import ClosingTransport, Inbox, TransportClosed


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        o = self.owner
        if o.connected and addr != o.remote:
            o.foreign += 1
            return
        o.inbox.put((data, addr))

    def error_received(self, exc: Exception) -> None:
        self.owner.errors += 1


class UdpTransport(ClosingTransport):
    """A UDP socket as a datagram transport. ``open`` binds it; with a remote address it
    sends there (the sender), else it replies to the source of the newest authentic
    datagram (the receiver's reports, ``confirm_peer``)."""

    def __init__(self, max_queue: int = 4096) -> None:
        self.inbox = Inbox(max_queue)
        self._transport: asyncio.DatagramTransport | None = None
        self.remote: tuple | None = None
        self.last_source: tuple | None = None  # of the datagram ``recv`` handed out last
        self.connected = False
        self.foreign = 0
        self.errors = 0

    @classmethod
    async def open(
        cls,
        local: tuple[str, int] = ("127.0.0.1", 0),
        remote: tuple[str, int] | None = None,
        max_queue: int = 4096,
    ) -> UdpTransport:
        """Bind ``local``; with ``remote``, send there and accept datagrams only from it."""
        self = cls(max_queue)
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=local
        )
        if remote is not None:
            self.remote = remote
            self.connected = True
        return self

    @property
    def local_address(self) -> tuple[str, int]:
        assert self._transport is not None, "transport is not open"
        return self._transport.get_extra_info("sockname")[:2]

    async def send(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            raise TransportClosed("transport is closed")
        if self.remote is None:
            raise TransportClosed("no peer address yet")
        self._transport.sendto(data, self.remote)

    async def recv(self) -> bytes:
        data, self.last_source = await self.inbox.get()
        return data

    def confirm_peer(self) -> None:
        """The datagram ``recv`` returned last was authentic: reply to its source."""
        if not self.connected and self.last_source is not None:
            self.remote = self.last_source

    async def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
        self.inbox.close()
