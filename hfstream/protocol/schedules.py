"""Mask schedules' wire ids and names (which positions each keeps is the codec's
business: ``hfstream.codec.schedules``). Wire ids are fixed here, never derived from
list order."""

from __future__ import annotations

from enum import IntEnum


class Schedule(IntEnum):
    """Wire id of each schedule (one byte)."""

    NONE = 0
    ALL = 1
    HALF = 2
    QUARTER = 4
    NINTH = 9
    SIXTEENTH = 16

    @property
    def label(self) -> str:
        return _LABELS[self]

    @classmethod
    def parse(cls, text: str | int | Schedule) -> Schedule:
        if isinstance(text, Schedule):
            return text
        for s, label in _LABELS.items():
            if str(text) == label:
                return s
        raise ValueError(
            f'Invalid schedule "{text}", should be one of {", ".join(_LABELS.values())}'
        )


_LABELS = {
    Schedule.NONE: "0",
    Schedule.ALL: "1_1",
    Schedule.HALF: "1_2",
    Schedule.QUARTER: "1_4",
    Schedule.NINTH: "1_9",
    Schedule.SIXTEENTH: "1_16",
}
