"""``hfstream send`` and ``hfstream recv``: stream an image or a video over UDP or WebRTC.

    hfstream recv --listen 127.0.0.1:5000 --out out/recv            # start first
    hfstream send photo.png --to 127.0.0.1:5000
    hfstream send video.mp4 --to 127.0.0.1:5000 --fps 10 --target 60000
    hfstream send pattern --frames 30 --to 127.0.0.1:5000           # generated test video

    hfstream recv --live --keep-listening --frames 60   # real time, stream after stream
    hfstream send pattern --live --frames 60 --fps 10

``--live`` on ``send`` skips a frame when the next is due before its encode can begin; on
``recv`` it decodes only the newest frame and skips stale ones, so latency stays bounded.
``frames.csv`` and the summary give frames shown and skipped and the latency from capture
(the sender's clock, carried in every packet) to the picture (the receiver's clock; on
two machines their offset adds to it). ``--keep-listening`` writes each stream to
``OUT/streamNNN/`` and waits for the next one.

With ``--rtc`` the address is the TCP signalling address instead: the receiver listens
there, the sender connects, and the frames go over WebRTC data channels. The arguments
are defined and checked in ``hfstream.apps.cli``; this module does the work.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import errno
import statistics
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path

import numpy as np
from PIL import Image

from hfstream.apps import args as a
from hfstream.apps.drops import drop_counts, why_no_picture
from hfstream.apps.images import read_rgb
from hfstream.apps.stops import Stop
from hfstream.codec.shared import shared_codec
from hfstream.media.video import (
    VideoWriter,
    pattern_frames,
    sample_frames,
    timed_frames,
    video_fps,
)
from hfstream.stream.coding import FixedCoding, PlannedCoding
from hfstream.stream.collect import FrameRecord, capture_fps, on_timeline
from hfstream.stream.progressive import Stage
from hfstream.stream.receiver import FrameUpdate, Receiver, ReceiverConfig
from hfstream.stream.sender import FrameSent, ReceiverGone, Sender, SenderConfig
from hfstream.transports.base import DatagramTransport

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
STAGE_WORDS = {
    Stage.PREVIEW: "tier 0 only",
    Stage.PARTIAL: "some indices",
    Stage.FULL: "every kept index",
    Stage.REFINED: "kept and withheld indices",
}
DEFAULT_VIDEO_FPS = 10.0  # received.mp4's rate when the capture times tell none
SAY_WHY_AFTER_S = 3.0  # a receiver that drops every packet says why this soon


def _frames(args: argparse.Namespace) -> tuple[Iterator[np.ndarray], float]:
    """The frames to send and their rate. A pattern or a clip is made or read as it is
    sent, so a long one starts at once; a clip's first frame is read now, so that a bad
    file fails before the model loads. A clip faster than ``--fps`` is sampled at it."""
    src = args.input
    if src == "pattern":
        return pattern_frames(args.frames or 30), args.fps or 10.0
    path = a.input_file(src)
    suffix = path.suffix.lower()
    if suffix == ".hfs":
        raise ValueError(
            f"{src} is an encoded .hfs file: send streams an image or a video "
            "(`hfstream decode` turns it into an image)"
        )
    if suffix in IMAGE_SUFFIXES:
        return iter([read_rgb(path, args.max_megapixels, "hfstream send")]), args.fps or 1.0
    timed = timed_frames(path)
    first = next(timed, None)
    if first is None:
        raise ValueError(f"{src} holds no video frames")
    clip_fps = video_fps(path)
    fps = min(args.fps or clip_fps, clip_fps)
    return islice(sample_frames(chain([first], timed), fps), args.frames), fps


async def _open(args: argparse.Namespace, sending: bool) -> DatagramTransport:
    if args.rtc:
        from hfstream.transports.rtc import rtc_connect

        host, port = args.to if sending else args.listen
        role = "answer" if sending else "offer"
        return await rtc_connect(
            role,
            host,
            port,
            key=args.key,
            ice_servers=args.ice_server,
            local_only=args.local_only,
            wait_s=None if sending else args.wait,
        )
    from hfstream.transports.udp import UdpTransport

    if sending:
        return await UdpTransport.open(("0.0.0.0", 0), remote=args.to)
    host, port = args.listen
    try:
        return await UdpTransport.open(args.listen)
    except OSError as e:
        why = e.strerror or str(e)
        if e.errno == errno.EADDRINUSE:
            why = "the port is in use (another recv?): pick another with --listen HOST:PORT"
        raise ValueError(f"cannot listen on UDP {host}:{port}: {why}") from None


async def _await_report(sender: Sender, wait_s: float) -> None:
    """Give the last datagrams time to leave and, when none came yet, a report to arrive."""
    loop = asyncio.get_running_loop()
    end = loop.time() + wait_s
    await asyncio.sleep(0.2)
    while not sender.reports_received and loop.time() < end:
        await asyncio.sleep(0.05)


async def run_send(args: argparse.Namespace, stop: Stop) -> int:
    a.resolvable(args.to)  # every check before the model loads
    frames, fps = _frames(args)
    codec = shared_codec(args.model)
    host, port = args.to
    transport = await _open(args, sending=True)
    coding = (
        FixedCoding(args.schedule)
        if args.target is None
        else PlannedCoding(
            args.target,
            fps=fps,
            tier0_sends=args.tier0_sends,
            temporal=not args.intra,
            in_flight_s=args.in_flight,
        )
    )
    config = SenderConfig(
        rate_bytes_per_s=args.rate,
        coding=coding,
        key=args.key,
        live=args.live,
        refine_steps=args.refine_steps,
        receiver_timeout_s=args.receiver_timeout or None,
    )
    sender = Sender(transport, codec, config)
    sent: list = []
    gone: ReceiverGone | None = None
    try:
        sent = await sender.send_frames(frames, fps)
        await sender.flush()
        await _await_report(sender, args.report_wait)
    except ReceiverGone as e:
        gone = e
    except asyncio.CancelledError:
        if not stop.requested:
            raise
        stop.acknowledge()
    finally:
        await sender.close()
        await transport.close()
    if gone is not None:
        print(
            f"hfstream send: the receiver stopped reporting ({gone.reports} reports, then none "
            f"for {gone.silent_s:.0f} s): stopped after {sender.packets_sent} packets "
            "(--receiver-timeout sets the wait)",
            file=sys.stderr,
        )
        return 1
    if stop.requested:
        print(
            f"hfstream send: stopped by {stop.name} after {sender.packets_sent} packets",
            file=sys.stderr,
        )
        return stop.exit_status
    skipped = (
        f", {sender.frames_skipped} skipped (the next was due before their encode began)"
        if args.live
        else ""
    )
    print(
        f"sent {len(sent)} of {len(sent) + sender.frames_skipped} frame(s){skipped}: "
        f"{sender.packets_sent} packets, {sender.bytes_sent} bytes (headers and parity "
        f"included; late packets are dropped unsent); {sender.reports_received} receiver reports"
    )
    if sent:
        print(_encode_summary(sent))
    if not sender.reports_received:
        print(
            f"hfstream send: warning: no receiver report within {args.report_wait:g} s of the "
            f"last packet; is `hfstream recv{' --rtc' if args.rtc else ''}` listening on "
            f"{host}:{port}, with the same --key and --model? (a receiver that drops "
            "every packet says why)",
            file=sys.stderr,
        )
        return 1
    return 0


def _encode_summary(sent: list[FrameSent]) -> str:
    """How many frames were intra and predicted, and what their encodes took."""
    parts = []
    for kind, frames in (
        ("intra", [f for f in sent if f.reference is None]),
        ("predicted", [f for f in sent if f.reference is not None]),
    ):
        if frames:
            times = [f.encode_s for f in frames]
            parts.append(
                f"{len(frames)} {kind} (encode median {np.median(times):.2f} s, "
                f"max {max(times):.2f} s)"
            )
    # In order, so that a run of intra frames (waiting for a first acknowledgement, say)
    # shows where it came.
    order = "".join("I" if f.reference is None else "P" for f in sent[:SHOWN_ORDER])
    more = "..." if len(sent) > SHOWN_ORDER else ""
    return "frames: " + ", ".join(parts) + (f"; in order {order}{more}" if order else "")


SHOWN_ORDER = 120  #: frames whose kinds the summary lists in order


@dataclass
class _Stream:
    """What ``recv`` keeps of one stream (``--keep-listening`` takes one after another)."""

    out: Path
    session: int | None = None  # the sender's session, as of the stream's first picture
    records: dict[int, FrameRecord] = field(default_factory=dict)
    # Frames done since the stream's first picture (a receiver may join mid-stream):
    # final, or (live) superseded by a newer picture.
    finals: int = 0
    first_id: int | None = None  # the frame of the stream's first picture
    said_why: bool = False  # why no picture arrives was said (``_say_why``)

    def add(self, u: FrameUpdate, live: bool, session: int) -> None:
        if self.session is None:
            self.session = session
        if self.first_id is None:
            self.first_id = u.frame_id
        rec = self.records.get(u.frame_id)
        if rec is None:
            self.records[u.frame_id] = FrameRecord.first(u)
        else:
            rec.update(u)
        if live:
            # Live: every frame before the newest picture is done (shown, skipped or lost).
            since_first = (u.frame_id - self.first_id) & 0xFFFFFFFF  # ids wrap at 2**32
            self.finals = max(self.finals, since_first + u.final)
        else:
            self.finals += u.final


async def _receive_stream(
    receiver: Receiver, args: argparse.Namespace, stream: _Stream, stop: Stop
) -> bool:
    """Take pictures until ``--frames`` are done or none came for ``--timeout``; False
    when no more can come (the transport closed, or a stop was asked)."""
    why = asyncio.get_running_loop().create_task(_say_why(receiver, stream))
    try:
        return await _take_pictures(receiver, args, stream, stop)
    finally:
        why.cancel()


async def _say_why(receiver: Receiver, stream: _Stream) -> None:
    """While no picture came but packets did, say in one line why they were dropped (a
    wrong key, another model...), once, a few seconds in: not only at the end, which
    may be never."""
    while not stream.records:
        await asyncio.sleep(SAY_WHY_AFTER_S)
        why = why_no_picture(receiver.drops, receiver.drop_messages)
        if why and not stream.records:
            print(f"hfstream recv: {why}", file=sys.stderr, flush=True)
            stream.said_why = True
            return


async def _take_pictures(
    receiver: Receiver, args: argparse.Namespace, stream: _Stream, stop: Stop
) -> bool:
    while not args.frames or stream.finals < args.frames:
        if stop.requested:  # a cancellation that ``wait_for`` let slip (Python < 3.12)
            return False
        timeout = args.timeout if stream.records else args.wait
        try:
            u = await asyncio.wait_for(receiver.__anext__(), timeout)
        except asyncio.TimeoutError:
            what = "new picture" if stream.records else "picture"
            print(f"no {what} for {timeout:g} s; stopping", flush=True)
            return True
        except StopAsyncIteration:
            return False
        stream.add(u, args.live, receiver.session_id)
        if args.frames == 1:
            name = stream.out / f"frame{u.frame_id}_{u.stage.name.lower()}.png"
            Image.fromarray(u.image).save(name)
        print(
            f"frame {u.frame_id}: {u.stage.name.lower():8s} after "
            f"{1000 * u.latency_s:6.1f} ms, {1000 * u.capture_latency_s:6.1f} ms from capture "
            "(tiers received "
            + " / ".join(f"{u.received[t]:.0%}" for t in ("tier0", "tier1", "tier2"))
            + ")",
            flush=True,
        )
    return True


async def run_recv(args: argparse.Namespace, stop: Stop) -> int:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(
            f"--out {out} is a file: recv writes a folder (frames.csv, received.mp4, pictures)"
        )
    out.mkdir(parents=True, exist_ok=True)
    codec = shared_codec(args.model)
    host, port = args.listen
    udp_waiting = (
        f"waiting for a sender on UDP {host}:{port}, e.g. `hfstream send IMAGE --to "
        f"{host}:{port}`; Ctrl-C to stop"
    )
    if args.rtc:  # connecting blocks until a sender comes, so say so first
        print(
            f"waiting for a WebRTC sender to connect to the signalling address {host}:{port} "
            f"(TCP), e.g. `hfstream send IMAGE --rtc --to {host}:{port}`; Ctrl-C to stop",
            flush=True,
        )
    receiver: Receiver | None = None
    transport: DatagramTransport | None = None
    stream = _Stream(out)
    shown = 0  # frames shown over every stream
    try:
        transport = await _open(args, sending=False)
        # Said once the socket is bound, so a sender started on this line is heard.
        print("connected; waiting for pictures" if args.rtc else udp_waiting, flush=True)
        receiver = Receiver(
            transport,
            codec,
            ReceiverConfig(
                key=args.key,
                live=args.live,
                max_frame_pixels=int(args.max_megapixels * 1e6),
            ),
        )
        async with receiver:
            number = 1
            while True:
                if args.keep_listening:
                    stream = _Stream(out / f"stream{number:03d}")
                    stream.out.mkdir(exist_ok=True)
                more = await _receive_stream(receiver, args, stream, stop)
                if not (args.keep_listening and more and stream.records):
                    break
                shown += len(stream.records)
                _finish_stream(stream, receiver, args)
                number += 1
                print(f"waiting for the next stream on {host}:{port}; Ctrl-C to stop", flush=True)
    except asyncio.CancelledError:
        if not stop.requested:
            raise
        stop.acknowledge()
    finally:
        if transport is not None:
            await transport.close()
    if stop.requested:
        # Said here, not only where the cancellation is caught: it can also reach the
        # receiver first, which then ends the stream as if the transport had closed.
        stop.acknowledge()
        print(f"hfstream recv: stopped by {stop.name}; writing what arrived", file=sys.stderr)
    if stream.records or not args.keep_listening:
        shown += len(stream.records)
        _finish_stream(stream, receiver, args)
    if stop.requested:
        return stop.exit_status
    return 0 if shown else 1


def _finish_stream(stream: _Stream, receiver: Receiver | None, args: argparse.Namespace) -> None:
    # The ids of this stream's skipped frames (the receiver keeps the newest 1024).
    skipped = []
    if receiver is not None and stream.session is not None:
        skipped = list(dict.fromkeys(receiver.skipped_in(stream.session)))
    wrote = _write_results(stream.out, stream.records, skipped, args)
    drops = receiver.drops if receiver else {}
    if not (stream.records or stream.said_why):
        why = why_no_picture(drops, receiver.drop_messages if receiver else {})
        if why:
            print(f"hfstream recv: {why}", file=sys.stderr)
    _summary(stream, skipped, drops, wrote, live=args.live)


def _write_results(
    out: Path, records: dict[int, FrameRecord], skipped: list[int], args: argparse.Namespace
) -> list:
    """frames.csv always; for a sequence also the video (and PNGs); returns the names."""
    rows = [
        [
            r.frame_id,
            r.stage.name.lower(),
            f"{1000 * r.latency_s:.1f}",
            f"{1000 * r.first_picture_s:.1f}",
            r.updates,
            f"{1000 * r.first_capture_s:.1f}",
            f"{1000 * r.capture_s:.1f}",
        ]
        for r in records.values()
    ]
    rows += [[fid, "skipped", "", "", 0, "", ""] for fid in skipped if fid not in records]
    with (out / "frames.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "frame",
                "stage",
                "latency_ms",
                "first_picture_ms",
                "updates",
                "capture_to_first_ms",
                "capture_to_best_ms",
            ]
        )
        w.writerows(sorted(rows, key=lambda row: row[0]))
    wrote = [
        "frames.csv (one row per frame: best stage or skipped, when it came from the first "
        "packet and from capture, how many updates)"
    ]
    if records and args.frames != 1:
        fps, rate = args.fps, "as --fps says"
        if fps is None:
            fps = capture_fps(records.values())
            rate = "the sender's, from the capture times"
            if fps is None:
                fps, rate = DEFAULT_VIDEO_FPS, "the default: one capture time tells no rate"
        pictures = on_timeline(records, fps)
        n = len(pictures)
        with VideoWriter(out / "received.mp4", fps) as w:
            for img in pictures:
                w.write(img)
        wrote.append(
            f"received.mp4 ({n} frames at {fps:g} fps, {rate}; placed by capture time, a "
            "skipped or lost frame repeats the picture before it)"
        )
        if args.save_frames:
            for i, img in enumerate(pictures):
                Image.fromarray(img).save(out / f"frame{i:05d}.png")
            wrote.append(f"frame00000.png..frame{n - 1:05d}.png")
    elif records:
        wrote.append("frameN_STAGE.png (each picture as it improved)")
    return wrote


def _summary(
    stream: _Stream, skipped: list[int], drops: dict[str, int], wrote: list, *, live: bool
) -> None:
    """The end-of-run numbers, each said in words."""
    records, out = stream.records, stream.out
    if not records:
        print(f"no picture arrived; wrote {out}/frames.csv (empty)")
        return
    stages = {s: sum(r.stage == s for r in records.values()) for s in STAGE_WORDS}
    print(
        f"{len(records)} frame(s) shown, {stream.finals} reached their last picture; "
        "best stage per frame: "
        + ", ".join(f"{s.name.lower()} ({STAGE_WORDS[s]}) {n}" for s, n in stages.items() if n)
    )
    if live:
        print(
            f"{len(skipped)} frame(s) skipped (live mode: a newer frame was ready before their "
            "decode began)"
        )
    first = statistics.median(r.first_picture_s for r in records.values())
    best = statistics.median(r.latency_s for r in records.values())
    print(
        f"median time from a frame's first packet to its first picture {1000 * first:.0f} ms, "
        f"to its best picture {1000 * best:.0f} ms"
    )
    to_first = [r.first_capture_s for r in records.values()]
    to_best = [r.capture_s for r in records.values()]
    print(
        "latency from capture (sender's clock) to the picture (this clock): first picture "
        f"p50 {1000 * np.percentile(to_first, 50):.0f} ms, p95 "
        f"{1000 * np.percentile(to_first, 95):.0f} ms; best picture p50 "
        f"{1000 * np.percentile(to_best, 50):.0f} ms, p95 {1000 * np.percentile(to_best, 95):.0f} "
        "ms (across machines this includes the clocks' offset)"
    )
    print(drop_counts(drops))
    print(f"wrote {out}/: " + "; ".join(wrote))
