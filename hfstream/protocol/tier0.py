"""Tier-0 entries: a patch's continuous strings (``Tier0Entry``), a predicted frame's
motion (``MotionEntry``), and the strings of several patches of one packet coded as one
pair (``JointTier0Entry``).

A packet is lost whole, so the patches it carries gain nothing from strings of their own:
coded as one pair (``codec.joint_strings``) they save each string's coder flush and word
rounding and its framing, 12-15 bytes a patch. A joint entry is read as one
``Tier0Entry`` per patch that holds the shared ``JointStrings``; the receiver's codec
splits them into each patch's own strings, the very strings the sender coded.
"""

from __future__ import annotations

from dataclasses import dataclass

from hfstream.geometry import STILL, SUBPEL
from hfstream.protocol.fields import (
    DEFAULT_MTU,
    WireError,
    bin_field,
    entry_arrays,
    int_field,
    schedule_field,
    unpack_payload,
)
from hfstream.protocol.schedules import Schedule

MAX_RUNG = 15  # rungs of the continuous stream's ladder (the .hfs container has 4 bits)
MAX_MOTION = 128  # a block's shift, shown pixels per axis (``codec.motion``)
# Patches one joint entry may hold: a receiver splits it with a hyper-synthesis pass a
# patch, so this bounds what one packet can make it spend.
MAX_JOINT_PATCHES = 32


@dataclass(frozen=True)
class JointStrings:
    """The continuous strings of ``patches`` (in this order) coded as one (y, z) pair."""

    patches: tuple[int, ...]
    y: bytes
    z: bytes


@dataclass(frozen=True)
class Tier0Entry:
    """``[patch, schedule, rung, y, z]``: one patch's continuous strings, the rung of the
    continuous stream's rate ladder they were coded at, and the patch's schedule."""

    patch: int
    schedule: Schedule
    y: bytes
    z: bytes
    rung: int = 0
    joint: JointStrings | None = None  # strings held with other patches' (y, z empty)

    def to_list(self) -> list:
        assert self.joint is None, "a jointly held entry travels in its JointTier0Entry"
        return [self.patch, int(self.schedule), self.rung, self.y, self.z]

    @classmethod
    def from_list(cls, e: list, patches: int) -> Tier0Entry:
        patch = int_field(e[0], 0, patches - 1, "patch index")
        schedule = schedule_field(e[1])
        rung = int_field(e[2], 0, MAX_RUNG, "rung")
        return cls(
            patch,
            schedule,
            bin_field(e[3], 1, 4096, "y string"),
            bin_field(e[4], 1, 1024, "z string"),
            rung,
        )


@dataclass(frozen=True)
class MotionEntry:
    """``[patch, dy, dx]`` or ``[patch, dy0, dx0, ..., dy3, dx3]``: in a predicted frame, a
    patch that reads its reference with each of its blocks moved by its (dy, dx), in
    1/``SUBPEL`` shown pixels (``codec.motion``), one vector for all blocks or one each:
    a patch not coded shows it, a coded one (its ``Tier0Entry`` beside this one) adds its
    difference to it (a residual frame)."""

    patch: int
    vectors: tuple[tuple[int, int], ...]

    def to_list(self) -> list:
        first = self.vectors[0]
        if all(v == first for v in self.vectors):
            return [self.patch, *first]
        return [self.patch, *(c for v in self.vectors for c in v)]

    @classmethod
    def from_list(cls, e: list, patches: int) -> MotionEntry:
        patch = int_field(e[0], 0, patches - 1, "patch index")
        limit = MAX_MOTION * SUBPEL
        values = [int_field(v, -limit, limit, "motion") for v in e[1:]]
        pairs = tuple(zip(values[::2], values[1::2], strict=True))
        return cls(patch, pairs * len(STILL) if len(pairs) == 1 else pairs)


@dataclass(frozen=True)
class JointTier0Entry:
    """``[[patch, ...], [schedule, ...], [rung, ...], y, z]``: the tier 0 of several patches
    of one packet, their strings coded as one pair (``JointStrings``)."""

    strings: JointStrings
    schedules: tuple[Schedule, ...]
    rungs: tuple[int, ...]

    @property
    def patch(self) -> int:
        return self.strings.patches[0]

    def to_list(self) -> list:
        s = self.strings
        return [list(s.patches), [int(v) for v in self.schedules], list(self.rungs), s.y, s.z]

    def entries(self) -> list[Tier0Entry]:
        """One ``Tier0Entry`` a patch, each holding the shared strings."""
        return [
            Tier0Entry(p, schedule, b"", b"", rung, joint=self.strings)
            for p, schedule, rung in zip(
                self.strings.patches, self.schedules, self.rungs, strict=True
            )
        ]

    @classmethod
    def from_list(cls, e: list, patches: int) -> JointTier0Entry:
        ids, schedules, rungs = e[0], e[1], e[2]
        n = len(ids) if isinstance(ids, list) else 0
        if not 1 <= n <= MAX_JOINT_PATCHES:
            raise WireError(
                "field", f"a joint entry must name 1..{MAX_JOINT_PATCHES} patches, got {n}"
            )
        if not (isinstance(schedules, list) and isinstance(rungs, list)):
            raise WireError("field", "a joint entry's schedules and rungs must be arrays")
        if len(schedules) != n or len(rungs) != n:
            raise WireError("field", f"a joint entry of {n} patches needs {n} schedules and rungs")
        which = tuple(int_field(p, 0, patches - 1, "patch index") for p in ids)
        if len(set(which)) != n:
            raise WireError("field", "a joint entry names a patch twice")
        return cls(
            JointStrings(
                which,
                bin_field(e[3], 1, 4096 * n, "joint y string"),
                bin_field(e[4], 1, 1024 * n, "joint z string"),
            ),
            tuple(schedule_field(v) for v in schedules),
            tuple(int_field(r, 0, MAX_RUNG, "rung") for r in rungs),
        )


def parse_tier0(
    payload: bytes, patches: int, mtu: int = DEFAULT_MTU, *, predicted: bool = False
) -> list[Tier0Entry | MotionEntry]:
    """The entries of a tier-0 payload for a frame of ``patches`` patches, a joint entry's
    as one ``Tier0Entry`` a patch. A predicted frame's may also hold ``MotionEntry``s,
    and its only tier-0 packet none at all when it reuses every patch unmoved."""
    obj = unpack_payload(payload, mtu)
    if not predicted:
        return [t for e in entry_arrays(obj, 5, "tier-0") for t in _strings(e, patches)]
    out: list[Tier0Entry | MotionEntry] = []
    for e in obj:
        if isinstance(e, list) and len(e) in (3, 1 + 2 * len(STILL)):
            out.append(MotionEntry.from_list(e, patches))
        elif isinstance(e, list) and len(e) == 5:
            out += _strings(e, patches)
        else:
            motion = f"3 or {1 + 2 * len(STILL)}"
            raise WireError("field", f"tier-0 entry must be an array of 5 (or {motion}: motion)")
    return out


def _strings(e: list, patches: int) -> list[Tier0Entry]:
    """The ``Tier0Entry``s of one five-field array: a patch's own, or a joint entry's."""
    if isinstance(e[0], list):
        return JointTier0Entry.from_list(e, patches).entries()
    return [Tier0Entry.from_list(e, patches)]
