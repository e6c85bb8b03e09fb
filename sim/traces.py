"""mahimahi's formats: packet-delivery traces and the ``+ - # d`` event log.

A delivery trace has one line per delivery opportunity: an integer millisecond
timestamp at which one MTU-sized packet (1500 bytes) may leave the link. Timestamps are
non-decreasing; the trace repeats with a period equal to its last timestamp, which must
therefore be positive. A trace that breaks these rules is refused with the file, the
line and the reason.

The event log records what the link did, one event per line:
``<ms> + <bytes>`` a packet entered the queue, ``<ms> - <bytes> <delay ms>`` one left it,
``<ms> # <bytes>`` a delivery opportunity, ``<ms> d <bytes>`` a packet was dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

OPPORTUNITY_BYTES = 1500
MAX_TRACE_LINES = 10_000_000


class TraceError(ValueError):
    pass


def parse_trace(text: str, source: str = "<trace>") -> list[int]:
    out: list[int] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if not line.isdigit():
            raise TraceError(
                f"{source}:{n}: expected a non-negative integer millisecond, got {raw!r}"
            )
        v = int(line)
        if out and v < out[-1]:
            raise TraceError(f"{source}:{n}: timestamp {v} is earlier than the previous {out[-1]}")
        out.append(v)
        if len(out) > MAX_TRACE_LINES:
            raise TraceError(f"{source}: more than {MAX_TRACE_LINES} lines")
    if not out:
        raise TraceError(f"{source}: the trace is empty")
    if out[-1] <= 0:
        raise TraceError(f"{source}: the last timestamp must be positive (it is the period)")
    return out


def read_trace(path: str | Path) -> list[int]:
    p = Path(path)
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise TraceError(f"{p}: cannot read the trace: {e}") from None
    return parse_trace(text, str(p))


def write_trace(path: str | Path, timestamps: list[int]) -> None:
    parse_trace("\n".join(map(str, timestamps)), str(path))  # validate before writing
    Path(path).write_text("".join(f"{t}\n" for t in timestamps))


def constant_rate_trace(bytes_per_s: float, period_ms: int = 1000) -> list[int]:
    """Opportunities spread evenly for a constant rate (e.g. 12 Mbit/s = 1 per ms)."""
    per_ms = bytes_per_s / OPPORTUNITY_BYTES / 1000.0
    n = max(1, round(per_ms * period_ms))
    return [max(1, round((i + 1) * period_ms / n)) for i in range(n)]


@dataclass(frozen=True)
class Event:
    ms: int
    kind: str  # "+", "-", "#", "d"
    size: int
    delay_ms: int | None = None

    def line(self) -> str:
        tail = f" {self.delay_ms}" if self.kind == "-" else ""
        return f"{self.ms} {self.kind} {self.size}{tail}"


def parse_event_log(text: str, source: str = "<log>") -> list[Event]:
    events = []
    for n, raw in enumerate(text.splitlines(), 1):
        parts = raw.split()
        if not parts or parts[0].startswith("#") and len(parts) == 1:
            continue
        if len(parts) not in (3, 4) or parts[1] not in "+-#d" or len(parts[1]) != 1:
            raise TraceError(f"{source}:{n}: not an event line: {raw!r}")
        if not (parts[0].isdigit() and parts[2].isdigit()):
            raise TraceError(f"{source}:{n}: time and size must be integers: {raw!r}")
        delay = int(parts[3]) if len(parts) == 4 and parts[3].isdigit() else None
        if parts[1] == "-" and delay is None:
            raise TraceError(f"{source}:{n}: a departure needs its delay: {raw!r}")
        events.append(Event(int(parts[0]), parts[1], int(parts[2]), delay))
    return events
