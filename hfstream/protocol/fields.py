"""The readers every payload layout shares: msgpack unpacked under the MTU's limits, and
typed fields checked one by one. Every error is a ``WireError`` naming what is wrong."""

from __future__ import annotations

import msgpack

from hfstream.protocol.schedules import Schedule

DEFAULT_MTU = 1200


class WireError(ValueError):
    """A malformed packet. ``reason`` is a short, stable key for counting drops."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def unpack_payload(payload: bytes, mtu: int = DEFAULT_MTU) -> list:
    """msgpack -> a list, with every size bounded by the MTU."""
    if len(payload) > mtu:
        raise WireError("size", f"payload of {len(payload)} bytes exceeds the MTU of {mtu}")
    unpacker = msgpack.Unpacker(
        raw=False,
        max_buffer_size=max(mtu, 1),
        max_bin_len=mtu,
        max_str_len=0,
        max_array_len=mtu,
        max_map_len=0,
        max_ext_len=0,
        strict_map_key=True,
        use_list=True,
    )
    unpacker.feed(payload)
    try:
        obj = unpacker.unpack()
    except msgpack.OutOfData:
        # msgpack is prefix-free: every cut of a payload ends here, whatever it held.
        raise WireError("truncated", f"payload of {len(payload)} bytes is truncated") from None
    except (msgpack.FormatError, msgpack.StackError, ValueError) as e:
        raise WireError("payload", f"payload is not valid msgpack: {e}") from None
    extra = len(payload) - unpacker.tell()
    if extra:
        raise WireError("payload", f"payload has {extra} bytes after its array")
    if not isinstance(obj, list):
        raise WireError("payload", f"payload must be an array, got {type(obj).__name__}")
    return obj


def pack_payload(obj: list) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def int_field(v: object, lo: int, hi: int, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise WireError("field", f"{what} must be an integer in {lo}..{hi}, got {v!r}")
    return v


def bin_field(v: object, lo: int, hi: int, what: str) -> bytes:
    if not isinstance(v, bytes) or not lo <= len(v) <= hi:
        n = len(v) if isinstance(v, bytes) else type(v).__name__
        raise WireError("field", f"{what} must be {lo}..{hi} bytes, got {n}")
    return v


def schedule_field(v: object) -> Schedule:
    sid = int_field(v, 0, 255, "schedule")
    if sid not in Schedule._value2member_map_:
        raise WireError("field", f"unknown schedule id {sid}")
    return Schedule(sid)


def entry_arrays(payload: list, width: int, what: str, *, may_be_empty: bool = False) -> list[list]:
    if not payload and not may_be_empty:
        raise WireError("field", f"{what} packet carries no entry")
    for e in payload:
        if not isinstance(e, list) or len(e) != width:
            raise WireError("field", f"{what} entry must be an array of {width}")
    return payload
