"""Soak: a keyed stream beside a flood of forged packets, then a long stream at 30 % loss,
both through the in-memory transport and the real ``Receiver``.

    python -m sim.soak [--forged 100000] [--flood-frames 20] [--frames 1000] [--loss 0.3]

Phase 1 (flood): before each of ``--flood-frames`` real frames, a share of ``--forged``
forged datagrams reaches the receiver: frames nobody sent (bogus frame ids), declared
geometry of 16384 x 16384, tier 1 of frames without tier 0 (all three sealed under a
stranger's key), real datagrams with one bit flipped, and replays of real ones. Every
real frame must still arrive as its final picture.

Phase 2 (loss): ``--frames`` frames at ``--fps``, each datagram lost with probability
``--loss`` (seeded). The receiver decodes what it can keep up with (the newest frame wins),
and the frames still open when the stream ends get their last decode.

Reported: RSS (psutil) before and after each phase, the receiver's containers and task
counts (their maximum over the phase), drops by reason, and the event loop's CPU time per
forged datagram. One 256 x 256 frame is coded once and sent under new frame ids, so the
soak measures the transport and the receiver, not the encoder.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import psutil
from tqdm import tqdm

from hfstream.codec.frame_coding import frame_entries, index_priors
from hfstream.codec.hybrid import HybridCodec
from hfstream.protocol.auth import DATA, Sealer, new_session_id
from hfstream.protocol.packetizer import FrameEntries, Packetizer, PacketizerConfig
from hfstream.protocol.wire import Packet, parse_header
from hfstream.stream.receiver import Receiver, ReceiverConfig
from hfstream.transports.memory import MemoryTransport, memory_pair

KEY = bytes(range(32))
STRANGER = bytes(range(100, 132))  # a key that is not the stream's
FORGERIES = ("frame-id", "geometry", "orphan-tier1", "bad-tag", "replay")
BATCH = 1000  # forged datagrams injected before the receiver drains them


@dataclass
class PhaseResult:
    rss_before_mb: float
    rss_after_mb: float
    wall_s: float
    frames_sent: int
    finals: int = 0  # frames whose final picture arrived
    updates: int = 0
    stats_max: dict[str, int] = field(default_factory=dict)  # receiver.stats, maxima
    tasks_max: int = 0  # asyncio tasks alive, at most
    forged: int = 0
    forged_cpu_us: float = 0.0  # event-loop CPU per forged datagram

    @property
    def rss_growth_mb(self) -> float:
        return self.rss_after_mb - self.rss_before_mb


@dataclass
class SoakResult:
    flood: PhaseResult
    loss: PhaseResult
    drops: dict[str, int]
    reports: int


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


class _Stream:
    """The real stream: one coded frame sent under new frame ids, sealed in order."""

    def __init__(self, codec: HybridCodec, image: np.ndarray) -> None:
        enc = codec.encode(image, "1_4")
        config = PacketizerConfig()
        self.entries: FrameEntries = frame_entries(enc, config, priors=index_priors(codec, enc))
        self.sealer = Sealer(KEY, DATA, new_session_id(time.time()))
        self.packetizer = Packetizer(codec.model_id, self.sealer.session_id, config)
        self.next_id = 0
        self.sent: list[bytes] = []  # the latest frame's datagrams, for replays and bit flips

    def frame(self) -> tuple[int, list[bytes]]:
        fid = self.next_id
        self.next_id += 1
        fp = self.packetizer.packetize(self.entries, frame_id=fid)
        self.sent = [self.sealer.seal(p) for _, p in fp.in_priority_order()]
        return fid, self.sent


class _Forger:
    """Forged datagrams of every kind, in a seeded cycle."""

    def __init__(self, stream: _Stream, rng: np.random.Generator) -> None:
        fp = stream.packetizer.packetize(stream.entries, frame_id=0)
        self.tier0 = parse_header(fp.tier0[0])
        self.tier1 = parse_header(fp.tier1[0])
        self.sealer = Sealer(STRANGER, DATA, stream.sealer.session_id + 1)
        self.stream = stream
        self.rng = rng
        self.made = 0

    def _packet(self, template: tuple, **fields: int) -> bytes:
        header, payload = template
        return self.sealer.seal(Packet(dataclasses.replace(header, **fields), payload).serialize())

    def batch(self, n: int) -> list[bytes]:
        out = []
        for _ in range(n):
            kind = FORGERIES[self.made % len(FORGERIES)]
            self.made += 1
            fid = int(self.rng.integers(0, 2**32))
            if kind == "frame-id":
                out.append(self._packet(self.tier0, frame_id=fid))
            elif kind == "geometry":
                out.append(self._packet(self.tier0, frame_id=fid, height=16384, width=16384))
            elif kind == "orphan-tier1":
                out.append(self._packet(self.tier1, frame_id=fid))
            else:
                real = self.stream.sent[int(self.rng.integers(len(self.stream.sent)))]
                if kind == "bad-tag":
                    flipped = bytearray(real)
                    flipped[int(self.rng.integers(len(real)))] ^= 1 << int(self.rng.integers(8))
                    real = bytes(flipped)
                out.append(real)
        return out


class _Watch:
    """Collects the receiver's pictures and the maxima of its containers."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.finals: set[int] = set()
        self.updates = 0
        self.stats_max: dict[str, int] = {}
        self.tasks_max = 0
        self._final = asyncio.Event()

    async def consume(self) -> None:
        async for u in self.receiver:
            self.updates += 1
            if u.final:
                self.finals.add(u.frame_id)
                self._final.set()

    def sample(self) -> None:
        for k, v in self.receiver.stats.items():
            self.stats_max[k] = max(self.stats_max.get(k, 0), v)
        self.tasks_max = max(self.tasks_max, len(asyncio.all_tasks()))

    async def final_of(self, frame_id: int, timeout: float) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout
        while frame_id not in self.finals:
            self._final.clear()
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self._final.wait(), left)
            except TimeoutError:
                return False
        return True


def _consumed(receiver: Receiver) -> int:
    return receiver.reassembler.packets + sum(receiver.auth_drops.values())


async def _drain(tx: MemoryTransport) -> int:
    """Read the receiver's reports (the sender's side), so they do not pile up."""
    n = 0
    while True:
        try:
            await tx.recv()
        except Exception:  # TransportClosed: the run is over
            return n
        n += 1


async def _flood(
    watch: _Watch, rx: MemoryTransport, stream: _Stream, forger: _Forger, forged: int, frames: int
) -> PhaseResult:
    receiver = watch.receiver
    result = PhaseResult(_rss_mb(), 0.0, 0.0, frames)
    start = time.perf_counter()
    cpu = 0.0
    injected = _consumed(receiver)
    bar = tqdm(total=forged, unit="pkt", desc="flood", leave=False)
    for i in range(frames):
        share = forged * (i + 1) // frames - forged * i // frames
        for lo in range(0, share, BATCH):
            batch = forger.batch(min(BATCH, share - lo))
            t0 = time.thread_time()  # the event loop's thread: receive, check, count
            for d in batch:
                rx.inbox.put(d)
            injected += len(batch)
            while _consumed(receiver) < injected:
                await asyncio.sleep(0)
            cpu += time.thread_time() - t0
            bar.update(len(batch))
            watch.sample()
        fid, datagrams = stream.frame()
        for d in datagrams:
            rx.inbox.put(d)
        injected += len(datagrams)
        await watch.final_of(fid, timeout=60)
        watch.sample()
    bar.close()
    result.rss_after_mb = _rss_mb()
    result.wall_s = time.perf_counter() - start
    result.finals = len(watch.finals)
    result.forged = forged
    result.forged_cpu_us = cpu / max(forged, 1) * 1e6
    return result


async def _lossy(
    watch: _Watch, rx: MemoryTransport, stream: _Stream, frames: int, loss: float, fps: float
) -> PhaseResult:
    rng = np.random.default_rng(1)
    watch.finals.clear()
    watch.updates, watch.stats_max, watch.tasks_max = 0, {}, 0
    result = PhaseResult(_rss_mb(), 0.0, 0.0, frames)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in tqdm(range(frames), unit="frame", desc=f"{loss:.0%} loss", leave=False):
        _, datagrams = stream.frame()
        for d in datagrams:
            if rng.random() >= loss:
                rx.inbox.put(d)
        await asyncio.sleep(max(0.0, start + (i + 1) / fps - loop.time()))
        watch.sample()
    result.wall_s = loop.time() - start
    return result


async def soak(
    codec: HybridCodec,
    image: np.ndarray,
    *,
    forged: int,
    flood_frames: int,
    frames: int,
    loss: float,
    fps: float,
    seed: int = 0,
) -> SoakResult:
    stream = _Stream(codec, image)
    forger = _Forger(stream, np.random.default_rng(seed))
    tx, rx = memory_pair()
    receiver = Receiver(rx, codec, ReceiverConfig(key=KEY))
    async with receiver:
        watch = _Watch(receiver)
        consumer = asyncio.create_task(watch.consume())
        reports = asyncio.create_task(_drain(tx))
        # A first frame warms the decoder up (its buffers are not growth).
        fid, datagrams = stream.frame()
        for d in datagrams:
            rx.inbox.put(d)
        await watch.final_of(fid, timeout=120)
        watch.finals.clear()
        flood = await _flood(watch, rx, stream, forger, forged, flood_frames)
        stats = dict(watch.stats_max)
        flood.stats_max, flood.tasks_max = stats, watch.tasks_max
        lossy = await _lossy(watch, rx, stream, frames, loss, fps)
        await tx.close()
        await consumer  # the frames still open get their last decode
        watch.sample()
        lossy.stats_max, lossy.tasks_max = dict(watch.stats_max), watch.tasks_max
        lossy.rss_after_mb = _rss_mb()
        lossy.finals, lossy.updates = len(watch.finals), watch.updates
        drops = receiver.drops
    return SoakResult(flood, lossy, drops, await reports)


def _format(r: SoakResult) -> str:
    f, lo = r.flood, r.loss
    lines = [
        f"flood: {f.forged} forged datagrams beside {f.frames_sent} real frames, "
        f"{f.finals}/{f.frames_sent} real frames decoded to their final picture",
        f"  event-loop CPU per forged datagram: {f.forged_cpu_us:.1f} us",
        f"  RSS {f.rss_before_mb:.1f} -> {f.rss_after_mb:.1f} MB ({f.rss_growth_mb:+.1f} MB), "
        f"{f.wall_s:.1f} s",
        f"  receiver max: {f.stats_max}, asyncio tasks max {f.tasks_max}",
        f"loss: {lo.frames_sent} frames, {lo.updates} pictures, {lo.finals} final",
        f"  RSS {lo.rss_before_mb:.1f} -> {lo.rss_after_mb:.1f} MB ({lo.rss_growth_mb:+.1f} MB), "
        f"{lo.wall_s:.1f} s",
        f"  receiver max: {lo.stats_max}, asyncio tasks max {lo.tasks_max}",
        f"drops: {dict(sorted(r.drops.items()))}; reports sent and read: {r.reports}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.soak", description=__doc__.split("\n")[0])
    p.add_argument("--forged", type=int, default=100_000, help="forged datagrams in all")
    p.add_argument("--flood-frames", type=int, default=20, help="real frames in the flood")
    p.add_argument("--frames", type=int, default=1000, help="frames of the lossy stream")
    p.add_argument("--loss", type=float, default=0.3, help="loss probability, phase 2")
    p.add_argument("--fps", type=float, default=30.0, help="frame rate of phase 2")
    p.add_argument("--size", type=int, default=256, help="frame side in pixels")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.forged < 0 or args.flood_frames < 1 or args.frames < 0:
        p.error("--forged and --frames must be >= 0, --flood-frames >= 1")
    if not 0 <= args.loss < 1 or not args.fps > 0 or not 64 <= args.size <= 1024:
        p.error("--loss must be in [0, 1), --fps positive, --size in 64..1024")
    from hfstream.media.samples import bundled_image

    codec = HybridCodec.from_pretrained()
    image = bundled_image()[: args.size, : args.size].copy()
    result = asyncio.run(
        soak(
            codec,
            image,
            forged=args.forged,
            flood_frames=args.flood_frames,
            frames=args.frames,
            loss=args.loss,
            fps=args.fps,
            seed=args.seed,
        )
    )
    print(" ".join(["python -m sim.soak", *(argv if argv is not None else sys.argv[1:])]))
    print(_format(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
