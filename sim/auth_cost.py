"""CPU cost of packet authentication: refusing a forged datagram, opening an authentic one.

python -m sim.auth_cost [--packets 100000] [--size 1200]
"""

from __future__ import annotations

import argparse
import contextlib
import time

from hfstream.protocol.auth import DATA, Opener, Sealer
from hfstream.protocol.feedback import Report
from hfstream.protocol.wire import TAG_SIZE, WireError


def measure(packets: int, size: int) -> dict[str, float]:
    """Microseconds per datagram of ``size`` bytes (tag included)."""
    key = bytes(range(32))
    base = Report(0.25, (4, 2, 1), (4, 1, 1), 0, 900).to_packet(1, 0, 0)
    body = base + bytes(max(0, size - TAG_SIZE - len(base)))
    sealer = Sealer(key, DATA, 1 << 40)
    forged = bytearray(sealer.seal(body))
    forged[-1] ^= 1
    opener = Opener(key, DATA)
    start = time.perf_counter()
    for _ in range(packets):
        with contextlib.suppress(WireError):
            opener.open(bytes(forged))
    forged_us = (time.perf_counter() - start) / packets * 1e6
    authentic = [sealer.seal(body) for _ in range(packets)]
    start = time.perf_counter()
    for d in authentic:
        opener.open(d)
    return {"forged_us": forged_us, "authentic_us": (time.perf_counter() - start) / packets * 1e6}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.auth_cost", description=__doc__)
    p.add_argument("--packets", type=int, default=100_000)
    p.add_argument("--size", type=int, default=1200)
    args = p.parse_args(argv)
    r = measure(args.packets, args.size)
    print(f"forged {args.size}-byte datagram: {r['forged_us']:.2f} us each")
    print(f"authentic {args.size}-byte datagram: {r['authentic_us']:.2f} us each")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
