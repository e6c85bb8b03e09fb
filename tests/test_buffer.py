import pytest

from hfstream.files.buffer import Buffer, BufferReadError


def test_round_trip():
    b = Buffer()
    b.push_uint8(7)
    b.push_uint16(65535)
    b.push_uint32(123456789)
    b.push_bytes(b"xyz")
    r = Buffer(b.data())
    assert (r.pull_uint8(), r.pull_uint16(), r.pull_uint32(), r.pull_bytes(3)) == (
        7,
        65535,
        123456789,
        b"xyz",
    )
    assert r.eof()


def test_truncation_names_the_field():
    with pytest.raises(BufferReadError, match="truncated height: need 4 bytes, 2 left"):
        Buffer(b"\0\0").pull_uint32("height")
