import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hfstream.codec.index_coding import (
    bits_per_index,
    decode_with_prior,
    encode_with_prior,
    pack_fixed,
    probabilities_from_logits,
    unpack_fixed,
)


@given(
    st.integers(1, 10).flatmap(
        lambda b: st.tuples(st.just(b), st.lists(st.integers(0, (1 << b) - 1), max_size=300))
    )
)
def test_fixed_length_round_trip(case):
    bits, values = case
    data = pack_fixed(np.array(values, dtype=np.int64), bits)
    assert len(data) == (len(values) * bits + 7) // 8
    assert unpack_fixed(data, bits, len(values)).tolist() == values


def test_fixed_length_errors():
    with pytest.raises(ValueError, match="out of range for 6-bit"):
        pack_fixed(np.array([64]), 6)
    with pytest.raises(ValueError, match="has 3 bytes, expected 2"):
        unpack_fixed(b"\0\0\0", 10, 1)
    assert [bits_per_index(k) for k in (1024, 512, 256, 128, 64)] == [10, 9, 8, 7, 6]


def _probs(n, k, seed):
    rng = np.random.default_rng(seed)
    return probabilities_from_logits(rng.normal(0, 3, (n, k)))


@pytest.mark.parametrize("k", [64, 1024])
def test_prior_round_trip_is_exact(k):
    rng = np.random.default_rng(k)
    probs = _probs(200, k, 1)
    symbols = np.array([rng.choice(k, p=p) for p in probs])
    data = encode_with_prior(symbols, probs)
    assert decode_with_prior(data, probs).tolist() == symbols.tolist()
    # Symbols drawn from the prior cost about its entropy.
    entropy = -(probs * np.log2(probs)).sum(axis=1).sum()
    assert 8 * len(data) < entropy * 1.1 + 64


def test_prior_coding_of_unlikely_symbols_still_round_trips():
    probs = probabilities_from_logits(np.tile(np.r_[40.0, np.zeros(63)], (50, 1)))
    symbols = np.full(50, 63)
    assert decode_with_prior(encode_with_prior(symbols, probs), probs).tolist() == symbols.tolist()


@settings(max_examples=200)
@given(st.binary(max_size=64))
def test_random_bytes_never_crash_the_prior_decoder(data):
    probs = _probs(16, 1024, 2)
    try:
        out = decode_with_prior(data, probs)
    except ValueError:
        return
    assert out.shape == (16,) and out.min() >= 0 and out.max() < 1024


def test_prior_errors():
    probs = _probs(4, 64, 3)
    with pytest.raises(ValueError, match="multiple of 4"):
        decode_with_prior(b"\1\2\3", probs)
    with pytest.raises(ValueError, match="3 symbols but 4 distributions"):
        encode_with_prior(np.array([1, 2, 3]), probs)
    with pytest.raises(ValueError, match="symbol out of range"):
        encode_with_prior(np.array([1, 2, 3, 64]), probs)


def test_grouped_probabilities_sum_members():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(3, 8))
    groups = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    full = probabilities_from_logits(logits)
    grouped = probabilities_from_logits(logits, groups)
    assert grouped.shape == (3, 4)
    np.testing.assert_allclose(grouped, full.reshape(3, 4, 2).sum(axis=2))


def test_logit_rounding_makes_tables_reproducible():
    logits = np.random.default_rng(5).normal(size=(10, 32))
    logits = np.round(logits * 16) / 16  # on the grid
    jitter = logits + 1e-6
    assert np.array_equal(probabilities_from_logits(logits), probabilities_from_logits(jitter))
