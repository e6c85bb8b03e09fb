"""In-process transport: two endpoints joined by queues, with an optional loss pattern.

``loss_pattern`` is a cyclic list of booleans (True = drop) applied to the datagrams one
endpoint sends, which makes loss tests deterministic.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from hfstream.transports.base import ClosingTransport, Inbox, TransportClosed


class MemoryTransport(ClosingTransport):
    def __init__(self, loss_pattern: Sequence[bool] = ()) -> None:
        self.inbox = Inbox()
        self.peer: MemoryTransport | None = None
        self._loss = itertools.cycle(loss_pattern) if loss_pattern else None
        self.sent = 0
        self.dropped = 0
        self._closed = False

    async def send(self, data: bytes) -> None:
        if self._closed:
            raise TransportClosed("transport is closed")
        assert self.peer is not None, "memory transport has no peer"
        self.sent += 1
        if self._loss is not None and next(self._loss):
            self.dropped += 1
            return
        self.peer.inbox.put(bytes(data))

    async def recv(self) -> bytes:
        return await self.inbox.get()

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.inbox.close()
            if self.peer is not None:
                self.peer.inbox.close()


def memory_pair(
    loss_a_to_b: Sequence[bool] = (), loss_b_to_a: Sequence[bool] = ()
) -> tuple[MemoryTransport, MemoryTransport]:
    a, b = MemoryTransport(loss_a_to_b), MemoryTransport(loss_b_to_a)
    a.peer, b.peer = b, a
    return a, b
