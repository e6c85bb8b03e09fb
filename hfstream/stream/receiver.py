"""The asyncio receiver: an async iterator of progressively better frames.

    async with Receiver(transport, codec) as rx:
        async for update in rx:
            show(update.image)            # H x W x 3 uint8, at update.stage

Datagrams go through the sans-I/O ``Reassembler``. One decoder task takes frames from a
bounded queue of frames with undecoded data (oldest first) and decodes them in one worker
thread; data that arrives during a decode is coalesced into the frame's next decode. When
the queue is full the oldest waiting frame is skipped, so under overload the newest frames
win. In live mode (``ReceiverConfig.live``) the decoder always takes the newest frame and
skips every older one whose decode has not started, so latency stays bounded and no frame
is shown after a newer one. A frame is closed once its last stage has been decoded (its
late packets are then dropped) or when it times out. Every container of per-frame state is
bounded by the config, and ``stats`` counts what each holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np

from hfstream.codec.encoded import EncodedImage
from hfstream.codec.hybrid import HybridCodec
from hfstream.protocol.auth import DATA, FEEDBACK, UNKEYED_WARNING, Opener, Sealer
from hfstream.protocol.feedback import ReportBuilder
from hfstream.protocol.reassembly import (
    DEFAULT_MAX_FRAME_PIXELS,
    FrameComplete,
    FrameExpired,
    FrameState,
    PatchesUpdated,
    Reassembler,
    ReassemblerConfig,
)
from hfstream.protocol.wire import PacketType, WireError, capture_time
from hfstream.stream.progressive import (
    FrameDecodeState,
    Stage,
    build_encoded,
    index_share,
    stage_of,
    tier0_encoded,
)
from hfstream.transports.base import DatagramTransport, TransportClosed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameUpdate:
    frame_id: int
    stage: Stage
    image: np.ndarray  # H x W x 3 uint8
    received: dict[str, float]  # share of announced packets received, per tier
    latency_s: float  # from the frame's first packet to this picture
    final: bool  # no better picture of this frame will follow
    # From the frame's capture (the sender's clock, carried in every packet header) to
    # this picture (the receiver's clock). On one machine the clocks agree; across
    # machines this includes their offset (keep them NTP-synchronised to trust it).
    capture_latency_s: float = 0.0
    # How the picture was decoded: "continuous" for the instant preview (tier 0 up-sampled,
    # no predictor), "hybrid" for every later picture.
    mode: str = "hybrid"


@dataclass(frozen=True)
class ReceiverConfig:
    frame_timeout_s: float = 2.0
    max_frames: int = 8  # frames being reassembled at once
    max_frame_bytes: int = 4 * 1024 * 1024
    # Declared geometry above this is refused before any decode: decoding cost grows with
    # the pixels, and one forged header must not buy minutes of it.
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS
    decode_queue: int = 32  # frames waiting for a decode; when full the oldest is skipped
    max_updates: int = 64  # pictures not yet taken by the consumer; the oldest give way
    decode_steps: int = 1  # predictor passes
    # A frame's first picture is its continuous stream up-sampled (tens of ms), shown
    # before the predictor-filled decode of the same packets (hundreds of ms).
    instant_preview: bool = True
    # Live mode: decode the newest frame only, skip older ones not yet started (counted in
    # ``Receiver.frames_skipped``) and never show a frame after a newer one.
    live: bool = False
    # Live mode: an incomplete newest frame waits this long after its first packet for
    # the rest of its packets, so that one decode (~all the cost) is not spent on a part.
    live_settle_s: float = 0.1
    feedback_interval_s: float | None = 0.25  # None: send no reports
    # Pre-shared key (``auth.parse_key``); None: unauthenticated, for experiments only.
    key: bytes | None = field(default=None, repr=False)
    # Refuse sessions that started longer ago than this (needs clocks within it); None:
    # any session newer than the current one is taken.
    max_session_age_s: float | None = None

    def __post_init__(self) -> None:
        if not self.frame_timeout_s > 0:
            raise ValueError(f"frame_timeout_s must be positive, got {self.frame_timeout_s}")
        for name in ("max_frames", "max_frame_bytes", "decode_queue", "max_updates"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.live_settle_s >= 0:
            raise ValueError(f"live_settle_s must be at least 0, got {self.live_settle_s}")
        if not 1 <= self.decode_steps <= 16:
            raise ValueError(f"decode_steps must be in 1..16, got {self.decode_steps}")
        if self.feedback_interval_s is not None and not self.feedback_interval_s > 0:
            raise ValueError(
                f"feedback_interval_s must be positive or None, got {self.feedback_interval_s}"
            )


def _newer(a: int, b: int) -> bool:
    """Frame ``a`` comes after ``b``: frame ids are serial numbers modulo 2**32."""
    return 0 < (a - b) & 0xFFFFFFFF < 1 << 31


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
                max_frame_pixels=c.max_frame_pixels,
                rungs=codec.continuous.rungs,
            )
        )
        if c.key is None:
            log.warning(UNKEYED_WARNING)
        self.opener = Opener(c.key, DATA, max_session_age_s=c.max_session_age_s)
        self._feedback_sealer: Sealer | None = None  # for the current session
        self.auth_drops: dict[str, int] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hfstream-decode")
        self._updates: deque[FrameUpdate | None] = deque()
        self._update_ready = asyncio.Event()
        self._caches: dict[int, FrameDecodeState] = {}
        # Frames with data not decoded yet, oldest first; an expired frame stays here (with
        # its last state) until its final decode.
        self._pending: OrderedDict[int, FrameState] = OrderedDict()
        self._active: int | None = None  # the frame being decoded
        self._newest_shown: int | None = None  # live mode: older frames are never shown
        # Capture time (unix seconds, sender's clock) of each frame with a decode state.
        self._captured: dict[int, float] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._timer: asyncio.TimerHandle | None = None
        self._done = False
        self._transport_closed = False
        self.frames_expired = 0
        self.decodes_skipped = 0  # decodes given up in a full queue (a frame may be twice)
        self.decode_errors = 0
        self.frames_shown = 0  # frames with at least one picture
        self.frames_skipped = 0  # live mode: frames with data never shown, a newer one won
        # The newest 1024 of them, with the session each belonged to.
        self._skipped: deque[tuple[int, int]] = deque(maxlen=1024)
        self.updates_dropped = 0  # pictures the consumer did not take in time
        self._bad_entries = 0
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
        self._tasks = [loop.create_task(self._recv_loop()), loop.create_task(self._decode_loop())]
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
        self._emit(None)

    @property
    def drops(self) -> dict[str, int]:
        """Packets dropped, by reason (including index entries that failed to decode)."""
        out = dict(self.reassembler.drops)
        for reason, n in self.auth_drops.items():
            out[reason] = out.get(reason, 0) + n
        bad = self._bad_entries + sum(c.bad_entries for c in self._caches.values())
        if bad:
            out["index-entry"] = bad
        return out

    @property
    def idle(self) -> bool:
        """No decode running or waiting: no better picture is coming until more data."""
        return self._active is None and not self._pending

    @property
    def stats(self) -> dict[str, int]:
        """How much per-frame state each container holds now (every one is bounded)."""
        return {
            "frames_open": len(self.reassembler.frames),
            "decode_queue": len(self._pending),
            "decode_caches": len(self._caches),
            "updates_waiting": len(self._updates),
            "tasks": len(self._tasks),
            "decodes_skipped": self.decodes_skipped,
            "frames_shown": self.frames_shown,
            "frames_skipped": self.frames_skipped,
            "decode_errors": self.decode_errors,
            "updates_dropped": self.updates_dropped,
        }

    def __aiter__(self) -> Receiver:
        return self

    async def __anext__(self) -> FrameUpdate:
        while not self._updates:
            self._update_ready.clear()
            await self._update_ready.wait()
        item = self._updates[0]
        if item is None:
            raise StopAsyncIteration  # the end marker stays for every later call
        self._updates.popleft()
        return item

    def _emit(self, update: FrameUpdate | None) -> None:
        if self._updates and self._updates[-1] is None:
            return  # already ended
        if update is not None and len(self._updates) >= self.config.max_updates:
            self._updates.popleft()
            self.updates_dropped += 1
        self._updates.append(update)
        self._update_ready.set()

    # ------------------------------------------------------------ network side
    async def _recv_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await self.transport.recv()
                try:
                    packet = self.opener.open(data, time.time())
                except WireError as e:
                    # Before any parsing: a forgery costs one HMAC and a counter.
                    self.auth_drops[e.reason] = self.auth_drops.get(e.reason, 0) + 1
                    continue
                if self._feedback_sealer is None or (
                    self._feedback_sealer.session_id != self.opener.session_id
                ):
                    self._start_session()
                confirm = getattr(self.transport, "confirm_peer", None)
                if confirm is not None:
                    confirm()  # reports go to the peer that proved the key
                self.reports.bytes += len(data)
                self._handle(self.reassembler.receive(packet, loop.time()))
        except TransportClosed:
            # No more data will come: each open frame's next picture is its last.
            self._transport_closed = True
            self._handle(
                [self.reassembler.close(fid, "ended") for fid in list(self.reassembler.frames)]
            )
            self._wake.set()

    def _start_session(self) -> None:
        session = self.opener.session_id
        assert session is not None, "a session starts with an authentic packet"
        if self._feedback_sealer is not None:
            log.info("stream restarted: session %016x", session)
            self._handle(self.reassembler.new_session())
            self._newest_shown = None  # frame ids start over: the new frame 0 is not stale
        self._feedback_sealer = Sealer(self.config.key, FEEDBACK, session)

    def _handle(self, events: list) -> None:
        for ev in events:
            if isinstance(ev, PatchesUpdated):
                frame = self.reassembler.frames.get(ev.frame_id)
                # Nothing to show before tier 0 (a patch's own, or the fallback).
                if frame is not None and (frame.tier0 or frame.fallback):
                    self._enqueue(frame)
            elif isinstance(ev, FrameComplete):
                self._wake.set()  # a settling live frame need not wait any longer
            elif isinstance(ev, FrameExpired):
                self.frames_expired += ev.reason in ("timeout", "evicted")
                self.reports.frame_done(ev.expected, ev.received)
                # A waiting frame keeps its place for a last decode of what it has; the
                # state object it holds is the frame as it ended.
                ended = ev.state if ev.reason == "ended" else None
                if ended is not None and (ended.tier0 or ended.fallback):
                    self._enqueue(ev.state)
                elif ev.frame_id not in self._pending and ev.frame_id != self._active:
                    self._forget(ev.frame_id)
        self._arm_timer()

    def _enqueue(self, frame: FrameState) -> None:
        if frame.frame_id not in self._captured:
            session = self.opener.session_id or 0
            self._captured[frame.frame_id] = capture_time(session, frame.capture_ms)
        if frame.frame_id in self._pending:
            return
        if self.config.live and self._is_stale(frame.frame_id):
            self._skip(frame.frame_id)
            return
        if len(self._pending) >= self.config.decode_queue:
            # Full: the oldest frame (by first packet) of the queue and this one gives way.
            oldest = min(self._pending.values(), key=lambda f: f.opened_at)
            self.decodes_skipped += 1
            if frame.opened_at <= oldest.opened_at:
                self._drop_decode(frame.frame_id)
                return
            del self._pending[oldest.frame_id]
            self._drop_decode(oldest.frame_id)
        self._pending[frame.frame_id] = frame
        self._wake.set()

    def _drop_decode(self, frame_id: int) -> None:
        if frame_id not in self.reassembler.frames and frame_id != self._active:
            self._forget(frame_id)

    def _is_stale(self, frame_id: int) -> bool:
        """Older than the newest frame shown (frame ids are serial numbers mod 2**32)."""
        return self._newest_shown is not None and _newer(self._newest_shown, frame_id)

    @property
    def session_id(self) -> int:
        """The sender session the receiver follows now (0 before any packet opened)."""
        return self.opener.session_id or 0

    @property
    def skipped_ids(self) -> list[int]:
        """The newest 1024 skipped frames' ids, oldest first (live mode)."""
        return [frame_id for _, frame_id in self._skipped]

    def skipped_in(self, session_id: int) -> list[int]:
        """The ids of the skipped frames (of the newest 1024) of one session: streams
        that follow each other can overlap, and both number their frames from 0."""
        return [frame_id for s, frame_id in self._skipped if s == session_id]

    def _skip(self, frame_id: int) -> None:
        """Live mode: a newer frame won; this one gets no (further) picture."""
        self._pending.pop(frame_id, None)
        cache = self._caches.get(frame_id)
        if cache is None or not cache.shown:
            self.frames_skipped += 1
            self._skipped.append((self.session_id, frame_id))
        self._finish(frame_id)

    def _forget(self, frame_id: int) -> None:
        self._captured.pop(frame_id, None)
        cache = self._caches.pop(frame_id, None)
        if cache is not None:
            self._bad_entries += cache.bad_entries

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
    async def _decode_loop(self) -> None:
        while True:
            if not self._pending:
                if self._transport_closed:
                    self._emit(None)  # every pending decode is done
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.config.live:
                frame = await self._newest_settled()
                if frame is None:
                    continue  # more data came, or the wait ended: choose again
                frame_id = frame.frame_id
                del self._pending[frame_id]
            else:
                frame_id, frame = self._pending.popitem(last=False)
            self._active = frame_id
            try:
                await self._decode(frame)
            except Exception:
                # A frame that parses but does not decode (in unkeyed mode, say) costs its
                # own picture, never the receiver.
                self.decode_errors += 1
                log.exception("decoding frame %d failed", frame_id)
                self._pending.pop(frame_id, None)
                self._finish(frame_id)
            finally:
                self._active = None

    async def _newest_settled(self) -> FrameState | None:
        """Live mode: skip every pending frame but the newest, and return that one once it
        is complete or has settled (``live_settle_s``); None when it should wait."""
        newest = next(iter(self._pending))
        for fid in self._pending:
            if _newer(fid, newest):
                newest = fid
        for fid in [f for f in self._pending if f != newest]:
            self._skip(fid)
        frame = self._pending[newest]
        loop = asyncio.get_running_loop()
        wait = frame.opened_at + self.config.live_settle_s - loop.time()
        if frame.complete or wait <= 0 or self._transport_closed:
            return frame
        self._wake.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), wait)
        return None

    async def _decode(self, frame: FrameState) -> None:
        loop = asyncio.get_running_loop()
        frame_id = frame.frame_id
        cache = self._caches.setdefault(frame_id, FrameDecodeState())
        stage = stage_of(frame)
        received = {
            f"tier{t}": frame.received_share(p)
            for t, p in ((0, PacketType.TIER0), (1, PacketType.TIER1), (2, PacketType.TIER2))
        }
        # The worker thread gets its own copy: the event loop keeps adding to ``frame``.
        snapshot = replace(
            frame,
            tier0=dict(frame.tier0),
            indices=dict(frame.indices),
            fallback=dict(frame.fallback),
        )

        def continuous(tier0: EncodedImage) -> np.ndarray:
            patches = (frozenset(snapshot.tier0), frozenset(snapshot.fallback))
            if cache.continuous_patches == patches and cache.continuous_picture is not None:
                return cache.continuous_picture.copy()  # each update owns its image
            cache.continuous_picture = self.codec.decode(tier0, mode="continuous")
            cache.continuous_patches = patches
            return cache.continuous_picture

        if self.config.instant_preview and not cache.shown and stage != Stage.NONE:

            def instant() -> np.ndarray:
                return continuous(tier0_encoded(self.codec, snapshot))

            preview = await loop.run_in_executor(self._executor, instant)
            self._show(frame, cache, stage, preview, received, last=False, mode="continuous")

        def work() -> np.ndarray:
            tier0 = tier0_encoded(self.codec, snapshot)
            if self.codec.auto_mode(tier0, index_share(self.codec, snapshot)) == "continuous":
                # The picture ignores the indices: skip their priors and decoding, and
                # the decode itself when the preview had this very tier 0.
                return continuous(tier0)
            enc = build_encoded(self.codec, snapshot, cache)
            return self.codec.decode(enc, mode="auto", steps=self.config.decode_steps)

        image = await loop.run_in_executor(self._executor, work)
        open_now = self.reassembler.frames.get(frame_id) is frame
        last = (
            (not open_now and frame_id not in self._pending)
            or stage == Stage.REFINED
            or (stage == Stage.FULL and not frame.has_tier2)
        )
        self._show(frame, cache, stage, image, received, last=last)
        if last:
            self._pending.pop(frame_id, None)
            self._finish(frame_id)

    def _show(
        self,
        frame: FrameState,
        cache: FrameDecodeState,
        stage: Stage,
        image: np.ndarray,
        received: dict[str, float],
        *,
        last: bool,
        mode: str = "hybrid",
    ) -> None:
        frame_id = frame.frame_id
        if not cache.shown:
            cache.shown = True
            self.frames_shown += 1
        if self._newest_shown is None or not self._is_stale(frame_id):
            self._newest_shown = frame_id
        captured = self._captured.get(frame_id, time.time())
        loop = asyncio.get_running_loop()
        self._emit(
            FrameUpdate(
                frame_id,
                stage,
                image,
                received,
                loop.time() - frame.opened_at,
                last,
                time.time() - captured,
                mode,
            )
        )

    def _finish(self, frame_id: int) -> None:
        """No more pictures of this frame: close it and drop its decode state."""
        if frame_id in self.reassembler.frames:
            self._handle([self.reassembler.close(frame_id)])
        self._forget(frame_id)

    async def _feedback_loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.config.feedback_interval_s
        assert interval is not None
        while True:
            await asyncio.sleep(interval)
            late = self.reassembler.drops.get("late", 0)
            self.reports.late += late - self._late_seen
            self._late_seen = late
            sealer = self._feedback_sealer
            if sealer is None:
                continue  # no authentic peer yet: nobody to report to
            report = self.reports.report(loop.time())
            if report is None:
                continue
            number = self.reports_sent & 0xFFFFFFFF
            packet = report.to_packet(self.codec.model_id, sealer.session_id, number)
            try:
                await self.transport.send(sealer.seal(packet))
                self.reports_sent += 1
            except TransportClosed:
                return
