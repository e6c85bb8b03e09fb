import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hfstream.codec.rates import PerPatch
from hfstream.files import container
from hfstream.files.container import ContainerError, IndexCoding


@pytest.fixture(scope="module")
def encoded(codec, small_image):
    return codec.encode(small_image, schedule="auto")


@pytest.fixture(scope="module")
def blob(codec, encoded):
    return container.write(encoded, codec, coding=IndexCoding.PRIOR)


@pytest.mark.parametrize("coding", list(IndexCoding))
@pytest.mark.parametrize("withheld", [False, True])
def test_round_trip_is_exact(codec, encoded, coding, withheld):
    data = container.write(encoded, codec, coding=coding, include_withheld=withheld)
    back = container.read(data, codec)
    expected = encoded if withheld else encoded.kept_only()
    assert (back.height, back.width, back.codebook_size) == (encoded.height, encoded.width, 1024)
    for a, b in zip(back.patches, expected.patches, strict=True):
        assert a.schedule == b.schedule and a.continuous == b.continuous
        assert np.array_equal(a.indices, b.indices)


def test_reading_without_indices_keeps_tier_0(codec, encoded, blob, monkeypatch):
    light = container.read(blob, codec, indices=False)
    for a, b in zip(light.patches, encoded.patches, strict=True):
        assert a.continuous == b.continuous and a.rung == b.rung and a.schedule == b.schedule
        assert not a.known.any()
    full = container.read(blob, codec)
    assert np.array_equal(
        codec.decode(light, mode="continuous"), codec.decode(full, mode="continuous")
    )
    # read_to_decode reads the indices only for a mode that uses them.
    monkeypatch.setattr(
        codec, "index_gain_db", {label: -1.0 for label in ("0", "1_4", "1_9", "1_2")}
    )
    assert not any(p.known.any() for p in container.read_to_decode(blob, codec).patches)
    monkeypatch.setattr(
        codec, "index_gain_db", {label: 1.0 for label in ("0", "1_4", "1_9", "1_2")}
    )
    assert any(p.known.any() for p in container.read_to_decode(blob, codec).patches)
    assert any(p.known.any() for p in container.read_to_decode(blob, codec, "hybrid").patches)


def test_prior_coding_is_smaller_than_fixed(codec, encoded):
    fixed = container.write(encoded, codec, coding=IndexCoding.FIXED, include_withheld=True)
    prior = container.write(encoded, codec, coding=IndexCoding.PRIOR, include_withheld=True)
    assert len(prior) < len(fixed)


def test_reduced_codebook_round_trip(codec, small_image):
    enc = codec.encode(small_image, schedule="1_4", codebook_size=128)
    back = container.read(container.write(enc, codec), codec)
    assert back.codebook_size == 128
    assert all(
        np.array_equal(a.indices, b.indices)
        for a, b in zip(back.patches, enc.kept_only().patches, strict=True)
    )


def test_every_truncation_is_a_container_error(codec, blob):
    for n in range(len(blob)):
        with pytest.raises(ContainerError):
            container.read(blob[:n], codec)


def test_specific_errors(codec, encoded, blob):
    with pytest.raises(ContainerError, match="bad magic"):
        container.read(b"PNG\0" + blob[4:], codec)
    with pytest.raises(ContainerError, match="unsupported container version 7"):
        container.read(blob[:4] + b"\x07" + blob[5:], codec)
    foreign = bytearray(blob)
    foreign[6] ^= 0xFF
    with pytest.raises(ContainerError, match="encoded with model"):
        container.read(bytes(foreign), codec)
    huge = bytearray(blob)
    huge[10:12] = (16384).to_bytes(2, "big")
    huge[12:14] = (16384).to_bytes(2, "big")
    with pytest.raises(ContainerError, match="268.4 Mpx\\), more than the 16 Mpx limit"):
        container.read(bytes(huge), codec)  # the pixel limit comes first
    with pytest.raises(ContainerError, match="declares 4096 patches"):
        container.read(bytes(huge), codec, max_pixels=16384 * 16384)
    absurd = bytearray(blob)
    absurd[10:12] = (65535).to_bytes(2, "big")
    with pytest.raises(ContainerError, match="outside 1..16384"):
        container.read(bytes(absurd), codec)
    with pytest.raises(ContainerError, match="unexpected bytes"):
        container.read(blob + b"\0", codec)
    header = 17  # magic .. tiers; then the first patch's schedule and rung in a byte
    assert blob[4] == container.VERSION == 4 and blob[header] & 15 == encoded.patches[0].rung
    rung = bytearray(blob)
    rung[header] = (blob[header] & 0xF0) | codec.continuous.rungs
    with pytest.raises(ContainerError, match=f"patch 0 has rung {codec.continuous.rungs}"):
        container.read(bytes(rung), codec)
    schedule = bytearray(blob)
    schedule[header] = 0x70 | (blob[header] & 15)
    with pytest.raises(ContainerError, match="patch 0 has unknown schedule 7"):
        container.read(bytes(schedule), codec)
    endless = bytearray(blob[: header + 1]) + b"\xff" * 8
    with pytest.raises(ContainerError, match="y length runs over 4 bytes"):
        container.read(bytes(endless), codec)


def test_version_3_is_smaller_and_version_2_files_still_read(codec, small_image):
    """Version 3 drops 4 header bytes and about 3 a patch; a version-2 file holds the
    very same encoding."""
    encoded = codec.encode(small_image, schedule="1_4")
    for withheld in (False, True):
        new = container.write(encoded, codec, include_withheld=withheld)
        old = container.write(encoded, codec, include_withheld=withheld, version=2)
        assert old[4] == 2 and len(old) - len(new) >= 4 + 3 * len(encoded.patches)
        a, b = container.read(new, codec), container.read(old, codec)
        for p, q in zip(a.patches, b.patches, strict=True):
            assert p.continuous == q.continuous and p.rung == q.rung
            assert p.schedule == q.schedule and np.array_equal(p.indices, q.indices)
    with pytest.raises(ValueError, match="versions 2 to 4, not 1"):
        container.write(encoded, codec, version=1)


def test_version_1_files_read_at_rung_0(codec, small_image):
    """Files written before the rate ladder have no rung byte; they read as rung 0."""
    encoded = codec.encode(small_image, schedule="auto", rate=PerPatch((0, 0)))
    blob = container.write(encoded, codec, coding=IndexCoding.PRIOR, version=2)
    n = len(encoded.patches)
    old = bytearray(blob[:21])
    old[4] = 1
    rest, pos = bytearray(), 21
    for _ in range(n):  # drop each patch's rung byte
        rest += blob[pos : pos + 1]
        pos += 2
        for _ in range(3):  # y, z, kept indices: length-prefixed
            length = int.from_bytes(blob[pos : pos + 2], "big")
            rest += blob[pos : pos + 2 + length]
            pos += 2 + length
    back = container.read(bytes(old + rest), codec)
    new = container.read(blob, codec)
    for a, b in zip(back.patches, new.patches, strict=True):
        assert a.rung == 0 and a.continuous == b.continuous
        assert np.array_equal(a.indices, b.indices)


def _corrupt_then_read(codec, blob, data) -> None:
    """Flip bytes anywhere after the header: either a ContainerError or a picture."""
    buf = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(22, len(buf) - 1))
        buf[i] = data.draw(st.integers(0, 255))
    try:
        enc = container.read(bytes(buf), codec)
    except ContainerError:
        return
    assert codec.decode(enc).shape == (enc.height, enc.width, 3)


_CORRUPTION = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@settings(max_examples=8, **_CORRUPTION)
@given(st.data())
def test_corrupted_bytes_never_crash(codec, blob, data):
    _corrupt_then_read(codec, blob, data)


@pytest.mark.slow  # each example that survives parsing is a full decode
@settings(max_examples=60, **_CORRUPTION)
@given(st.data())
def test_corrupted_bytes_never_crash_many(codec, blob, data):
    _corrupt_then_read(codec, blob, data)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=300))
def test_random_bytes_are_refused(codec, data):
    with pytest.raises(ContainerError):
        container.read(data, codec)
