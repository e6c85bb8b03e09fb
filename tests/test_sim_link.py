import asyncio

import numpy as np
import pytest

from sim.link import Link, LinkConfig
from sim.loss import Bernoulli, Pattern
from sim.traces import (
    TraceError,
    constant_rate_trace,
    parse_event_log,
    parse_trace,
    read_trace,
    write_trace,
)
from sim.transport import sim_pair


def drive(link, sizes, interval):
    """Offer packets every ``interval`` s, then collect every delivery with its time."""
    t = 0.0
    for s in sizes:
        link.send(bytes(s), t)
        t += interval
    out = []
    while (nxt := link.next_time()) is not None:
        out += [(nxt, d) for d in link.deliver(nxt)]
    return out


def test_bottleneck_delivers_at_its_rate():
    link = Link(LinkConfig(rate_bytes_per_s=100_000, queue_bytes=10**9), np.random.default_rng(0))
    got = drive(link, [1000] * 500, interval=0.0)
    span = got[-1][0] - got[0][0]
    assert 499 * 1000 / span == pytest.approx(100_000, rel=0.01)


def test_finite_queue_tail_drops():
    link = Link(LinkConfig(rate_bytes_per_s=10_000, queue_bytes=5000), np.random.default_rng(0))
    got = drive(link, [1000] * 20, interval=0.0)
    assert link.stats.queue_drops == 15 and len(got) == 5


def test_delay_jitter_reorder_duplicate_are_seeded():
    cfg = LinkConfig(delay_s=0.05, jitter_s=0.02, reorder_prob=0.2, duplicate_prob=0.1)

    def run(seed):
        link = Link(
            cfg, np.random.default_rng(seed), loss=Bernoulli(0.1, np.random.default_rng(seed + 1))
        )
        return drive(link, [100 + i for i in range(200)], 0.001), link.stats

    a, sa = run(3)
    b, _ = run(3)
    c, _ = run(4)
    assert a == b and a != c
    assert sa.lost > 0 and sa.duplicated > 0
    assert all(t >= 0.05 for t, _ in a)
    order = [len(d) for _, d in a]
    assert order != sorted(order)  # some packets overtaken


def test_trace_driven_bottleneck():
    trace = constant_rate_trace(1_500_000)  # one opportunity per ms
    assert len(trace) == 1000 and trace[-1] == 1000
    link = Link(LinkConfig(trace_ms=trace, queue_bytes=10**9), np.random.default_rng(0))
    got = drive(link, [1500] * 3000, interval=0.0)
    assert got[-1][0] == pytest.approx(3.0, abs=0.002)  # loops over the 1 s period


def test_mahimahi_trace_files(tmp_path):
    p = tmp_path / "link.trace"
    write_trace(p, [1, 1, 3, 7])
    assert p.read_text() == "1\n1\n3\n7\n"
    assert read_trace(p) == [1, 1, 3, 7]
    bad = [
        ("", "the trace is empty"),
        ("5\n3\n", ":2: timestamp 3 is earlier"),
        ("1\nx\n", ":2: expected"),
        ("0\n0\n", "last timestamp must be positive"),
        ("-4\n", ":1: expected"),
    ]
    for text, msg in bad:
        f = tmp_path / "bad.trace"
        f.write_text(text)
        with pytest.raises(TraceError, match=msg) as err:
            read_trace(f)
        assert str(f) in str(err.value)
    with pytest.raises(TraceError, match="cannot read"):
        read_trace(tmp_path / "missing.trace")
    with pytest.raises(TraceError):
        parse_trace("3\n2\n")


def test_event_log_round_trip():
    log = []
    link = Link(
        LinkConfig(rate_bytes_per_s=1_000_000),
        np.random.default_rng(0),
        loss=Pattern([False, True]),
        log=log,
    )
    drive(link, [500] * 4, 0.01)
    text = "\n".join(e.line() for e in log)
    assert parse_event_log(text) == log
    kinds = [e.kind for e in log]
    assert kinds.count("d") == 2 and kinds.count("+") == 2 and kinds.count("-") == 2
    with pytest.raises(TraceError, match="departure needs its delay"):
        parse_event_log("5 - 100")


def test_transport_adapter_runs_over_links():
    async def main():
        fwd = Link(
            LinkConfig(delay_s=0.02), np.random.default_rng(0), loss=Pattern([False, False, True])
        )
        back = Link(LinkConfig(delay_s=0.02), np.random.default_rng(1))
        a, b = sim_pair(fwd, back)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for i in range(6):
            await a.send(bytes([i]))
        got = [await b.recv() for _ in range(4)]
        elapsed = loop.time() - t0
        await a.close()
        return got, elapsed

    got, elapsed = asyncio.run(main())
    assert got == [b"\x00", b"\x01", b"\x03", b"\x04"]
    assert elapsed >= 0.02
