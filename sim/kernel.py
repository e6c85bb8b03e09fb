"""``python -m sim.kernel``: hfstream over real kernel UDP with real packet loss.

Two Linux network namespaces joined by a veth pair; the receiver's namespace drops UDP
datagrams on its nftables input hook (this kernel has no netem):

- ``random``: ``numgen random mod 10000 < 10000 p`` — independent (Bernoulli) loss;
- ``every``: ``numgen inc mod k == 0`` — exactly every k-th datagram, k = 1/p (a
  deterministic pattern, for tests).

Two counters on that hook give the datagrams that arrived at the interface and those
dropped, so the loss is measured, not assumed. The sender and receiver are the real
``hfstream send`` / ``hfstream recv`` processes. The same frames then go through the
simulator (the same ``Sender`` / ``Receiver`` over ``sim.link`` with Bernoulli loss at the
same rate, several seeds) and both results are printed side by side.

Needs root, ``ip`` (iproute2) and ``nft`` (nftables); ``kernel_support()`` says why not
when one is missing. The namespaces are removed on exit, also after an error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

PORT = 5000
TX_ADDR, RX_ADDR = "10.213.0.1", "10.213.0.2"


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=30)


def kernel_support() -> str | None:
    """None when network namespaces and nftables can be used here, else the reason."""
    if os.name != "posix" or not sys.platform.startswith("linux"):
        return "needs Linux"
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"needs the `{tool}` command"
    probe = f"hfs-probe-{os.getpid()}"
    try:
        made = _run("ip", "netns", "add", probe, check=False)
        if made.returncode != 0:
            return f"cannot create a network namespace: {made.stderr.strip()}"
        nft = _run("ip", "netns", "exec", probe, "nft", "add", "table", "inet", "p", check=False)
        if nft.returncode != 0:
            return f"nftables not usable: {nft.stderr.strip()}"
    finally:
        _run("ip", "netns", "del", probe, check=False)
    return None


class NetnsLink:
    """Two namespaces (sender, receiver) on a veth pair, loss on the receiver's input."""

    def __init__(self, loss: float, mode: str = "random") -> None:
        if not 0.0 <= loss < 1.0:
            raise ValueError(f"loss must be in [0, 1), got {loss}")
        if mode not in ("random", "every"):
            raise ValueError(f'Invalid loss mode "{mode}", should be random or every')
        self.loss, self.mode = loss, mode
        tag = f"{os.getpid()}"
        self.tx, self.rx = f"hfs-tx-{tag}", f"hfs-rx-{tag}"

    def __enter__(self) -> NetnsLink:
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _setup(self) -> None:
        tx, rx = self.tx, self.rx
        _run("ip", "netns", "add", tx)
        _run("ip", "netns", "add", rx)
        _run("ip", "link", "add", "vtx", "netns", tx, "type", "veth", "peer", "vrx", "netns", rx)
        for ns, dev, addr in ((tx, "vtx", TX_ADDR), (rx, "vrx", RX_ADDR)):
            _run("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            _run("ip", "-n", ns, "link", "set", dev, "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        rules = [
            "add table inet hfs",
            "add chain inet hfs input { type filter hook input priority 0 ; }",
            f"add rule inet hfs input udp dport {PORT} counter",
        ]
        if self.loss > 0:
            if self.mode == "random":
                cond = f"numgen random mod 10000 < {round(self.loss * 10000)}"
            else:
                cond = f"numgen inc mod {round(1 / self.loss)} == 0"
            rules.append(f"add rule inet hfs input udp dport {PORT} {cond} counter drop")
        for rule in rules:
            _run("ip", "netns", "exec", rx, "nft", *rule.split())

    def counters(self) -> tuple[int, int]:
        """(datagrams that reached the receiver's input hook, datagrams dropped there)."""
        out = _run("ip", "netns", "exec", self.rx, "nft", "-j", "list", "table", "inet", "hfs")
        packets = []
        for item in json.loads(out.stdout)["nftables"]:
            for expr in item.get("rule", {}).get("expr", []):
                if "counter" in expr:
                    packets.append(int(expr["counter"]["packets"]))
        seen = packets[0] if packets else 0
        dropped = packets[1] if len(packets) > 1 else 0
        return seen, dropped

    def popen(self, ns: str, argv: list[str], **kw) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", ns, *argv], **kw)

    def close(self) -> None:
        for ns in (self.tx, self.rx):
            _run("ip", "netns", "del", ns, check=False)


@dataclass
class KernelRun:
    loss_configured: float
    mode: str
    datagrams: int
    dropped: int
    loss_measured: float
    frames_sent: int
    frames_shown: int
    psnr: float
    psnr_per_frame: list[float]


def run_kernel(
    loss: float,
    frames: int,
    fps: float,
    schedule: str = "1_4",
    mode: str = "random",
    timeout_s: float = 120.0,
    python: str = sys.executable,
) -> KernelRun:
    """Send ``frames`` frames of the generated pattern through the namespaces."""
    from PIL import Image

    from hfstream.eval.metrics import psnr
    from hfstream.media.video import pattern_frames

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    with tempfile.TemporaryDirectory() as tmp, NetnsLink(loss, mode) as link:
        out = Path(tmp) / "recv"
        recv = link.popen(
            link.rx,
            [
                python,
                "-m",
                "hfstream",
                "recv",
                "--listen",
                f"{RX_ADDR}:{PORT}",
                "--frames",
                str(frames),
                "--timeout",
                "60",
                "--out",
                str(out),
                "--save-frames",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        assert recv.stdout is not None
        started = []  # its output up to "listening on ...", printed once the socket is bound
        for line in recv.stdout:
            started.append(line)
            if line.startswith("listening"):
                break
        else:
            recv.kill()
            raise RuntimeError(f"receiver did not start: {''.join(started)[-500:]}")
        send = link.popen(
            link.tx,
            [
                python,
                "-m",
                "hfstream",
                "send",
                "pattern",
                "--frames",
                str(frames),
                "--fps",
                str(fps),
                "--schedule",
                schedule,
                "--to",
                f"{RX_ADDR}:{PORT}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        try:
            send_out, _ = send.communicate(timeout=timeout_s)
            recv_out, _ = recv.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            send.kill()
            recv.kill()
            raise RuntimeError(f"sender or receiver still running after {timeout_s} s") from None
        if send.returncode != 0:
            raise RuntimeError(f"sender failed: {send_out.strip()[-500:]}")
        if os.environ.get("HFSTREAM_KERNEL_DEBUG"):
            print(send_out, "".join(started), recv_out, sep="\n")
        seen, dropped = link.counters()
        refs = list(pattern_frames(frames))
        shown = sorted(out.glob("frame*.png"))
        scores = [
            psnr(ref, np.asarray(Image.open(p).convert("RGB")))
            for ref, p in zip(refs, shown, strict=False)
        ]
    return KernelRun(
        loss,
        mode,
        seen,
        dropped,
        dropped / max(seen, 1),
        frames,
        len(shown),
        float(np.mean(scores)) if scores else float("nan"),
        [round(s, 3) for s in scores],
    )


@dataclass
class SimRun:
    loss_configured: float
    seed: int
    datagrams: int
    dropped: int
    loss_measured: float
    psnr: float


def run_simulated(loss: float, frames: int, fps: float, seed: int, schedule: str = "1_4") -> SimRun:
    """The same frames, Sender and Receiver over ``sim.link`` with Bernoulli loss."""
    from hfstream.codec.hybrid import HybridCodec
    from hfstream.eval.metrics import psnr
    from hfstream.media.video import pattern_frames
    from hfstream.stream.coding import FixedCoding
    from hfstream.stream.collect import collect_frames, in_order
    from hfstream.stream.receiver import Receiver
    from hfstream.stream.sender import Sender, SenderConfig
    from sim.link import Link, LinkConfig
    from sim.loss import Bernoulli, NoLoss
    from sim.transport import sim_pair

    refs = list(pattern_frames(frames))
    codec = HybridCodec.from_pretrained()

    async def go():
        rng = np.random.default_rng(seed)
        model = Bernoulli(loss, rng) if loss > 0 else NoLoss()
        fwd = Link(LinkConfig(delay_s=0.001), rng, model)
        a, b = sim_pair(fwd, Link(LinkConfig(delay_s=0.001), np.random.default_rng(seed + 1)))
        sender = Sender(
            a, codec, SenderConfig(rate_bytes_per_s=250_000, coding=FixedCoding(schedule))
        )
        receiver = Receiver(b, codec)
        async with receiver:
            await sender.send_frames(refs, fps)
            await sender.flush()
            records = await collect_frames(receiver, frames, idle_timeout_s=5.0)
        await sender.close()
        await a.close()
        return records, fwd.stats

    records, stats = asyncio.run(go())
    pictures = in_order(records, frames, refs[0].shape)
    score = float(np.mean([psnr(r, p) for r, p in zip(refs, pictures, strict=True)]))
    data = stats.offered
    return SimRun(loss, seed, data, stats.lost, stats.lost / max(data, 1), score)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m sim.kernel",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--loss", type=float, nargs="*", default=[0.0, 0.1, 0.2])
    p.add_argument("--mode", choices=["random", "every"], default="random")
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--fps", type=float, default=2.0)
    p.add_argument("--schedule", default="1_4")
    p.add_argument("--sim-seeds", type=int, default=3)
    p.add_argument("--out", default="out/kernel", help="folder for results.json")
    args = p.parse_args(argv)
    why = kernel_support()
    if why is not None:
        print(f"sim.kernel: {why}", file=sys.stderr)
        return 2
    results = []
    for loss in args.loss:
        k = run_kernel(loss, args.frames, args.fps, args.schedule, args.mode)
        sims = [
            run_simulated(loss, args.frames, args.fps, s, args.schedule)
            for s in range(args.sim_seeds)
        ]
        results.append({"kernel": asdict(k), "simulated": [asdict(s) for s in sims]})
        print(
            f"loss {loss:4.0%}  kernel: measured {k.loss_measured:6.1%} of {k.datagrams} "
            f"datagrams, {k.frames_shown}/{k.frames_sent} frames, PSNR {k.psnr:6.2f}  |  "
            f"simulator ({len(sims)} seeds): measured "
            f"{np.mean([s.loss_measured for s in sims]):6.1%}, "
            f"PSNR {np.mean([s.psnr for s in sims]):6.2f}"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
