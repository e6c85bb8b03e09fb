"""Pacer (sans-I/O): a token bucket at the target rate, strict priority by tier.

Packets wait in one priority queue ordered by (tier, deadline, arrival). ``pop(now)``
releases what the bucket allows; a packet whose deadline has passed is dropped instead
of sent. Because tier 2 only leaves when tiers 0 and 1 are empty, it is what waits, and
so what expires, when the link is short of capacity: lowest tier first.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

_EPS = 1e-6  # bytes: refills computed from float times may fall short by rounding


@dataclass(order=True)
class _Queued:
    tier: int
    deadline: float
    order: int
    data: bytes = field(compare=False)


class Pacer:
    def __init__(self, rate_bytes_per_s: float, burst_bytes: int = 2400) -> None:
        if not rate_bytes_per_s > 0:
            raise ValueError(f"rate must be positive, got {rate_bytes_per_s}")
        if not burst_bytes > 0:
            raise ValueError(f"burst must be positive, got {burst_bytes}")
        self.rate = float(rate_bytes_per_s)
        self.burst = burst_bytes
        self._tokens = float(burst_bytes)
        self._last: float | None = None
        self._queue: list[_Queued] = []
        self._order = itertools.count()
        self.sent_bytes = 0
        self.dropped_late: dict[int, int] = {}

    def set_rate(self, rate_bytes_per_s: float, now: float) -> None:
        if not rate_bytes_per_s > 0:
            raise ValueError(f"rate must be positive, got {rate_bytes_per_s}")
        self._refill(now)
        self.rate = float(rate_bytes_per_s)

    def push(self, data: bytes, tier: int, deadline: float) -> None:
        heapq.heappush(self._queue, _Queued(tier, deadline, next(self._order), data))

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def queued_bytes(self) -> int:
        return sum(len(q.data) for q in self._queue)

    def _refill(self, now: float) -> None:
        if self._last is not None and now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now if self._last is None else max(self._last, now)

    def pop(self, now: float) -> list[bytes]:
        """Packets to send at ``now``, highest priority first."""
        self._refill(now)
        out = []
        while self._queue:
            head = self._queue[0]
            if head.deadline < now:
                heapq.heappop(self._queue)
                self.dropped_late[head.tier] = self.dropped_late.get(head.tier, 0) + 1
                continue
            # A packet larger than the bucket may leave once the bucket is full.
            if self._tokens + _EPS < min(len(head.data), self.burst):
                break
            heapq.heappop(self._queue)
            self._tokens -= len(head.data)
            self.sent_bytes += len(head.data)
            out.append(head.data)
        return out

    def next_time(self, now: float) -> float | None:
        """When ``pop`` can next release a packet (``now`` if it can already)."""
        if not self._queue:
            return None
        self._refill(now)
        need = min(len(self._queue[0].data), self.burst) - self._tokens
        return now if need <= _EPS else now + need / self.rate
