"""Index coding: a list of codebook indices <-> bytes.

Two coders, both decodable from any packet on its own:

- ``pack_fixed`` / ``unpack_fixed``: ceil(log2 K) bits per index, big-endian bit order.
- ``PriorCoder``: ANS coding (the ``constriction`` library) under the predictor's
  distribution for each position given ŷc alone (every index masked). Because the prior
  conditions on nothing but tier 0, the indices of any subset of positions can be coded
  or decoded without the others.

The encoder and the decoder must build identical probability tables from the predictor's
logits. Rounding cannot give that on its own: with 262 144 logits per patch, float noise
of 1e-6 would move dozens across any grid's boundaries. What gives it is computing the
very same sums on both sides: ``HybridCodec.index_probabilities`` runs the transformer one
patch at a time (the same shapes whatever the batch), on a ŷc decoded on one thread, and
the softmax is computed in float64 with numpy from logits rounded to a 1/16 grid
(``tests/test_prior_exact.py`` checks batch compositions and thread counts). A change of
machine can still change the sums, which is why the transport guards each index packet
with a checksum.
"""

from __future__ import annotations

import math

import constriction
import numpy as np

LOGIT_STEP = 1.0 / 16.0
_FAMILY = constriction.stream.model.Categorical(perfect=False)


def bits_per_index(codebook_size: int) -> int:
    assert codebook_size >= 2, f"codebook_size must be at least 2, got {codebook_size}"
    return math.ceil(math.log2(codebook_size))


def pack_fixed(values: np.ndarray, bits: int) -> bytes:
    """Pack non-negative ints < 2**bits at ``bits`` bits each; the last byte is zero-padded."""
    v = np.asarray(values, dtype=np.int64).ravel()
    if v.size and (v.min() < 0 or v.max() >= 1 << bits):
        raise ValueError(f"index out of range for {bits}-bit packing: [{v.min()}, {v.max()}]")
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)
    bitmat = ((v[:, None] >> shifts[None, :]) & 1).astype(np.uint8)
    return np.packbits(bitmat.ravel()).tobytes()


def unpack_fixed(data: bytes, bits: int, count: int) -> np.ndarray:
    need = (count * bits + 7) // 8
    if len(data) != need:
        raise ValueError(f"fixed-length index data has {len(data)} bytes, expected {need}")
    flat = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[: count * bits]
    weights = 1 << np.arange(bits - 1, -1, -1, dtype=np.int64)
    return (flat.reshape(count, bits).astype(np.int64) * weights).sum(axis=1)


def probabilities_from_logits(logits: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """(n, K) logits -> (n, K') float64 probabilities, reproducibly.

    ``groups`` (K,) maps each codebook word to its word in a reduced codebook; the
    probabilities of a reduced word are the sums over its members.
    """
    q = np.round(np.asarray(logits, dtype=np.float64) / LOGIT_STEP) * LOGIT_STEP
    q -= q.max(axis=1, keepdims=True)
    p = np.exp(q)
    p /= p.sum(axis=1, keepdims=True)
    if groups is not None:
        k = int(groups.max()) + 1
        out = np.zeros((p.shape[0], k), dtype=np.float64)
        for j in range(k):  # a fixed summation order, for reproducibility
            out[:, j] = p[:, groups == j].sum(axis=1)
        p = out
    return p


def encode_with_prior(symbols: np.ndarray, probs: np.ndarray) -> bytes:
    """ANS-code ``symbols[i]`` under ``probs[i]``; returns the compressed bytes."""
    sym = np.asarray(symbols, dtype=np.int32).ravel()
    if sym.shape[0] != probs.shape[0]:
        raise ValueError(f"{sym.shape[0]} symbols but {probs.shape[0]} distributions")
    if sym.size == 0:
        return b""
    if sym.min() < 0 or sym.max() >= probs.shape[1]:
        raise ValueError(f"symbol out of range [0, {probs.shape[1]})")
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(sym, _FAMILY, probs)
    return coder.get_compressed().astype("<u4").tobytes()


def decode_with_prior(data: bytes, probs: np.ndarray) -> np.ndarray:
    """Inverse of ``encode_with_prior``; ``ValueError`` on data that is not such a stream."""
    n = probs.shape[0]
    if n == 0:
        if data:
            raise ValueError("index data present but no position to decode")
        return np.zeros(0, dtype=np.int64)
    if len(data) == 0 or len(data) % 4:
        raise ValueError(
            f"prior-coded index data must be a non-empty multiple of 4 bytes, got {len(data)}"
        )
    words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
    try:
        coder = constriction.stream.stack.AnsCoder(words)
        out = coder.decode(_FAMILY, probs)
    except (ValueError, RuntimeError) as e:
        raise ValueError(f"corrupt prior-coded index data: {e}") from None
    if not coder.is_empty():
        raise ValueError("prior-coded index data has trailing words")
    return np.asarray(out, dtype=np.int64)
