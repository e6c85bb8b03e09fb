"""A bounds-checked byte buffer for binary formats (the container and the wire).

``pull_*`` raise ``BufferReadError`` (a ``ValueError``) naming what was being read when
the data ends early, so a truncated input always gives a specific message.
"""

from __future__ import annotations

import struct


class BufferReadError(ValueError):
    pass


class Buffer:
    def __init__(self, data: bytes = b"") -> None:
        self._data = bytes(data)
        self._pos = 0
        self._out = bytearray()

    # reading
    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def eof(self) -> bool:
        return self._pos >= len(self._data)

    def pull_bytes(self, n: int, what: str = "bytes") -> bytes:
        if n < 0 or self.remaining < n:
            raise BufferReadError(f"truncated {what}: need {n} bytes, {self.remaining} left")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def _pull(self, fmt: str, size: int, what: str) -> int:
        return struct.unpack(fmt, self.pull_bytes(size, what))[0]

    def pull_uint8(self, what: str = "uint8") -> int:
        return self._pull("!B", 1, what)

    def pull_uint16(self, what: str = "uint16") -> int:
        return self._pull("!H", 2, what)

    def pull_uint32(self, what: str = "uint32") -> int:
        return self._pull("!I", 4, what)

    def pull_varint(self, what: str = "varint", max_bytes: int = 4) -> int:
        """An unsigned LEB128 integer of at most ``max_bytes`` bytes (7 bits each)."""
        value = 0
        for i in range(max_bytes):
            byte = self.pull_uint8(what)
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                return value
        raise BufferReadError(f"{what} runs over {max_bytes} bytes")

    # writing
    def push_bytes(self, b: bytes) -> None:
        self._out += b

    def push_uint8(self, v: int) -> None:
        self._out += struct.pack("!B", v)

    def push_uint16(self, v: int) -> None:
        self._out += struct.pack("!H", v)

    def push_uint32(self, v: int) -> None:
        self._out += struct.pack("!I", v)

    def push_varint(self, v: int) -> None:
        if v < 0:
            raise ValueError(f"a varint is unsigned, got {v}")
        while v >= 0x80:
            self._out.append(0x80 | (v & 0x7F))
            v >>= 7
        self._out.append(v)

    def data(self) -> bytes:
        return bytes(self._out)
