"""The transport interface: unreliable, message-oriented, asyncio."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


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
