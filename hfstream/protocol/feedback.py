"""Receiver reports and the sender's rate controller (both sans-I/O).

A report (``FEEDBACK`` packet; the header's frame id is the report number) says, for the
frames the receiver finished since the last report, how many packets of each tier were
announced and how many arrived, how many came late, and how many bytes arrived in how
long. Its payload is a ``wire.FeedbackEntry``.

The controller turns the target bitrate into a per-frame budget, keeps an estimate of
the loss rate the reports show (``hfstream.planning`` spends each frame's budget on rungs,
indices and tier-0 parity for that loss), and lowers its working rate when reports show
loss with throughput below it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hfstream.protocol.wire import (
    DEFAULT_MTU,
    Packet,
    PacketHeader,
    PacketType,
    WireError,
    _int,
    pack_payload,
    unpack_payload,
)

# Frame ids a report acknowledges at most: the newest frames decoded complete (the sender
# predicts from the newest of them it still holds, ``stream.references``).
MAX_DECODED = 16


@dataclass(frozen=True)
class FeedbackEntry:
    """``[interval_ms, expected[3], received[3], late, bytes, decoded[]]``: a receiver
    report over ``interval_ms``: packets announced and arrived per tier (parity counts in
    tier 0), packets that came after their frame closed, bytes received, and the frames
    decoded complete (newest last, at most ``MAX_DECODED``)."""

    interval_ms: int
    expected: tuple[int, int, int]
    received: tuple[int, int, int]
    late: int
    bytes: int
    decoded: tuple[int, ...] = ()

    def to_list(self) -> list:
        return [
            self.interval_ms,
            list(self.expected),
            list(self.received),
            self.late,
            self.bytes,
            list(self.decoded[-MAX_DECODED:]),
        ]

    @classmethod
    def from_list(cls, e: list) -> FeedbackEntry:
        if len(e) != 6:
            raise WireError("field", "feedback payload must be an array of 6")
        counts = []
        for v, what in ((e[1], "expected"), (e[2], "received")):
            if not isinstance(v, list) or len(v) != 3:
                raise WireError("field", f"feedback {what} must be an array of 3")
            counts.append(tuple(_int(x, 0, 2**32 - 1, f"feedback {what} count") for x in v))
        if not isinstance(e[5], list) or len(e[5]) > MAX_DECODED:
            raise WireError("field", f"feedback decoded frames must be 0..{MAX_DECODED} ids")
        return cls(
            _int(e[0], 0, 2**40 - 1, "feedback interval"),
            counts[0],  # type: ignore[arg-type]
            counts[1],  # type: ignore[arg-type]
            _int(e[3], 0, 2**40 - 1, "feedback late count"),
            _int(e[4], 0, 2**40 - 1, "feedback bytes"),
            tuple(_int(x, 0, 2**32 - 1, "feedback decoded frame") for x in e[5]),
        )


def feedback_header(
    model_id: int, session_id: int, number: int, receiver_id: int = 0
) -> PacketHeader:
    """The header of report ``number`` from receiver ``receiver_id`` (32 bits, drawn per
    receiver run): a report describes no frame, so its geometry is zero (``parse_header``
    insists)."""
    return PacketHeader(
        PacketType.FEEDBACK, model_id, session_id, 0, number, 0, 0, 0, 0, 0, 1, receiver_id
    )


def parse_feedback(payload: bytes, mtu: int = DEFAULT_MTU) -> FeedbackEntry:
    return FeedbackEntry.from_list(unpack_payload(payload, mtu))


@dataclass(frozen=True)
class Report:
    interval_s: float
    expected: tuple[int, int, int]  # packets announced per tier (0 includes parity)
    received: tuple[int, int, int]
    late: int
    bytes: int
    decoded: tuple[int, ...] = ()  # frames decoded complete (``FeedbackEntry.decoded``)

    @property
    def loss(self) -> tuple[float, float, float]:
        return tuple(
            1 - r / e if e else 0.0 for e, r in zip(self.expected, self.received, strict=True)
        )  # type: ignore[return-value]

    @property
    def throughput(self) -> float:
        return self.bytes / self.interval_s if self.interval_s > 0 else 0.0

    def to_entry(self) -> FeedbackEntry:
        return FeedbackEntry(
            round(self.interval_s * 1000),
            self.expected,
            self.received,
            self.late,
            self.bytes,
            self.decoded,
        )

    def to_packet(self, model_id: int, session_id: int, number: int, receiver_id: int = 0) -> bytes:
        """An unsealed FEEDBACK packet (``auth.Sealer`` numbers and tags it)."""
        payload = pack_payload(self.to_entry().to_list())
        header = feedback_header(model_id, session_id, number, receiver_id)
        return Packet(header, payload).serialize()

    @classmethod
    def from_entry(cls, e: FeedbackEntry) -> Report:
        return cls(e.interval_ms / 1000, e.expected, e.received, e.late, e.bytes, e.decoded)

    @classmethod
    def from_payload(cls, payload: bytes, mtu: int = DEFAULT_MTU) -> Report:
        return cls.from_entry(parse_feedback(payload, mtu))


@dataclass
class ReportBuilder:
    """Accumulates what the receiver saw between reports."""

    started: float = 0.0
    expected: list[int] = field(default_factory=lambda: [0, 0, 0])
    received: list[int] = field(default_factory=lambda: [0, 0, 0])
    late: int = 0
    bytes: int = 0
    #: the frames decoded complete whose pictures the receiver holds, newest last (set by
    #: the receiver; every report lists them, so a lost report loses no acknowledgement)
    decoded: list[int] = field(default_factory=list)

    def frame_done(self, expected: tuple[int, int, int], received: tuple[int, int, int]) -> None:
        for t in range(3):
            self.expected[t] += expected[t]
            self.received[t] += min(received[t], expected[t])

    def report(self, now: float) -> Report | None:
        if not any(self.expected) and not self.bytes:
            return None
        r = Report(
            now - self.started,
            tuple(self.expected),  # type: ignore[arg-type]
            tuple(self.received),  # type: ignore[arg-type]
            self.late,
            self.bytes,
            tuple(self.decoded),
        )
        self.started, self.expected, self.received, self.late, self.bytes = (
            now,
            [0, 0, 0],
            [0, 0, 0],
            0,
            0,
        )
        return r


LOSS_SMOOTHING = 0.3  # weight of the newest report in the loss estimate


@dataclass
class RateController:
    target_bytes_per_s: float
    fps: float
    rate: float = 0.0  # working rate, at most the target
    loss: float = 0.0  # estimated packet loss rate, from the reports
    reports: int = 0

    def __post_init__(self) -> None:
        if not (self.target_bytes_per_s > 0 and self.fps > 0):
            raise ValueError(
                f"target and fps must be positive, got {self.target_bytes_per_s} and {self.fps}"
            )
        self.rate = self.target_bytes_per_s

    @property
    def frame_budget(self) -> float:
        return self.rate / self.fps

    def on_report(self, report: Report) -> None:
        self.reports += 1
        expected = sum(report.expected)
        if expected:
            measured = 1 - sum(report.received) / expected
            w = 1.0 if self.reports == 1 else LOSS_SMOOTHING
            self.loss = min(0.9, (1 - w) * self.loss + w * measured)
        loss = max(report.loss[1], report.loss[2])
        if loss > 0.05 and 0 < report.throughput < self.rate:
            self.rate = max(0.25 * self.target_bytes_per_s, 0.9 * report.throughput)
        elif loss < 0.02:
            self.rate = min(self.target_bytes_per_s, self.rate * 1.1)


@dataclass
class ReportWatch:
    """Whether the receiver is still there, as its reports tell: it has gone once reports
    had come and then none came for ``timeout_s`` (on the sender's clock, ``now``). A
    receiver never heard from is not judged: it may send no reports at all (a sender
    without feedback), and the sender says so at its end instead."""

    timeout_s: float
    last_report: float | None = None  # when the newest report came

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s}")

    def on_report(self, now: float) -> None:
        self.last_report = now

    def silent_for(self, now: float) -> float | None:
        """Seconds since the newest report (None: none came yet)."""
        return None if self.last_report is None else now - self.last_report

    def gone(self, now: float) -> bool:
        silent = self.silent_for(now)
        return silent is not None and silent >= self.timeout_s


__all__ = [
    "FeedbackEntry",
    "RateController",
    "Report",
    "ReportBuilder",
    "ReportWatch",
    "feedback_header",
    "parse_feedback",
]
