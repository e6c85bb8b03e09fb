"""Packet authentication (sans-I/O): a session id, a per-packet tag and a replay window.

Every datagram ends with ``TAG_SIZE`` bytes of HMAC-SHA256 (Python's ``hmac``, backed by
OpenSSL) over everything before it, under a key derived from the pre-shared key and the
direction (data one way, reports the other, so a packet never verifies when reflected).
``Sealer.seal`` numbers a packet within its session and appends the tag; ``Opener.open``
checks the tag first, reading nothing but fixed header offsets, then the session and the
replay window, and returns the packet without its tag for the parsers.

Sessions: the sender draws a session id per stream: its start in unix milliseconds in
the high 42 bits and 22 random bits below. ``Opener`` (the receiver's side) adopts the
first authentic session, then switches to another authentic one when

- it started later (to the millisecond, so a sender restarted at once is taken at once), or
- the current session has sent nothing for ``session_idle_s``: a stream that went quiet
  (a sender that stopped, or one packet dated wrong) holds nobody out for longer.

Packets recorded from an earlier session cannot displace a live one. With the wall clock
passed in, a session dated more than ``max_session_future_s`` ahead of it is refused (a
fast clock, or a forgery under the key, cannot pin the receiver), and with
``max_session_age_s`` one that started too long ago. The replay windows of the last few
sessions are kept, so going back to one of them lets no packet of it in twice.

Reports (receiver to sender) are opened by ``ReportOpener``: they carry the sender's
session id, and in the header's capture field a random id the receiver draws whenever it
starts reporting, so a restarted receiver numbers its reports in a fresh space that the
sender accepts.

Without a key (``key=None``) the tag is computed under a fixed public key: it still
catches corruption, but anybody can forge it. That mode is for experiments only, and it
keeps no replay window (anybody can forge fresh numbers anyway; duplicates are dropped
by the reassembler): a forged packet number cannot lock the real stream out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass

from hfstream.protocol.wire import (
    CAPTURE_OFFSET,
    COUNTER_OFFSET,
    HEADER_SIZE,
    MAGIC,
    SESSION_OFFSET,
    SESSION_RANDOM_BITS,
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
    "hfstream: no key set (--key or HFSTREAM_KEY): packets are not authenticated. Anyone "
    "who can send to this stream can inject pictures, replay old ones, forge receiver "
    "reports, and take the stream over for as long as they keep sending. Experiments only."
)
_COUNTER_LIMIT = 1 << 32
_PREFIX = MAGIC + bytes([VERSION])
_SESSION_MS_MASK = (1 << 42) - 1  # unix milliseconds until the year 2109
MAX_DATAGRAM = 65507  # the largest UDP payload
DEFAULT_SESSION_IDLE_S = 2.0
DEFAULT_MAX_SESSION_FUTURE_S = 30.0
KEPT_WINDOWS = 4  # replay windows of recent sessions (or receivers) kept
SIGNAL_MAC_HEX = 64  # a signalling MAC: HMAC-SHA256 in lower-case hex


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


def signal_mac_matches(key: bytes | None, mac: object, *parts: str) -> bool:
    """Whether ``mac`` (as the peer sent it: any JSON value) is the MAC of ``parts``.
    Compared as bytes, in constant time; anything but 64 hex digits is simply no match."""
    if not (isinstance(mac, str) and len(mac) == SIGNAL_MAC_HEX and mac.isascii()):
        return False
    return hmac.compare_digest(mac.encode("ascii"), signal_mac(key, *parts).encode("ascii"))


def new_session_id(wall_time: float, random: bytes | None = None) -> int:
    """Start time (unix milliseconds) in the high 42 bits, 22 random bits below."""
    low = random if random is not None else secrets.token_bytes(4)
    if len(low) != 4:
        raise ValueError(f"a session id takes 4 random bytes, got {len(low)}")
    ms = int(wall_time * 1000) & _SESSION_MS_MASK
    return ms << SESSION_RANDOM_BITS | int.from_bytes(low, "big") >> (32 - SESSION_RANDOM_BITS)


def session_start(session_id: int) -> float:
    """When the session started (unix seconds, to the millisecond, sender's clock)."""
    return (session_id >> SESSION_RANDOM_BITS) / 1000


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
    switches: int = 0  # sessions replaced by another


def _check_datagram(datagram: bytes, max_datagram: int) -> None:
    """Size and prefix, before the tag: a forgery costs no MAC over more than a datagram."""
    if len(datagram) < HEADER_SIZE + TAG_SIZE:
        raise WireError(
            "truncated",
            f"datagram has {len(datagram)} bytes, header and tag need {HEADER_SIZE + TAG_SIZE}",
        )
    if len(datagram) > max_datagram:
        raise WireError(
            "size", f"datagram of {len(datagram)} bytes exceeds the {max_datagram} accepted"
        )
    if not datagram.startswith(_PREFIX):
        raise WireError("magic", f"not an hfstream version {VERSION} datagram")


class _Authenticator:
    def __init__(self, key: bytes | None, direction: bytes, max_datagram: int) -> None:
        if not HEADER_SIZE + TAG_SIZE <= max_datagram <= MAX_DATAGRAM:
            raise ValueError(
                f"max_datagram must be in {HEADER_SIZE + TAG_SIZE}..{MAX_DATAGRAM}, "
                f"got {max_datagram}"
            )
        self._key = direction_key(key, direction)
        self.keyed = key is not None
        self.max_datagram = max_datagram
        self.stats = OpenerStats()

    def _authentic_body(self, datagram: bytes) -> bytes:
        _check_datagram(datagram, self.max_datagram)
        body = datagram[:-TAG_SIZE]
        if not hmac.compare_digest(_tag(self._key, body), datagram[-TAG_SIZE:]):
            raise WireError("auth", "authentication tag does not match")
        return body


def _field(body: bytes, offset: int, size: int) -> int:
    return int.from_bytes(body[offset : offset + size], "big")


class Opener(_Authenticator):
    """Verifies the data datagrams of a stream and picks the session to follow, as the
    module docstring says. ``session_id`` pins one session (tests and tools)."""

    def __init__(
        self,
        key: bytes | None,
        direction: bytes,
        session_id: int | None = None,
        *,
        window: int = 4096,
        max_session_age_s: float | None = None,
        max_session_future_s: float | None = DEFAULT_MAX_SESSION_FUTURE_S,
        session_idle_s: float = DEFAULT_SESSION_IDLE_S,
        max_datagram: int = MAX_DATAGRAM,
    ) -> None:
        super().__init__(key, direction, max_datagram)
        if not session_idle_s > 0:
            raise ValueError(f"session_idle_s must be positive, got {session_idle_s}")
        self._fixed = session_id is not None
        self.session_id = session_id
        self._window_size = window
        self._windows: OrderedDict[int, ReplayWindow] = OrderedDict()
        self.window = ReplayWindow(window)
        if session_id is not None:
            self._keep(session_id, self.window)
        self.max_session_age_s = max_session_age_s
        self.max_session_future_s = max_session_future_s
        self.session_idle_s = session_idle_s
        self._last_accepted: float | None = None  # wall time of the session's last packet

    def open(self, datagram: bytes, wall_time: float | None = None) -> bytes:
        """The packet inside an authentic, fresh ``datagram``; ``WireError`` otherwise.
        ``wall_time`` (unix seconds) is needed for the age and future bounds and for
        leaving a session that went quiet."""
        body = self._authentic_body(datagram)
        session = _field(body, SESSION_OFFSET, 8)
        counter = _field(body, COUNTER_OFFSET, 4)
        window = self.window if session == self.session_id else self._may_switch(session, wall_time)
        if self.keyed:
            window.check(counter)
            window.accept(counter)
        if session != self.session_id:  # only an authentic, fresh packet switches
            self.stats.switches += self.session_id is not None
            self.session_id = session
            self.window = self._keep(session, window)
        self._last_accepted = wall_time
        self.stats.accepted += 1
        return body

    def _keep(self, session: int, window: ReplayWindow) -> ReplayWindow:
        """Keep ``session``'s replay window among the newest ``KEPT_WINDOWS``."""
        self._windows.pop(session, None)
        self._windows[session] = window
        while len(self._windows) > KEPT_WINDOWS:
            self._windows.popitem(last=False)
        return window

    def _may_switch(self, session: int, wall_time: float | None) -> ReplayWindow:
        """The replay window to check a packet of another ``session`` against, or a
        ``WireError`` when the session policy refuses it."""
        if self._fixed:
            raise WireError("session", f"packet of session {session:016x}, not this one")
        start = session_start(session)
        if wall_time is not None:
            ahead = start - wall_time
            if self.max_session_future_s is not None and ahead > self.max_session_future_s:
                raise WireError(
                    "session",
                    f"session {session:016x} is dated {ahead:.0f} s ahead of this clock "
                    f"(at most {self.max_session_future_s:g} s accepted)",
                )
            age = -ahead
            if self.max_session_age_s is not None and age > self.max_session_age_s:
                raise WireError("session", f"session {session:016x} started {age:.0f} s ago")
        if self.session_id is not None and start <= session_start(self.session_id):
            quiet = (
                None
                if wall_time is None or self._last_accepted is None
                else wall_time - self._last_accepted
            )
            if quiet is None or quiet < self.session_idle_s:
                raise WireError(
                    "session",
                    f"session {session:016x} is not newer than {self.session_id:016x}, "
                    "which is live",
                )
        return self._windows.get(session) or ReplayWindow(self._window_size)


class ReportOpener(_Authenticator):
    """Verifies the reports of the sender's own session (``session_id``). Each receiver
    run numbers its reports under its own id (the header's capture field), with a replay
    window per id for the last ``KEPT_WINDOWS`` ids."""

    def __init__(
        self,
        key: bytes | None,
        session_id: int,
        *,
        window: int = 4096,
        max_datagram: int = MAX_DATAGRAM,
    ) -> None:
        super().__init__(key, FEEDBACK, max_datagram)
        self.session_id = session_id
        self._window_size = window
        self._windows: OrderedDict[int, ReplayWindow] = OrderedDict()
        self.receivers = 0  # receiver ids seen

    def open(self, datagram: bytes, wall_time: float | None = None) -> bytes:
        body = self._authentic_body(datagram)
        session = _field(body, SESSION_OFFSET, 8)
        if session != self.session_id:
            raise WireError("session", f"report of session {session:016x}, not this one")
        receiver = _field(body, CAPTURE_OFFSET, 4)
        window = self._windows.pop(receiver, None)
        if window is None:
            window = ReplayWindow(self._window_size)
            self.receivers += 1
        self._windows[receiver] = window
        while len(self._windows) > KEPT_WINDOWS:
            self._windows.popitem(last=False)
        counter = _field(body, COUNTER_OFFSET, 4)
        window.check(counter)
        window.accept(counter)
        self.stats.accepted += 1
        return body
