"""The asyncio receiver: an async iterator of progressively better frames (``Receiver``).

Datagrams go through the sans-I/O ``Reassembler``; which frame to decode next (the bounded
queue, in order or live, the live settle wait, what gives way under overload) is the sans-I/O
``DecodeScheduler``'s to decide (``hfstream.stream.scheduler``). This module only feeds both
and runs the decodes in one worker thread; data that arrives during a decode is coalesced
into the frame's next decode. A frame is closed once its last stage has been decoded (its
late packets are then dropped) or when it times out. Every container of per-frame state is
bounded by the config, and ``stats`` counts what each holds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from hfstream.codec.hybrid import HybridCodec
from hfstream.protocol.auth import DATA, FEEDBACK, UNKEYED_WARNING, Opener, Sealer
from hfstream.protocol.capture_clock import capture_time
from hfstream.protocol.feedback import ReportBuilder
from hfstream.protocol.reassembly import (
    FrameComplete,
    FrameExpired,
    FrameState,
    PacketDropped,
    PatchesUpdated,
    Reassembler,
    ReassemblerConfig,
)
from hfstream.protocol.wire import TAG_SIZE, PacketType, WireError
from hfstream.stream.progressive import (
    FrameDecodeState,
    Stage,
    best_is_continuous,
    best_picture,
    continuous_picture,
    picture_source,
    snapshot,
    stage_of,
)
from hfstream.stream.receiver_config import ReceiverConfig
from hfstream.stream.references import DecodedPictures
from hfstream.stream.scheduler import (
    Decode,
    DecodeScheduler,
    Ended,
    Evicted,
    Queued,
    Skipped,
    Wait,
)
from hfstream.stream.updates import FrameUpdate
from hfstream.transports.base import DatagramTransport, TransportClosed

log = logging.getLogger(__name__)


class Receiver:
    """Reassembles a transport's packets into frames and decodes them off the event loop;
    iterate it for each picture, a ``FrameUpdate`` (what it holds, in which order):

        async with Receiver(transport, codec, ReceiverConfig(key=key)) as rx:
            async for update in rx:  # until the transport closes
                show(update.image)  # H x W x 3 uint8, at update.stage

    ``codec`` and ``key`` must be the sender's. Iteration ends when the transport closes (a
    ``memory_pair`` end when either end does, a UDP socket when it is closed itself), after
    each open frame's last picture, or when the receiver is closed (leaving the block; the
    transport stays open): until then it waits, so stop on ``final`` or under a timeout.
    ``drops``: packets dropped, by reason; ``stats``: what each bounded container holds,
    decodes and frames skipped, pictures not taken in time."""

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
        self.opener = Opener(
            c.key,
            DATA,
            max_session_age_s=c.max_session_age_s,
            max_datagram=self.reassembler.config.mtu + TAG_SIZE,
        )
        self._feedback_sealer: Sealer | None = None  # for the current session
        self._receiver_id = 0  # drawn when a session starts
        self.auth_drops: dict[str, int] = {}
        # The newest message of each drop reason (``drops`` counts them): what the packets
        # were, for a user told why nothing arrived.
        self.drop_messages: dict[str, str] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hfstream-decode")
        self._updates: deque[FrameUpdate | None] = deque()
        self._update_ready = asyncio.Event()
        self._caches: dict[int, FrameDecodeState] = {}
        # Frames with data not decoded yet; an expired frame stays queued (with its last
        # state) until its final decode.
        self.scheduler = DecodeScheduler(
            queue_size=c.decode_queue, live=c.live, settle_s=c.live_settle_s
        )
        # Capture time (unix seconds, sender's clock) of each frame with a decode state.
        self._captured: dict[int, float] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._timer: asyncio.TimerHandle | None = None
        self._done = False
        self.frames_expired = 0
        self.decode_errors = 0
        self.updates_dropped = 0  # pictures the consumer did not take in time
        self._bad_entries = 0
        self.reports = ReportBuilder()
        # Pictures of the newest frames decoded complete: predicted frames' references.
        self.references = DecodedPictures()
        self.missing_references = 0  # predicted frames whose reference was not held exactly
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
        return self.scheduler.idle

    @property
    def decodes_skipped(self) -> int:
        """Decodes given up in a full queue (a frame may be twice)."""
        return self.scheduler.decodes_skipped

    @property
    def frames_shown(self) -> int:
        """Frames with at least one picture."""
        return self.scheduler.frames_shown

    @property
    def frames_skipped(self) -> int:
        """Live mode: frames with data never shown, a newer one won."""
        return self.scheduler.frames_skipped

    @property
    def stats(self) -> dict[str, int]:
        """How much per-frame state each container holds now (every one is bounded)."""
        return {
            "frames_open": len(self.reassembler.frames),
            "decode_queue": len(self.scheduler),
            "decode_caches": len(self._caches),
            "updates_waiting": len(self._updates),
            "tasks": len(self._tasks),
            "decodes_skipped": self.decodes_skipped,
            "frames_shown": self.frames_shown,
            "frames_skipped": self.frames_skipped,
            "decode_errors": self.decode_errors,
            "updates_dropped": self.updates_dropped,
            "references": len(self.references),
            "missing_references": self.missing_references,
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
                    self.drop_messages[e.reason] = str(e)
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
            self.scheduler.end_of_input()
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
        self.scheduler.new_session(session)  # frame ids start over
        self.references = DecodedPictures()  # and so do the frames predicted from
        self.reports.decoded = []
        self._feedback_sealer = Sealer(self.config.key, FEEDBACK, session)
        # A fresh id per session and per receiver run: the sender keeps a replay window per
        # id, so a restarted receiver's reports (numbered from 0 again) are heard.
        self._receiver_id = secrets.randbits(32)

    def _handle(self, events: list) -> None:
        for ev in events:
            if isinstance(ev, PatchesUpdated):
                frame = self.reassembler.frames.get(ev.frame_id)
                # Nothing to show before tier 0 (a patch's own, or the fallback).
                if frame is not None and (frame.tier0 or frame.fallback):
                    self._enqueue(frame)
            elif isinstance(ev, PacketDropped):
                self.drop_messages[ev.reason] = ev.message
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
                elif not self.scheduler.holds(ev.frame_id):
                    self._forget(ev.frame_id)
        self._arm_timer()

    def _enqueue(self, frame: FrameState) -> None:
        if frame.frame_id not in self._captured:
            session = self.opener.session_id or 0
            self._captured[frame.frame_id] = capture_time(session, frame.capture_ms)
        for ev in self.scheduler.add(frame):
            if isinstance(ev, Queued):
                self._wake.set()
            elif isinstance(ev, Skipped):
                self._finish(ev.frame_id)
            elif isinstance(ev, Evicted):
                fid = ev.frame_id
                # An open frame keeps its decode state: more of its data queues it again.
                if fid not in self.reassembler.frames and not self.scheduler.holds(fid):
                    self._forget(fid)

    @property
    def session_id(self) -> int:
        """The sender session the receiver follows now (0 before any packet opened)."""
        return self.opener.session_id or 0

    @property
    def skipped_ids(self) -> list[int]:
        """The newest 1024 skipped frames' ids, oldest first (live mode)."""
        return [frame_id for _, frame_id in self.scheduler.skipped]

    def skipped_in(self, session_id: int) -> list[int]:
        """The ids of the skipped frames (of the newest 1024) of one session: streams
        that follow each other can overlap, and both number their frames from 0."""
        return self.scheduler.skipped_in(session_id)

    def _forget(self, frame_id: int) -> None:
        self.scheduler.finished(frame_id)
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
        loop = asyncio.get_running_loop()
        while True:
            skipped, decision = self.scheduler.next(loop.time())
            for ev in skipped:
                self._finish(ev.frame_id)
            if isinstance(decision, Ended):
                self._emit(None)  # every pending decode is done
                return
            if not isinstance(decision, Decode):
                # Idle, or the newest frame settling: more data, or the wait's end, may
                # change the choice.
                timeout = decision.until - loop.time() if isinstance(decision, Wait) else None
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                continue
            frame_id = decision.frame.frame_id
            try:
                await self._decode(decision.frame)
            except Exception:
                # A frame that parses but does not decode (in unkeyed mode, say) costs its
                # own picture, never the receiver.
                self.decode_errors += 1
                log.exception("decoding frame %d failed", frame_id)
                self._finish(frame_id)
            finally:
                self.scheduler.decode_done(frame_id)

    async def _decode(self, frame: FrameState) -> None:
        loop = asyncio.get_running_loop()
        frame_id = frame.frame_id
        cache = self._caches.setdefault(frame_id, FrameDecodeState())
        stage = stage_of(frame)
        received = {
            f"tier{t}": frame.received_share(p)
            for t, p in ((0, PacketType.TIER0), (1, PacketType.TIER1), (2, PacketType.TIER2))
        }
        held = snapshot(frame)  # the worker's own copy: the event loop adds to ``frame``
        source = picture_source(held)
        if source == cache.best_from:
            # Nothing the picture depends on came since the last one (a frame queued again
            # when the input ended, say): showing it again would repeat the same picture.
            if self._is_last(frame, held, stage):
                self._finish(frame_id)
            return
        reference, exact = None, True
        if held.reference is not None:
            reference, exact = self.references.for_reference(held.reference, held.shown_size)
            self.missing_references += not exact  # shown from the picture held, if any
            if reference is None:  # nothing of its size shown here
                self._finish(frame_id)
                return
        # When the best picture is the continuous one, the preview is it: one update, not
        # the same picture twice (a predicted frame's is: it has tier 0 alone).
        continuous = held.reference is not None or best_is_continuous(self.codec, held)
        mode = "continuous" if continuous else "hybrid"
        preview_due = self.config.instant_preview and not cache.shown and stage != Stage.NONE
        if preview_due and mode == "hybrid":
            preview = await loop.run_in_executor(
                self._executor, continuous_picture, self.codec, held, cache
            )
            # Labelled by what it shows, tier 0 alone, whatever else the frame holds: the
            # stage of the frame comes with the next picture, so no stage comes twice.
            self._show(
                frame, cache, Stage.PREVIEW, preview, received, last=False, mode="continuous"
            )
        steps = self.config.decode_steps
        image = await loop.run_in_executor(
            self._executor,
            lambda: best_picture(self.codec, held, cache, steps, reference=reference),
        )
        last = self._is_last(frame, held, stage)
        cache.best_from = source
        self._show(frame, cache, stage, image, received, last=last, mode=mode)
        # Whole from an exact reference: the sender holds this very picture.
        self.references.add(frame_id, image, exact=held.complete and exact)
        self.reports.decoded = self.references.ids()  # what the sender may use
        if last:
            self._finish(frame_id)

    def _is_last(self, frame: FrameState, held: FrameState, stage: Stage) -> bool:
        """No better picture of ``frame`` can follow the one decoded from ``held``."""
        open_now = self.reassembler.frames.get(frame.frame_id) is frame
        return (
            (not open_now and frame.frame_id not in self.scheduler)
            or held.complete  # every packet was in this decode (tier 0 alone, for some)
            or stage == Stage.REFINED
            or (stage == Stage.FULL and not frame.has_tier2)
        )

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
        cache.shown = True
        self.scheduler.shown(frame_id)
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
                captured,
            )
        )

    def _finish(self, frame_id: int) -> None:
        """No more pictures of this frame: close it and drop its decode state (and its
        place in the decode queue)."""
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
            packet = report.to_packet(
                self.codec.model_id, sealer.session_id, number, self._receiver_id
            )
            try:
                await self.transport.send(sealer.seal(packet))
                self.reports_sent += 1
            except TransportClosed:
                return
