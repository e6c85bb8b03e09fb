"""The decode policy without asyncio: frames go in with ``add``, the time with ``next``."""

from __future__ import annotations

import pytest

from hfstream.protocol.reassembly import FrameState
from hfstream.stream.scheduler import (
    Decode,
    DecodeScheduler,
    Ended,
    Evicted,
    Idle,
    Queued,
    Skipped,
    Wait,
    newer,
)


def frame(frame_id: int, opened_at: float = 0.0, complete: bool = True) -> FrameState:
    """A one-patch frame that opened at ``opened_at`` (only what the policy reads)."""
    return FrameState(
        frame_id, 256, 256, 1024, True, False, opened_at, opened_at, complete=complete
    )


def decode(s: DecodeScheduler, now: float = 0.0, *, show: bool = True) -> int:
    """Take the next decode, show its frame and end it; the frame's id."""
    skipped, decision = s.next(now)
    assert isinstance(decision, Decode), (skipped, decision)
    frame_id = decision.frame.frame_id
    if show:
        s.shown(frame_id)
    s.decode_done(frame_id)
    s.finished(frame_id)
    return frame_id


def test_in_order_mode_decodes_every_frame_oldest_first():
    s = DecodeScheduler(queue_size=8)
    assert [s.add(frame(f)) for f in (2, 0, 1)] == [[Queued(2)], [Queued(0)], [Queued(1)]]
    assert s.add(frame(0)) == []  # already waiting: its next decode takes the new data
    assert [decode(s) for _ in range(3)] == [2, 0, 1]  # the order they were queued
    assert s.next(1.0) == ([], Idle())
    s.end_of_input()
    assert s.next(1.0) == ([], Ended())
    assert (s.frames_shown, s.frames_skipped, s.decodes_skipped) == (3, 0, 0)


def test_in_order_mode_shows_an_older_frame_after_a_newer_one():
    s = DecodeScheduler(queue_size=8)
    s.add(frame(5))
    assert decode(s) == 5
    assert s.add(frame(3)) == [Queued(3)]
    assert decode(s) == 3


def test_live_mode_decodes_the_newest_and_skips_the_rest():
    s = DecodeScheduler(queue_size=8, live=True)
    for f in range(6):
        s.add(frame(f))
    skipped, decision = s.next(0.0)
    assert skipped == [Skipped(f) for f in range(5)]
    assert decision == Decode(frame(5)) and s.active == 5 and len(s) == 0
    assert s.holds(5) and not s.idle
    s.shown(5)
    s.decode_done(5)
    s.finished(5)
    assert s.idle and not s.holds(5)
    assert (s.frames_shown, s.frames_skipped) == (1, 5)
    assert [f for _, f in s.skipped] == [0, 1, 2, 3, 4]


def test_live_mode_never_shows_a_frame_after_a_newer_one():
    s = DecodeScheduler(queue_size=8, live=True)
    s.add(frame(3))
    assert decode(s) == 3
    # Frame 1 comes late (reordered): older than the frame shown, it is skipped at once.
    assert s.add(frame(1)) == [Skipped(1)]
    assert s.add(frame(4)) == [Queued(4)]
    assert decode(s) == 4
    assert (s.frames_shown, s.frames_skipped, s.skipped_in(0)) == (2, 1, [1])


def test_live_mode_skips_a_frame_that_went_stale_while_it_waited():
    # Frame 3 was queued while frame 5 was being decoded, before 5's first picture: once 5
    # is shown, 3 may not follow it.
    s = DecodeScheduler(queue_size=8, live=True)
    s.add(frame(5))
    _, decision = s.next(0.0)
    assert decision == Decode(frame(5))
    assert s.add(frame(3)) == [Queued(3)]
    s.shown(5)
    s.decode_done(5)
    s.finished(5)
    assert s.next(0.0) == ([Skipped(3)], Idle())
    assert s.frames_skipped == 1


def test_a_frame_shown_before_it_is_skipped_is_not_counted():
    s = DecodeScheduler(queue_size=8, live=True)
    s.add(frame(1))
    _, decision = s.next(0.0)
    s.shown(1)  # its preview
    s.add(frame(1))  # more data came during the decode
    s.decode_done(1)
    s.add(frame(2))
    assert s.next(0.0) == ([Skipped(1)], Decode(frame(2)))
    assert s.frames_skipped == 0 and list(s.skipped) == []


def test_a_frame_being_decoded_may_queue_again_with_its_new_data():
    s = DecodeScheduler(queue_size=8)
    s.add(frame(0))
    s.next(0.0)
    assert s.add(frame(0)) == [Queued(0)] and 0 in s
    s.decode_done(0)
    assert decode(s) == 0


def test_full_queue_evicts_the_frame_that_opened_first():
    s = DecodeScheduler(queue_size=2)
    s.add(frame(0, opened_at=0.0))
    s.add(frame(1, opened_at=1.0))
    assert s.add(frame(2, opened_at=2.0)) == [Evicted(0), Queued(2)]
    # A frame no newer than every waiting one is the one that gives way.
    assert s.add(frame(7, opened_at=0.5)) == [Evicted(7)]
    assert s.decodes_skipped == 2 and len(s) == 2
    assert [decode(s) for _ in range(2)] == [1, 2]


def test_eviction_goes_by_first_packet_not_by_frame_id():
    s = DecodeScheduler(queue_size=1, live=True)
    s.add(frame(9, opened_at=0.0))
    assert s.add(frame(3, opened_at=1.0)) == [Evicted(9), Queued(3)]


def test_live_newest_frame_settles_before_its_decode():
    s = DecodeScheduler(queue_size=8, live=True, settle_s=0.1)
    s.add(frame(0, opened_at=10.0, complete=False))
    assert s.next(10.05) == ([], Wait(10.1))
    assert s.idle is False and s.active is None
    # A newer frame comes while the first settles: the first is skipped, the new one waits.
    s.add(frame(1, opened_at=10.08, complete=False))
    assert s.next(10.09) == ([Skipped(0)], Wait(pytest.approx(10.18)))
    assert s.next(10.18) == ([], Decode(frame(1, opened_at=10.08, complete=False)))


def test_a_complete_or_ended_frame_does_not_settle():
    s = DecodeScheduler(queue_size=8, live=True, settle_s=5.0)
    s.add(frame(0, complete=True))
    assert isinstance(s.next(0.0)[1], Decode)
    s.decode_done(0)
    s.finished(0)
    s.add(frame(1, complete=False))
    assert isinstance(s.next(0.0)[1], Wait)
    s.end_of_input()  # nothing more will come: waiting gains nothing
    assert isinstance(s.next(0.0)[1], Decode)


def test_in_order_mode_does_not_settle():
    s = DecodeScheduler(queue_size=8, settle_s=5.0)
    s.add(frame(0, complete=False))
    assert isinstance(s.next(0.0)[1], Decode)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [(1, 0, True), (0, 1, False), (0, 0xFFFFFFFF, True), (0xFFFFFFFF, 0, False), (5, 5, False)],
)
def test_frame_ids_are_serial_numbers(a, b, expected):
    assert newer(a, b) is expected


def test_live_mode_across_the_frame_id_wrap():
    s = DecodeScheduler(queue_size=8, live=True)
    for f in (0xFFFFFFFE, 0xFFFFFFFF, 0, 1):
        s.add(frame(f))
    skipped, _ = s.next(0.0)
    assert skipped == [Skipped(0xFFFFFFFE), Skipped(0xFFFFFFFF), Skipped(0)]
    s.shown(1)
    s.decode_done(1)
    s.finished(1)
    assert s.add(frame(0xFFFFFFFF)) == [Skipped(0xFFFFFFFF)]  # before 1, after the wrap
    assert s.add(frame(2)) == [Queued(2)]


def test_a_new_session_starts_the_frame_ids_over():
    s = DecodeScheduler(queue_size=8, live=True)
    s.new_session(1)
    s.add(frame(7))
    assert decode(s) == 7
    assert s.add(frame(0)) == [Skipped(0)]
    s.new_session(2)  # the new stream's frame 0 is not stale
    assert s.add(frame(0)) == [Queued(0)]
    s.add(frame(1))
    s.next(0.0)
    assert (s.skipped_in(1), s.skipped_in(2)) == ([0], [0])


def test_the_skipped_record_keeps_the_newest():
    s = DecodeScheduler(queue_size=8, live=True)
    s.add(frame(5000))
    decode(s)
    for f in range(2000):
        s.add(frame(f))
    assert s.frames_skipped == 2000 and len(s.skipped) == 1024
    assert s.skipped[0] == (0, 2000 - 1024)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"queue_size": 0}, "queue_size must be at least 1, got 0"),
        ({"queue_size": 1, "settle_s": -1}, "settle_s must be at least 0, got -1"),
    ],
)
def test_bad_settings_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DecodeScheduler(**kwargs)
