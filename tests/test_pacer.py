import pytest

from hfstream.protocol.pacer import Pacer


def run(pacer, until, t=0.0):
    """Drive the pacer in simulated time; returns (time, packet) pairs."""
    out = []
    while (nxt := pacer.next_time(t)) is not None and nxt <= until:
        t = nxt
        out += [(t, p) for p in pacer.pop(t)]
    return out


@pytest.mark.parametrize("rate", [50_000, 250_000, 2_000_000])
def test_rate_within_5_percent_of_target(rate):
    pacer = Pacer(rate, burst_bytes=2400)
    for i in range(3000):
        pacer.push(bytes(1000 + (i % 7) * 20), tier=i % 3, deadline=1e9)
    sent = run(pacer, until=1e9)
    duration = sent[-1][0] - sent[0][0]
    achieved = sum(len(p) for _, p in sent[1:]) / duration
    assert achieved == pytest.approx(rate, rel=0.05)


def test_strict_priority_by_tier_then_deadline():
    pacer = Pacer(1e9)
    pacer.push(b"t2", 2, 5.0)
    pacer.push(b"t1-late", 1, 9.0)
    pacer.push(b"t1-soon", 1, 3.0)
    pacer.push(b"t0", 0, 9.0)
    assert pacer.pop(0.0) == [b"t0", b"t1-soon", b"t1-late", b"t2"]


def test_late_packets_are_dropped_lowest_tier_first_under_pressure():
    pacer = Pacer(10_000, burst_bytes=1000)  # 10 packets/s of 1000 B
    for frame in range(5):
        for tier in (0, 1, 2):
            for _ in range(4):
                pacer.push(bytes(1000), tier, deadline=frame * 0.5 + 1.0)
    run(pacer, until=10.0)
    assert (
        pacer.dropped_late.get(2, 0) > pacer.dropped_late.get(1, 0) >= pacer.dropped_late.get(0, 0)
    )
    assert pacer.dropped_late.get(0, 0) == 0


def test_rate_change_takes_effect():
    pacer = Pacer(100_000)
    for _ in range(400):
        pacer.push(bytes(1000), 1, 1e9)
    first = run(pacer, until=1.0)
    pacer.set_rate(200_000, 1.0)
    second = run(pacer, until=2.0, t=1.0)
    assert len(second) == pytest.approx(2 * len(first), rel=0.05)


def test_empty_pacer_has_no_timer():
    assert Pacer(1000).next_time(0.0) is None
