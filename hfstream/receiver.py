"""The asyncio receiver: an async iterator of progressively better frames.

    async with Receiver(transport, codec) as rx:
        async for update in rx:
            show(update.image)            # H x W x 3 uint8, at update.stage

Datagrams go through the sans-I/O ``Reassembler``; decoding runs in one worker thread,
at most one decode per frame at a time, and data that arrives meanwhile is coalesced
into the next decode. A frame is closed once its last stage has been decoded (its late
packets are then dropped) or when it times out.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from hfstream.codec.hybrid import HybridCodec
from hfstream.feedback import ReportBuilder
from hfstream.progressive import FrameDecodeState, Stage, build_encoded, stage_of
from hfstream.reassembly import (
    FrameExpired,
    FrameState,
    PatchesUpdated,
    Reassembler,
    ReassemblerConfig,
)
from hfstream.transports.base import DatagramTransport, TransportClosed
from hfstream.wire import PacketType


@dataclass(frozen=True)
class FrameUpdate:
    frame_id: int
    stage: Stage
    image: np.ndarray  # H x W x 3 uint8
    received: dict[str, float]  # share of announced packets received, per tier
    latency_s: float  # from the frame's first packet to this picture
    final: bool  # no better picture of this frame will follow


@dataclass(frozen=True)
class ReceiverConfig:
    frame_timeout_s: float = 2.0
    max_frames: int = 8
    max_frame_bytes: int = 4 * 1024 * 1024
    decode_steps: int = 1  # predictor passes
    feedback_interval_s: float | None = 0.25  # None: send no reports


class Receiver:
    def __init__(
        self, transport: DatagramTransport, codec: HybridCodec, config: ReceiverConfig | None = None
    ) -> None:
        self.transport = transport
        self.codec = codec
        self.config = config or ReceiverConfig()
        c = self.config
        self.reassembler = Reassembler(
            ReassemblerConfig(
                codec.model_id,
                max_frames=c.max_frames,
                max_frame_bytes=c.max_frame_bytes,
                frame_timeout=c.frame_timeout_s,
            )
        )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hfstream-decode")
        self._updates: asyncio.Queue = asyncio.Queue()
        self._caches: dict[int, FrameDecodeState] = {}
        self._dirty: set[int] = set()
        self._busy: set[int] = set()
        self._orphans: dict[int, FrameState] = {}  # expired with a decode still due
        self._tasks: list[asyncio.Task] = []
        self._timer: asyncio.TimerHandle | None = None
        self._done = False
        self.frames_expired = 0
        self.reports = ReportBuilder()
        self.reports_sent = 0
        self._late_seen = 0

    # ------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Receiver:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.reports.started = loop.time()
        self._tasks = [loop.create_task(self._recv_loop())]
        if self.config.feedback_interval_s:
            self._tasks.append(loop.create_task(self._feedback_loop()))

    async def close(self) -> None:
        self._done = True
        if self._timer:
            self._timer.cancel()
        for t in self._tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._updates.put_nowait(None)

    @property
    def drops(self) -> dict[str, int]:
        """Packets dropped, by reason (including index entries that failed to decode)."""
        out = dict(self.reassembler.drops)
        bad = sum(c.bad_entries for c in self._caches.values())
        if bad:
            out["index-entry"] = bad
        return out

    @property
    def idle(self) -> bool:
        """No decode running or waiting: no better picture is coming until more data."""
        return not self._busy and not self._dirty

    def __aiter__(self) -> Receiver:
        return self

    async def __anext__(self) -> FrameUpdate:
        item = await self._updates.get()
        if item is None:
            self._updates.put_nowait(None)
            raise StopAsyncIteration
        return item

    # ------------------------------------------------------------ network side
    async def _recv_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await self.transport.recv()
                self.reports.bytes += len(data)
                self._handle(self.reassembler.receive(data, loop.time()))
        except TransportClosed:
            await self._drain()
            self._updates.put_nowait(None)

    def _handle(self, events: list) -> None:
        for ev in events:
            if isinstance(ev, PatchesUpdated):
                self._dirty.add(ev.frame_id)
                self._kick(ev.frame_id)
            elif isinstance(ev, FrameExpired):
                self.frames_expired += ev.reason != "closed"
                self.reports.frame_done(ev.expected, ev.received)
                # Data not yet decoded: decode it once more, as final. (A decode in flight
                # that already has everything notices the frame is gone and is final.)
                if ev.reason != "closed" and ev.frame_id in self._dirty and ev.state is not None:
                    self._orphans[ev.frame_id] = ev.state
                    self._dirty.add(ev.frame_id)
                    self._kick(ev.frame_id)
                elif ev.frame_id not in self._busy:
                    self._caches.pop(ev.frame_id, None)
        self._arm_timer()

    def _arm_timer(self) -> None:
        loop = asyncio.get_running_loop()
        if self._timer:
            self._timer.cancel()
        when = self.reassembler.get_timer()
        if when is not None and not self._done:
            self._timer = loop.call_at(
                when, lambda: self._handle(self.reassembler.handle_timer(loop.time()))
            )

    # ------------------------------------------------------------ decoding
    def _kick(self, frame_id: int) -> None:
        if frame_id in self._busy or frame_id not in self._dirty:
            return
        frame = self.reassembler.frames.get(frame_id) or self._orphans.get(frame_id)
        if frame is None or not frame.tier0:
            return  # nothing to show before some tier 0 arrives
        self._dirty.discard(frame_id)
        self._busy.add(frame_id)
        self._tasks.append(asyncio.get_running_loop().create_task(self._decode(frame_id)))

    async def _decode(self, frame_id: int) -> None:
        loop = asyncio.get_running_loop()
        orphan = frame_id not in self.reassembler.frames
        frame = self._orphans[frame_id] if orphan else self.reassembler.frames[frame_id]
        cache = self._caches.setdefault(frame_id, FrameDecodeState())
        stage = stage_of(frame)
        received = {
            f"tier{t}": frame.received_share(p)
            for t, p in ((0, PacketType.TIER0), (1, PacketType.TIER1), (2, PacketType.TIER2))
        }

        # The worker thread gets its own copy: the event loop keeps adding to ``frame``.
        snapshot = replace(frame, tier0=dict(frame.tier0), indices=dict(frame.indices))

        def work() -> np.ndarray:
            enc = build_encoded(self.codec, snapshot, cache)
            return self.codec.decode(enc, steps=self.config.decode_steps)

        try:
            image = await loop.run_in_executor(self._executor, work)
        finally:
            self._busy.discard(frame_id)
        gone = frame_id not in self.reassembler.frames and frame_id not in self._orphans
        last = (
            orphan
            or (gone and frame_id not in self._dirty)
            or stage == Stage.REFINED
            or (stage == Stage.FULL and not frame.has_tier2)
        )
        self._updates.put_nowait(
            FrameUpdate(frame_id, stage, image, received, loop.time() - frame.opened_at, last)
        )
        if last:
            if orphan:
                self._orphans.pop(frame_id, None)
            elif not gone:
                self._handle([self.reassembler.close(frame_id)])
            self._caches.pop(frame_id, None)
            self._dirty.discard(frame_id)
        else:
            self._kick(frame_id)

    async def _feedback_loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.config.feedback_interval_s
        assert interval is not None
        while True:
            await asyncio.sleep(interval)
            late = self.reassembler.drops.get("late", 0)
            self.reports.late += late - self._late_seen
            self._late_seen = late
            report = self.reports.report(loop.time())
            if report is None:
                continue
            packet = report.to_packet(self.codec.model_id, 0, self.reports_sent & 0xFFFFFFFF)
            try:
                await self.transport.send(packet)
                self.reports_sent += 1
            except TransportClosed:
                return

    async def _drain(self) -> None:
        """On close of the transport: finish the decodes in flight and pending ones."""
        while self._busy or self._dirty:
            for fid in list(self._dirty):
                self._kick(fid)
                if fid not in self.reassembler.frames:
                    self._dirty.discard(fid)
            await asyncio.sleep(0.01)
