"""Packet authentication (sans-I/O): a session id, a per-packet tag and a replay window.

Every datagram ends with ``TAG_SIZE`` bytes of HMAC-SHA256 (Python's ``hmac``, backed by
OpenSSL) over everything before it, under a key derived from the pre-shared key and the
direction (data one way, reports the other, so a packet never verifies when reflected).
``Sealer.seal`` numbers a packet within its session and appends the tag; ``Opener.open``
checks the tag first, reading nothing but fixed header offsets, then the session and the
replay window, and returns the packet without its tag for the parsers.

Sessions: the sender draws a random session id per stream; its high 32 bits are the
stream's start in unix seconds. A receiver that has no session adopts the first authentic
one, and later switches only to an authentic session that started later, so packets
recorded from an earlier session cannot displace the live one. ``max_session_age_s``
(with the wall clock passed in) also refuses sessions that started too long ago.

Without a key (``key=None``) the tag is computed under a fixed public key: it still
catches corruption, but anybody can forge it. That mode is for experiments only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from hfstream.protocol.wire import (
    COUNTER_OFFSET,
    HEADER_SIZE,
    MAGIC,
    SESSION_OFFSET,
    TAG_SIZE,
    VERSION,
    WireError,
)

KEY_ENV = "HFSTREAM_KEY"
MIN_KEY_BYTES = 16
DATA = b"data"  # sender -> receiver
FEEDBACK = b"feedback"  # receiver -> sender
SIGNAL = b"signal"  # the WebRTC offer and answer
_UNKEYED = b"hfstream unkeyed: no secret"
UNKEYED_WARNING = (
    "hfstream: no key set (--key or HFSTREAM_KEY): packets are not authenticated, and "
    "anyone who can reach this stream can inject or replay pictures. Experiments only."
)
_COUNTER_LIMIT = 1 << 32
_PREFIX = MAGIC + bytes([VERSION])


def parse_key(text: str) -> bytes:
    """A pre-shared key from ``--key`` or ``HFSTREAM_KEY``: hex of at least 16 bytes
    (``python -c "import secrets; print(secrets.token_hex(32))"`` makes one)."""
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise ValueError("key must be hexadecimal (make one with secrets.token_hex(32))") from None
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"key must be at least {MIN_KEY_BYTES} bytes, got {len(key)}")
    return key


def direction_key(key: bytes | None, direction: bytes) -> bytes:
    """The MAC key of one direction, derived from the pre-shared key."""
    if direction not in (DATA, FEEDBACK, SIGNAL):
        raise ValueError(f"direction must be data, feedback or signal, got {direction!r}")
    secret = _UNKEYED if key is None else key
    return hmac.digest(secret, b"hfstream/2 " + direction, hashlib.sha256)


def signal_mac(key: bytes | None, *parts: str) -> str:
    """Hex MAC over signalling fields (each length-prefixed, so none can bleed into the
    next): the answer's MAC covers the offer's, binding it to that offer."""
    data = b"".join(len(b).to_bytes(4, "big") + b for b in (p.encode() for p in parts))
    return hmac.digest(direction_key(key, SIGNAL), data, hashlib.sha256).hex()


def new_session_id(wall_time: float, random: bytes | None = None) -> int:
    """Start time (unix seconds) in the high 32 bits, 32 random bits below."""
    low = random if random is not None else secrets.token_bytes(4)
    if len(low) != 4:
        raise ValueError(f"a session id takes 4 random bytes, got {len(low)}")
    return (int(wall_time) & 0xFFFFFFFF) << 32 | int.from_bytes(low, "big")


def session_start(session_id: int) -> int:
    return session_id >> 32


def _tag(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, hashlib.sha256)[:TAG_SIZE]


class Sealer:
    """Numbers and tags the packets of one session and direction."""

    def __init__(self, key: bytes | None, direction: bytes, session_id: int) -> None:
        self._key = direction_key(key, direction)
        self.session_id = session_id
        self._session = session_id.to_bytes(8, "big")
        self.counter = 0  # the next packet's number

    def seal(self, packet: bytes) -> bytes:
        """``packet`` (header and payload, as the packetizer built it) -> a datagram."""
        if len(packet) < HEADER_SIZE or not packet.startswith(_PREFIX):
            raise ValueError("only an hfstream packet with its full header can be sealed")
        if self.counter >= _COUNTER_LIMIT:
            raise ValueError("session exhausted its 2**32 packet numbers; start a new one")
        data = (
            packet[:SESSION_OFFSET]
            + self._session
            + self.counter.to_bytes(4, "big")
            + packet[COUNTER_OFFSET + 4 :]
        )
        self.counter += 1
        return data + _tag(self._key, data)


class ReplayWindow:
    """Which packet numbers of a session were accepted: the highest, and a bitmap of the
    ``size`` below it. Older numbers than the window are refused (sans-I/O, no clock)."""

    def __init__(self, size: int = 4096) -> None:
        if size < 1:
            raise ValueError(f"replay window must hold at least 1 packet, got {size}")
        self.size = size
        self.top = -1  # highest number accepted
        self._bits = 0  # bit i: number top - i accepted

    def check(self, counter: int) -> None:
        """Raise ``WireError`` for a number seen before or older than the window."""
        if counter > self.top:
            return
        age = self.top - counter
        if age >= self.size:
            raise WireError("replay", f"packet {counter} is older than the replay window")
        if self._bits >> age & 1:
            raise WireError("replay", f"packet {counter} was received before")

    def accept(self, counter: int) -> None:
        """Record ``counter`` (after ``check`` and the tag passed)."""
        if counter > self.top:
            shift = counter - self.top
            # A jump past the window forgets it: shifting by the jump itself would build an
            # integer of up to 2**32 bits (512 MB) for one packet.
            if shift >= self.size:
                self._bits = 1
            else:
                self._bits = (self._bits << shift | 1) & ((1 << self.size) - 1)
            self.top = counter
        else:
            self._bits |= 1 << (self.top - counter)


@dataclass
class OpenerStats:
    accepted: int = 0
    switches: int = 0  # sessions replaced by a newer one


class Opener:
    """Verifies the datagrams of one direction. With ``session_id`` it accepts that
    session alone (a sender reading reports); without, it adopts sessions as the module
    docstring says (a receiver)."""

    def __init__(
        self,
        key: bytes | None,
        direction: bytes,
        session_id: int | None = None,
        *,
        window: int = 4096,
        max_session_age_s: float | None = None,
    ) -> None:
        self._key = direction_key(key, direction)
        self._fixed = session_id is not None
        self.session_id = session_id
        self._window_size = window
        self.window = ReplayWindow(window)
        self.max_session_age_s = max_session_age_s
        self.stats = OpenerStats()

    def open(self, datagram: bytes, wall_time: float | None = None) -> bytes:
        """The packet inside an authentic, fresh ``datagram``; ``WireError`` otherwise.
        ``wall_time`` (unix seconds) is needed only for ``max_session_age_s``."""
        if len(datagram) < HEADER_SIZE + TAG_SIZE:
            raise WireError(
                "truncated",
                f"datagram has {len(datagram)} bytes, header and tag need {HEADER_SIZE + TAG_SIZE}",
            )
        if not datagram.startswith(_PREFIX):
            raise WireError("magic", f"not an hfstream version {VERSION} datagram")
        body = datagram[:-TAG_SIZE]
        if not hmac.compare_digest(_tag(self._key, body), datagram[-TAG_SIZE:]):
            raise WireError("auth", "authentication tag does not match")
        session = int.from_bytes(body[SESSION_OFFSET:COUNTER_OFFSET], "big")
        counter = int.from_bytes(body[COUNTER_OFFSET : COUNTER_OFFSET + 4], "big")
        if session != self.session_id:
            self._new_session(session, wall_time)
        self.window.check(counter)
        self.window.accept(counter)
        self.stats.accepted += 1
        return body

    def _new_session(self, session: int, wall_time: float | None) -> None:
        if self._fixed:
            raise WireError("session", f"packet of session {session:016x}, not this one")
        if self.session_id is not None and session_start(session) <= session_start(self.session_id):
            raise WireError(
                "session", f"session {session:016x} is not newer than {self.session_id:016x}"
            )
        age = None if wall_time is None else wall_time - session_start(session)
        if self.max_session_age_s is not None and age is not None and age > self.max_session_age_s:
            raise WireError("session", f"session {session:016x} started {age:.0f} s ago")
        self.stats.switches += self.session_id is not None
        self.session_id = session
        self.window = ReplayWindow(self._window_size)
