"""The asyncio sender: encode off the event loop, packetize, pace, send.

async with Sender(transport, codec) as sender:
    await sender.send_image(image)      # returns once its packets are queued
    await sender.flush()                # ...or once they have left
# leaving the block lets every queued packet leave (or expire), then stops the sender

Every packet carries its frame's capture time, so the receiver measures latency from
capture to picture. With ``SenderConfig.live``, ``send_frames`` keeps to the frame clock:
a frame whose slot passed while an earlier one was being encoded is skipped (counted in
``frames_skipped``), so a slow encoder never builds a backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from hfstream.codec.encoded import TOKENS, EncodedImage
from hfstream.codec.frame_coding import index_priors, packetize
from hfstream.codec.frames import to_uint8_image
from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.joint_strings import Tier0Joiner
from hfstream.codec.modes import gain_at_share
from hfstream.codec.schedules import kept_positions
from hfstream.geometry import SCALES
from hfstream.planning import Channel, FramePlan, encode_within
from hfstream.planning.frame_budgets import LIVE_KEY_SHARE, FrameBudgets
from hfstream.planning.gains import SCHEDULES
from hfstream.planning.temporal import LIVE_INTRA_SCHEDULES, encode_predicted
from hfstream.protocol.auth import (
    DATA,
    UNKEYED_WARNING,
    ReportOpener,
    Sealer,
    new_session_id,
)
from hfstream.protocol.capture_clock import capture_offset_ms
from hfstream.protocol.feedback import RateController, Report, ReportWatch
from hfstream.protocol.pacer import Pacer
from hfstream.protocol.packetizer import FramePackets, Packetizer
from hfstream.protocol.wire import (
    TAG_SIZE,
    PacketType,
    WireError,
    parse_header,
)
from hfstream.stream.coding import FixedCoding, PlannedCoding
from hfstream.stream.live_scales import LiveScales
from hfstream.stream.progressive import whole_picture
from hfstream.stream.references import SentPictures, shown_error
from hfstream.stream.sender_config import FrameSent, ReceiverGone, SenderConfig
from hfstream.transports.base import DatagramTransport, TransportClosed

log = logging.getLogger(__name__)


def indices_shown(codec: HybridCodec, enc: EncodedImage) -> bool:
    """Whether a receiver in ``auto`` mode would show ``enc``'s kept indices (tier 1, no
    tier 2): whether, by the model's measured gains, the share of index positions they
    cover adds at least ``MIN_SHOWN_GAIN_DB`` (see ``HybridCodec.auto_mode``)."""
    gains = codec.shown_gain_db
    if gains is None or not enc.patches:
        return True
    share = np.mean([len(kept_positions(p.schedule)) / TOKENS for p in enc.patches])
    return gain_at_share(gains, float(share)) > 0


@dataclass(frozen=True)
class _Coded:
    """A frame as ``Sender._code`` leaves it."""

    packets: FramePackets
    seconds: float
    reference: int | None
    share: float
    keep: Callable[[], None] | None


class Sender:
    """Encodes frames off the event loop, paces their packets onto a transport and reads
    the receiver's reports (module docstring: ``async with``, ``send_image``,
    ``send_frames``, ``flush``)."""

    def __init__(
        self, transport: DatagramTransport, codec: HybridCodec, config: SenderConfig | None = None
    ) -> None:
        self.transport = transport
        self.codec = codec
        self.config = config or SenderConfig()
        key = self.config.key
        if key is None:
            log.warning(UNKEYED_WARNING)
        self.session_id = new_session_id(time.time())
        self._sealer = Sealer(key, DATA, self.session_id)
        # Reports count only when they come from the receiver of this very session.
        self._reports_opener = ReportOpener(
            key, self.session_id, max_datagram=self.config.packetizing.mtu
        )
        self.reports_rejected: dict[str, int] = {}
        self.joiner = Tier0Joiner(codec)  # a predicted frame's packets join their strings
        self.packetizer = Packetizer(
            codec.model_id, self.session_id, self.config.packetizing, joiner=self.joiner
        )
        self.pacer = Pacer(self.config.rate_bytes_per_s, self.config.burst_bytes)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hfstream-encode")
        self._keeper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hfstream-reference")
        self._keeping: asyncio.Future[None] | None = None  # the newest frame's ``_keep``
        # ``sent_pictures`` is read by the encode thread, written by the keeper and the
        # reports.
        self._references_lock = threading.Lock()
        self._intra_at: float | None = None  # when the newest intra frame was coded
        self._intra_frames = 0
        self._next_frame = 0
        self.frames_skipped = 0  # live ``send_frames``: frames whose slot passed unencoded
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._pump_task: asyncio.Task | None = None
        self._feedback_task: asyncio.Task | None = None
        self.packets_sent = 0
        self.bytes_sent = 0
        # The newest reports only: a long stream must not grow the sender's memory.
        self.reports: deque[Report] = deque(maxlen=self.config.max_reports)
        # What each recent frame shows when whole, and which the receiver acknowledged:
        # the references of predicted frames (``PlannedCoding.temporal``).
        self.sent_pictures = SentPictures()
        self.reports_received = 0
        self.controller: RateController | None = None
        self.budgets = FrameBudgets()  # each planned frame's share of the rate
        timeout = self.config.receiver_timeout_s
        self.watch = ReportWatch(timeout) if timeout is not None else None
        self.last_plan: FramePlan | None = None  # of the newest frame planned
        self.live_scales = LiveScales()  # a live sender's scales for predicted frames
        coding = self.config.coding
        # Checked here, not in ``FixedCoding``: which reduced codebooks exist is the model's.
        sizes = codec.codebook_sizes
        if isinstance(coding, FixedCoding) and coding.codebook_size not in (None, *sizes):
            raise ValueError(
                f"codebook_size must be one of the model's {sizes}, got {coding.codebook_size}"
            )
        if isinstance(coding, PlannedCoding):
            self.controller = RateController(coding.target_bytes_per_s, coding.fps)
            key_share = coding.key_share if coding.temporal else 1.0
            if self.config.live:
                key_share = min(key_share, LIVE_KEY_SHARE)
            self.budgets = FrameBudgets(key_share)
            in_flight_s = 0.0 if self.config.live else coding.in_flight_s
            self.sent_pictures = SentPictures(in_flight_s=in_flight_s)
            self.pacer.set_rate(self.controller.rate, 0.0)

    def _prepare(
        self,
        image: np.ndarray,
        frame_id: int,
        budget: float | None,
        loss: float,
        capture_ms: int,
    ) -> tuple[FramePackets, float, int | None, float]:
        """The frame coded and packetized (its picture kept as a reference at once); the
        seconds it took, its reference, and its budget in frames' budgets."""
        coded = self._code(image, frame_id, budget, loss, capture_ms)
        if coded.keep is not None:
            coded.keep()
        return coded.packets, coded.seconds, coded.reference, coded.share

    def _code(
        self,
        image: np.ndarray,
        frame_id: int,
        budget: float | None,
        loss: float,
        capture_ms: int,
    ) -> _Coded:
        """The frame coded and packetized; the seconds it took, its reference, its budget
        in frames' budgets (an intra frame may borrow from the next ones), and what keeps
        its picture as a reference (a decode: ``send_image`` runs it once the packets are
        queued)."""
        cfg = self.config
        coding = cfg.coding
        t0 = time.perf_counter()
        packetizer = self.packetizer
        tiers: tuple[int, ...] = (0, 1, 2)
        per_frame = budget
        if isinstance(coding, FixedCoding):
            enc: EncodedImage = self.codec.encode(
                image,
                coding.schedule,
                codebook_size=coding.codebook_size,
                refine_steps=cfg.refine_steps,
            )
            if cfg.live and not indices_shown(self.codec, enc):
                tiers = (0,)  # the receiver's picture would not use them: spare their priors
            coded = cfg.prior_coding and tiers != (0,)
            priors = index_priors(self.codec, enc) if coded else None
        else:
            assert budget is not None, "a planned frame has a budget"
            now = time.monotonic()  # the in-flight references' clock
            size = (int(np.shape(image)[0]), int(np.shape(image)[1]))  # only its size's
            reference = None
            if coding.temporal:
                with self._references_lock:
                    reference = self.sent_pictures.reference(now, loss=loss, size=size)
            # The transport's resends of lost tier 0 go on top of the frame's budget (as
            # WebRTC's NACK resends go on top of its encoder's rate): where a frame fits
            # one packet, its plan counts on them instead of keeping room or parity.
            credit = self.budgets.planned_credit(budget, mtu=cfg.packetizing.mtu)
            channel = Channel(loss=loss, rounds=coding.tier0_sends, resend_credit=credit)
            budget = self.budgets.budget(budget, intra=reference is None)
            if reference is not None:
                planned = encode_predicted(
                    self.codec,
                    image,
                    budget,
                    reference=reference[1],
                    reference_id=reference[0],
                    channel=channel,
                    config=cfg.packetizing,
                    residual=coding.residual,
                    fast=cfg.live,
                    scales=self.live_scales.scales(1 / coding.fps) if cfg.live else SCALES,
                )
            else:
                # A live intra frame as a live predicted one: at the scales that keep up,
                # tier 0 alone (``LIVE_INTRA_SCHEDULES``).
                live = cfg.live and coding.temporal
                planned = encode_within(
                    self.codec,
                    image,
                    budget,
                    channel=channel,
                    config=cfg.packetizing,
                    prior_coding=cfg.prior_coding,
                    refine_steps=cfg.refine_steps,
                    scales=self.live_scales.scales(1 / coding.fps) if live else SCALES,
                    schedules=LIVE_INTRA_SCHEDULES if live else SCHEDULES,
                    joint_strings=not live,  # joining costs a live sender time
                )
            enc, priors = planned.encoded, planned.priors
            packetizer = Packetizer(
                self.codec.model_id, self.session_id, planned.packetizer, joiner=self.joiner
            )
            self.last_plan = planned.plan
        packets = packetize(
            enc,
            packetizer,
            frame_id=frame_id,
            priors=priors,
            tiers=tiers,
            frame_budget=budget,
            strict_budget=budget is not None,
            capture_ms=capture_ms,
        )
        if isinstance(coding, PlannedCoding):
            assert per_frame is not None and budget is not None
            queued = packets.in_priority_order()  # as the budget counts them: tags included
            self.budgets.spent(per_frame, packets.total_bytes + TAG_SIZE * len(queued))
        keep = None
        if isinstance(coding, PlannedCoding) and coding.temporal:
            if reference is None:
                self._intra_at = time.monotonic()
                self._intra_frames += 1
            held = reference[1] if reference is not None else None
            # Sent now, once coded: its acknowledgement is due ``in_flight_s`` from here.
            keep = functools.partial(
                self._keep, frame_id, image, packets, held, enc.reference, time.monotonic()
            )
        share = 1.0 if per_frame is None or budget is None else max(1.0, budget / per_frame)
        seconds = time.perf_counter() - t0
        if enc.predicted:
            self.live_scales.coded(seconds, enc.scale)
        return _Coded(packets, seconds, enc.reference, share, keep)

    def _keep(
        self,
        frame_id: int,
        image: np.ndarray,
        packets: FramePackets,
        held: np.ndarray | None,
        reference: int | None,
        sent_at: float,
    ) -> None:
        """Keep what the receiver shows once the frame is whole: what the next frames may
        be predicted from (a decode on the sender, the price of prediction)."""
        sent = [p for _, p in packets.in_priority_order()]
        picture = whole_picture(self.codec, sent, reference=held)
        error = shown_error(to_uint8_image(image), picture)
        with self._references_lock:
            self.sent_pictures.sent(
                frame_id, picture, error=error, reference=reference, now=sent_at
            )

    async def send_image(
        self,
        image: np.ndarray,
        deadline_s: float | None = None,
        capture_time: float | None = None,
    ) -> FrameSent:
        """Encode (in a worker thread) and queue one frame; its packets expire after
        ``deadline_s`` (default ``config.deadline_s``) from now. ``capture_time`` (unix
        seconds, default now) is when the frame was taken: the receiver's latency runs
        from it. Raises ``ReceiverGone`` when the receiver stopped reporting
        (``config.receiver_timeout_s``)."""
        loop = asyncio.get_running_loop()
        if self.watch is not None and self.watch.gone(loop.time()):
            silent = self.watch.silent_for(loop.time()) or 0.0
            raise ReceiverGone(silent, self.reports_received)
        taken = time.time() if capture_time is None else capture_time
        capture_ms = capture_offset_ms(self.session_id, taken)
        frame_id = self._next_frame
        self._next_frame = (self._next_frame + 1) & 0xFFFFFFFF
        ctl = self.controller
        budget = ctl.frame_budget if ctl is not None else None
        loss = ctl.loss if ctl is not None else 0.0
        keeping = self._keeping
        if keeping is not None and (keeping.done() or not self.config.live):
            await keeping  # the frame before may be this one's reference (or it failed)
        coded = await loop.run_in_executor(
            self._executor, self._code, image, frame_id, budget, loss, capture_ms
        )
        packets, encode_s, reference, share = (
            coded.packets,
            coded.seconds,
            coded.reference,
            coded.share,
        )
        # A frame given several frames' budgets (an intra frame, ``FrameBudgets``) takes
        # as many times longer to leave at the paced rate.
        deadline = deadline_s if deadline_s is not None else self.config.deadline_s
        expires = loop.time() + deadline * share
        counts: dict[int, int] = {}
        sizes: dict[int, int] = {}
        for tier, p in packets.in_priority_order():
            self.pacer.push(p, tier, expires)
            counts[tier] = counts.get(tier, 0) + 1
            sizes[tier] = sizes.get(tier, 0) + len(p) + TAG_SIZE
        self._idle.clear()
        self._ensure_pump()
        self._wake.set()
        if coded.keep is not None:
            # Its own thread, once the packets are queued: the decode delays neither them
            # nor (live, predicting from acknowledged frames only) the next frame's coding.
            self._keeping = loop.run_in_executor(self._keeper, coded.keep)
        return FrameSent(frame_id, counts, sizes, encode_s, capture_ms, reference)

    async def send_frames(self, frames: Iterable[np.ndarray], fps: float) -> list[FrameSent]:
        """Send frames at ``fps``, each with a deadline of one frame time; frame ``i`` counts
        as captured at its slot, ``i / fps`` after the start. Live (``config.live``): a
        frame is skipped when the next one is already due (an encode overran its slots),
        so the newest due frame is the one encoded."""
        loop = asyncio.get_running_loop()
        start, wall_start = loop.time(), time.time()
        out = []
        it = iter(frames)
        upcoming = next(it, None)
        i = 0
        while upcoming is not None:
            # One frame of look-ahead: a frame is stale only if a newer one is due.
            frame, upcoming = upcoming, next(it, None)
            now = loop.time()
            if self.config.live and upcoming is not None and now >= start + (i + 1) / fps:
                self.frames_skipped += 1
            else:
                await asyncio.sleep(max(0.0, start + i / fps - now))
                if self.config.live and upcoming is not None and self.awaiting_reference():
                    self.frames_skipped += 1
                else:
                    taken = wall_start + i / fps
                    sent = await self.send_image(frame, deadline_s=1.0 / fps, capture_time=taken)
                    out.append(sent)
            i += 1
        return out

    def awaiting_reference(self, now: float | None = None) -> bool:
        """Whether the next frame would be intra while the acknowledgement of the last intra
        frame, sent less than ``SenderConfig.key_wait_s`` ago (at ``now``,
        ``time.monotonic()`` by default), may still come: a live ``send_frames`` skips
        such a frame rather than code another intra frame (several times a predicted
        frame's time, and the acknowledgement usually comes within it)."""
        coding = self.config.coding
        if not (isinstance(coding, PlannedCoding) and coding.temporal) or self._intra_at is None:
            return False
        if self.reports_received == 0 and self._intra_frames > 1:
            return False  # it waited once and no report came: a receiver that never reports
        now = time.monotonic() if now is None else now
        if now - self._intra_at >= self.config.key_wait_s:
            return False
        with self._references_lock:
            loss = self.controller.loss if self.controller is not None else 0.0
            return self.sent_pictures.reference(now, loss=loss) is None

    def start(self) -> None:
        """Start reading reports now (sending a frame starts it too)."""
        self._ensure_pump()

    def _ensure_pump(self) -> None:
        loop = asyncio.get_running_loop()
        if self._pump_task is None or self._pump_task.done():
            self._pump_task = loop.create_task(self._pump())
        if self._feedback_task is None or self._feedback_task.done():
            self._feedback_task = loop.create_task(self._feedback())

    async def _feedback(self) -> None:
        """Read the receiver's reports (anything else coming back is ignored)."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await self.transport.recv()
            except TransportClosed:
                return
            try:
                packet = self._reports_opener.open(data)
                header, payload = parse_header(packet, self.codec.model_id)
                if header.type != PacketType.FEEDBACK:
                    raise WireError("type", f"{header.type.name} packet where a report belongs")
                report = Report.from_payload(payload)
            except WireError as e:
                self.reports_rejected[e.reason] = self.reports_rejected.get(e.reason, 0) + 1
                continue
            self.reports.append(report)
            with self._references_lock:
                self.sent_pictures.acknowledge(report.decoded)
            self.reports_received += 1
            if self.watch is not None:
                self.watch.on_report(loop.time())
            if self.controller is not None:
                self.controller.on_report(report)
                self.pacer.set_rate(self.controller.rate, loop.time())

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            for p in self.pacer.pop(now):
                datagram = self._sealer.seal(p)  # numbered as it leaves, so in order
                try:
                    await self.transport.send(datagram)
                except TransportClosed:
                    # Nothing more can leave: what is queued is given up, so that
                    # ``flush`` (and leaving ``async with``) does not wait for it forever.
                    log.info("transport closed: the packets still queued are given up")
                    self._idle.set()
                    return
                self.packets_sent += 1
                self.bytes_sent += len(datagram)
            nxt = self.pacer.next_time(loop.time())
            if nxt is None:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
            else:
                await asyncio.sleep(max(0.0, nxt - loop.time()))

    async def flush(self) -> None:
        """Wait until every queued packet has been sent or dropped as late (or given up
        because the transport closed)."""
        await self._idle.wait()

    async def __aenter__(self) -> Sender:
        self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        """Let the queued packets leave (not when the block failed: they may never), then
        stop. The transport stays open: it is the caller's, to close (or ``async with``)."""
        try:
            if exc_type is None:
                await self.flush()
        finally:
            await self.close()

    async def close(self) -> None:
        for task in (self._pump_task, self._feedback_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._keeper.shutdown(wait=False, cancel_futures=True)
