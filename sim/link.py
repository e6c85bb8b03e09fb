"""A simulated one-way link (sans-I/O): loss, delay, jitter, a bottleneck, reordering,
duplication. ``send(data, now)`` offers a datagram; ``deliver(now)`` returns those that
arrive by ``now``; ``next_time()`` says when the next one will. Every random choice comes
from the generator given to the link, so the same seed gives the same run.

Order of the stages: loss model -> bottleneck queue (tail drop when full; served at a
constant rate or by a mahimahi delivery trace) -> propagation delay + jitter -> optional
reordering (an extra delay for some packets) and duplication.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

import numpy as np

from sim.loss import LossModel, NoLoss
from sim.traces import OPPORTUNITY_BYTES, Event


@dataclass
class LinkConfig:
    delay_s: float = 0.0  # one-way propagation delay
    jitter_s: float = 0.0  # uniform extra delay in [0, jitter)
    rate_bytes_per_s: float | None = None  # bottleneck rate; None = unlimited
    trace_ms: list[int] | None = None  # mahimahi delivery opportunities instead of a rate
    queue_bytes: int = 64 * 1024  # bottleneck queue; tail drop beyond
    reorder_prob: float = 0.0  # share of packets held back by ``reorder_delay_s``
    reorder_delay_s: float = 0.01
    duplicate_prob: float = 0.0


@dataclass
class LinkStats:
    offered: int = 0
    lost: int = 0  # by the loss model
    queue_drops: int = 0  # tail drops at the bottleneck
    delivered: int = 0
    duplicated: int = 0
    bytes_delivered: int = 0


@dataclass
class Link:
    config: LinkConfig
    rng: np.random.Generator
    loss: LossModel = field(default_factory=NoLoss)
    stats: LinkStats = field(default_factory=LinkStats)
    log: list[Event] | None = None  # mahimahi-style event log when a list is given

    def __post_init__(self) -> None:
        c = self.config
        if c.rate_bytes_per_s is not None and c.rate_bytes_per_s <= 0:
            raise ValueError(f"rate must be positive, got {c.rate_bytes_per_s}")
        for name in ("reorder_prob", "duplicate_prob"):
            if not 0 <= getattr(c, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1]")
        self._arrivals: list[tuple[float, int, bytes]] = []
        self._order = itertools.count()
        self._busy_until = 0.0  # when the bottleneck finishes what it has accepted
        self._queued: list[tuple[float, int]] = []  # (departure time, size) in the queue
        self._trace_index = 0  # next opportunity in the trace (may run past its length)

    # ------------------------------------------------------------ bottleneck
    def _departure(self, now: float, size: int) -> float | None:
        c = self.config
        while self._queued and self._queued[0][0] <= now:
            self._queued.pop(0)
        backlog = sum(s for _, s in self._queued)
        if (c.rate_bytes_per_s is not None or c.trace_ms) and backlog + size > c.queue_bytes:
            return None
        if c.trace_ms:
            t = self._next_opportunity(max(now, self._busy_until), size)
        elif c.rate_bytes_per_s is not None:
            t = max(now, self._busy_until) + size / c.rate_bytes_per_s
        else:
            return now
        self._busy_until = t
        self._queued.append((t, size))
        return t

    def _next_opportunity(self, t: float, size: int) -> float:
        trace = self.config.trace_ms
        assert trace
        period = trace[-1]
        need = max(1, -(-size // OPPORTUNITY_BYTES))  # a datagram may need several
        used = 0
        while True:
            cycle, i = divmod(self._trace_index, len(trace))
            when = (cycle * period + trace[i]) / 1000.0
            self._trace_index += 1
            if when < t:
                continue
            if self.log is not None:
                self.log.append(Event(round(when * 1000), "#", OPPORTUNITY_BYTES))
            used += 1
            if used == need:
                return when

    # ------------------------------------------------------------ interface
    def send(self, data: bytes, now: float) -> None:
        c = self.config
        self.stats.offered += 1
        ms = round(now * 1000)
        if self.loss.lost():
            self.stats.lost += 1
            if self.log is not None:
                self.log.append(Event(ms, "d", len(data)))
            return
        leave = self._departure(now, len(data))
        if leave is None:
            self.stats.queue_drops += 1
            if self.log is not None:
                self.log.append(Event(ms, "d", len(data)))
            return
        if self.log is not None:
            self.log.append(Event(ms, "+", len(data)))
            self.log.append(Event(round(leave * 1000), "-", len(data), round((leave - now) * 1000)))
        arrive = leave + c.delay_s + (self.rng.random() * c.jitter_s if c.jitter_s else 0.0)
        if c.reorder_prob and self.rng.random() < c.reorder_prob:
            arrive += c.reorder_delay_s
        heapq.heappush(self._arrivals, (arrive, next(self._order), bytes(data)))
        if c.duplicate_prob and self.rng.random() < c.duplicate_prob:
            self.stats.duplicated += 1
            heapq.heappush(self._arrivals, (arrive + 1e-6, next(self._order), bytes(data)))

    def deliver(self, now: float) -> list[bytes]:
        out = []
        while self._arrivals and self._arrivals[0][0] <= now:
            _, _, d = heapq.heappop(self._arrivals)
            out.append(d)
            self.stats.delivered += 1
            self.stats.bytes_delivered += len(d)
        return out

    def next_time(self) -> float | None:
        return self._arrivals[0][0] if self._arrivals else None
