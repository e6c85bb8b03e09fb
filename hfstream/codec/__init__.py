"""The dual-stream codec: continuous latent + VQ indices, and the pieces behind it.

Names load on first use, so the torch-free modules of this package (``encoded``,
``schedules``, ``index_coding``) can be imported without loading torch."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "MISSING": "hfstream.codec.encoded",
    "EncodedImage": "hfstream.codec.encoded",
    "EncodedPatch": "hfstream.codec.encoded",
    "HybridCodec": "hfstream.codec.hybrid",
    "Schedule": "hfstream.codec.schedules",
}
__all__ = ["MISSING", "EncodedImage", "EncodedPatch", "HybridCodec", "Schedule"]

if TYPE_CHECKING:
    from hfstream.codec.encoded import MISSING, EncodedImage, EncodedPatch
    from hfstream.codec.hybrid import HybridCodec
    from hfstream.codec.schedules import Schedule


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hfstream.codec' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
