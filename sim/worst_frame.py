"""The most CPU and memory a peer holding the key can make a receiver spend on one frame.

python -m sim.worst_frame [--side 2048] [--cases fec,entries,frame]

Each case runs in a process of its own (so its peak RSS is its own) and prints the CPU
time (all threads, ``time.process_time``) and the peak resident memory above what the
process held before the case:

- ``fec``: 4 096 parity packets of one frame, each its own one-packet block, fed to the
  reassembler (what cost 16.9-20 s when every packet walked every block);
- ``entries``: one frame filled to the receiver's 4 MiB limit with index entries of
  every interleave layout (every ``groups`` and ``group``) for every patch, behind real
  tier 0, fed to a keyed ``Receiver`` until its final picture;
- ``frame``: the largest frame the receiver takes (``--side`` squared, the default
  ``max_frame_pixels``), coded with every index in both tiers (schedule ``1_1``) at the
  top rung, with its fallback, fed to a keyed ``Receiver`` until its final picture.

The frames are built once, in the parent, from the bundled photo resized to the side.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import multiprocessing as mp
import os
import time
from pathlib import Path

KEY = bytes(range(32))
CASES = ("fec", "entries", "frame")


def _rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _reset_peak() -> None:
    # The peak RSS counter survives fork and exec (a spawned child would start at its
    # parent's peak); writing 5 to clear_refs restarts it at the current RSS.
    Path("/proc/self/clear_refs").write_text("5")


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _fec_case(_packets: list[bytes]) -> dict:
    from hfstream.protocol.reassembly import Reassembler, ReassemblerConfig
    from hfstream.protocol.wire import Packet, PacketHeader, PacketType, ParityEntry, pack_payload

    total = 4096
    packets = []
    for first in range(total):
        entry = ParityEntry(first, 1, 1, (64,), bytes(64), total)
        header = PacketHeader(PacketType.PARITY, 1, 0, 0, 0, 256, 256, 10, 1, first, total)
        packets.append(Packet(header, pack_payload(entry.to_list())).serialize())
    r = Reassembler(ReassemblerConfig(1, max_frame_bytes=8 << 20))
    _reset_peak()
    before, rss = time.process_time(), _rss_mb()
    for p in packets:
        r.receive(p, 0.0)
    return {
        "packets": total,
        "cpu_ms": (time.process_time() - before) * 1000,
        "peak_mb": _peak_mb() - rss,
    }


async def _receive(packets: list[bytes]) -> dict:
    from hfstream.codec.hybrid import HybridCodec
    from hfstream.protocol.auth import DATA, Sealer, new_session_id
    from hfstream.stream.receiver import Receiver, ReceiverConfig
    from hfstream.transports.memory import memory_pair

    codec = HybridCodec.from_pretrained()
    sealer = Sealer(KEY, DATA, new_session_id(time.time()))
    datagrams = [sealer.seal(p) for p in packets]
    tx, rx = memory_pair()
    receiver = Receiver(rx, codec, ReceiverConfig(key=KEY, frame_timeout_s=0.5))
    _reset_peak()
    rss = _rss_mb()
    before = time.process_time()
    updates = 0
    async with receiver:
        for d in datagrams:
            rx.inbox.put(d)
        await tx.close()
        async for update in receiver:
            updates += 1
            shown = update.image.shape
    r = receiver.reassembler
    return {
        "packets": len(packets),
        "bytes": sum(map(len, datagrams)),
        "entries_kept": sum(len(f.indices) for f in r.frames.values()),
        "entries_dropped": dict(r.entries_dropped),
        "drops": dict(r.drops),
        "updates": updates,
        "picture": f"{shown[1]}x{shown[0]}",
        "cpu_ms": (time.process_time() - before) * 1000,
        "peak_mb": _peak_mb() - rss,
    }


def _receiver_case(packets: list[bytes]) -> dict:
    return asyncio.run(_receive(packets))


def _run(case: str, packets: list[bytes], queue: mp.Queue) -> None:
    import torch

    torch.set_num_threads(2)
    queue.put((_fec_case if case == "fec" else _receiver_case)(packets))


def _frame_packets(side: int) -> list[bytes]:
    import numpy as np
    from PIL import Image

    from hfstream.codec.fallback import encode_fallback
    from hfstream.codec.frame_coding import index_priors, packetize
    from hfstream.codec.hybrid import HybridCodec
    from hfstream.codec.rates import Fixed
    from hfstream.media.samples import bundled_image
    from hfstream.protocol.packetizer import Packetizer, PacketizerConfig

    codec = HybridCodec.from_pretrained()
    photo = Image.fromarray(bundled_image()).resize((side, side), Image.Resampling.BICUBIC)
    image = np.asarray(photo)
    top = codec.continuous.rungs - 1
    enc = codec.encode(image, "1_1", rate=Fixed(top))
    enc = encode_fallback(codec, image, enc)
    packetizer = Packetizer(codec.model_id, config=PacketizerConfig(parity_ratio=1.0))
    fp = packetize(enc, packetizer, frame_id=0, priors=index_priors(codec, enc))
    return [p for _, p in fp.in_priority_order()]


def _entry_flood(frame: list[bytes], limit: int = 4 << 20) -> list[bytes]:
    """The frame's tier 0, then index packets of every layout up to ``limit`` bytes."""
    from hfstream.protocol.schedules import Schedule
    from hfstream.protocol.wire import (
        MAX_INDEX_GROUPS,
        IndexEntry,
        Packet,
        PacketType,
        pack_payload,
        parse_header,
    )

    tier0 = [p for p in frame if parse_header(p)[0].type in (PacketType.TIER0,)]
    header = parse_header(tier0[0])[0]
    entries = [
        IndexEntry(patch, Schedule.ALL, g, groups, bytes(16), 0).to_list()
        for groups in range(1, MAX_INDEX_GROUPS + 1)
        for g in range(groups)
        for patch in range(header.patches)
    ]
    per_packet = 30
    chunks = [entries[i : i + per_packet] for i in range(0, len(entries), per_packet)]
    budget = limit - sum(map(len, tier0)) - 64 * 1024
    packets: list[bytes] = []
    count = min(len(chunks), 4096)
    for seq, chunk in enumerate(chunks[:count]):
        h = dataclasses.replace(header, type=PacketType.TIER1, seq=seq, count=count)
        p = Packet(h, pack_payload(chunk)).serialize()
        if sum(map(len, packets)) + len(p) > budget:
            break
        packets.append(p)
    return tier0 + packets


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.worst_frame", description=__doc__)
    p.add_argument("--side", type=int, default=2048, help="frame side in px (default 2048)")
    p.add_argument("--cases", default=",".join(CASES), help=f"some of {','.join(CASES)}")
    args = p.parse_args(argv)
    cases = [c for c in args.cases.split(",") if c]
    unknown = set(cases) - set(CASES)
    if unknown:
        p.error(f"unknown case {sorted(unknown)[0]!r}, should be one of {', '.join(CASES)}")
    frame = _frame_packets(args.side) if {"entries", "frame"} & set(cases) else []
    inputs = {"fec": [], "entries": _entry_flood(frame) if frame else [], "frame": frame}
    ctx = mp.get_context("spawn")
    for case in cases:
        queue = ctx.Queue()
        proc = ctx.Process(target=_run, args=(case, inputs[case], queue))
        proc.start()
        result = queue.get()
        proc.join()
        print(case, result, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
