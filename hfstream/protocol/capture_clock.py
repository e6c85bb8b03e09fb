"""The capture time a packet header carries: milliseconds from its session's start (the
session id's high bits, ``wire.SESSION_RANDOM_BITS``), so that a receiver measures each
frame's latency from capture to display on the sender's clock."""

from __future__ import annotations

from hfstream.protocol.wire import MAX_CAPTURE_MS, SESSION_RANDOM_BITS


def session_start_ms(session_id: int) -> int:
    """The session's start in unix ms (the session id's high 42 bits)."""
    return session_id >> SESSION_RANDOM_BITS


def capture_offset_ms(session_id: int, wall_time: float) -> int:
    """The header's capture field for a frame captured at ``wall_time`` (unix seconds):
    ms from the session's start, clamped to the field. A frame captured before its
    session started (a queued frame) says 0."""
    ms = round(wall_time * 1000) - session_start_ms(session_id)
    return min(max(ms, 0), MAX_CAPTURE_MS)


def capture_time(session_id: int, capture_ms: int) -> float:
    """The capture time (unix seconds, on the sender's clock) a header's field says."""
    return (session_start_ms(session_id) + capture_ms) / 1000
