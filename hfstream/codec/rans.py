"""compressai's rANS coder, called with its CDF tables as lists made once per table.

compressai's ``EntropyModel.compress`` and ``decompress`` turn the model's whole CDF table
into Python lists on every call, and ``decompress`` again for every string: 3.8 ms for
the Gaussian conditional's 64x3133 table, so a frame of 24 patches spent 90 ms in it.
These functions code the same symbols with the same tables through the same coder, so
their strings and values are those of compressai's methods, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # compressai is imported once, warnings filtered (``codec.continuous``)
    from compressai.entropy_models import EntropyModel

Tables = tuple[list[list[int]], list[int], list[int]]


def _tables(model: EntropyModel) -> Tables:
    """The model's (CDFs, their lengths, offsets) as lists, made again only when its CDF
    table changes (``update``, or new weights loaded into it)."""
    cdf = model._quantized_cdf
    key = (id(cdf), cdf._version, tuple(cdf.shape))
    held = getattr(model, "_rans_tables", None)
    if held is not None and held[0] == key:
        return held[1]
    model._check_cdf_size()
    model._check_cdf_length()
    model._check_offsets_size()
    tables = (
        cdf.tolist(),
        model._cdf_length.reshape(-1).int().tolist(),
        model._offset.reshape(-1).int().tolist(),
    )
    model._rans_tables = (key, tables)  # type: ignore[attr-defined]
    return tables


def encode(model: EntropyModel, symbols: torch.Tensor, indexes: torch.Tensor) -> list[bytes]:
    """One string per row of ``symbols`` (B, ...; integer values) under the CDFs that
    ``indexes`` (the same shape) pick: ``EntropyModel.compress`` of already quantised
    symbols."""
    if symbols.shape != indexes.shape or symbols.dim() < 2:
        raise ValueError(f"symbols {tuple(symbols.shape)} and indexes {tuple(indexes.shape)}")
    tables = _tables(model)
    return [
        model.entropy_coder.encode_with_indexes(
            symbols[i].reshape(-1).int().tolist(), indexes[i].reshape(-1).int().tolist(), *tables
        )
        for i in range(symbols.shape[0])
    ]


def decode(model: EntropyModel, strings: Sequence[bytes], indexes: torch.Tensor) -> torch.Tensor:
    """The symbols (B, ...) of ``strings`` (one a row of ``indexes``), as
    ``EntropyModel.decompress`` reads them before it adds any means: int32 values."""
    if len(strings) != indexes.shape[0] or indexes.dim() < 2:
        raise ValueError(f"{len(strings)} strings for indexes {tuple(indexes.shape)}")
    tables = _tables(model)
    out = model._quantized_cdf.new_empty(indexes.shape)
    for i, s in enumerate(strings):
        values = model.entropy_coder.decode_with_indexes(
            s, indexes[i].reshape(-1).int().tolist(), *tables
        )
        out[i] = torch.tensor(values, dtype=out.dtype).reshape(out[i].shape)
    return out
