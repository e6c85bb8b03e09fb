"""The dual-stream codec: continuous latent + VQ indices, and the pieces behind it.

Names load on first use, so the torch-free modules of this package (``encoded``,
``schedules``, ``index_coding``, ``rates``, ``modes``, ``fallback``) can be imported
without loading torch.

``hybrid.HybridCodec`` is the façade: it loads a model, ``encode``s and ``decode``s. Behind
it, one concept per module: ``rates`` (how an encode chooses rungs), ``estimates`` (the rung
table and the quality floor), ``frames`` (images as patches and bands), ``latents`` (tier 0
coded and decoded), ``codebooks`` and ``fills`` (indices to code vectors), ``decoding`` (a
region in one mode) over ``continuous_picture``, ``refined_picture`` and ``legacy`` (the
correction decoder of models without a refiner), ``modes`` (what ``auto`` shows),
``caches`` and ``fallback``."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "MISSING": "hfstream.codec.encoded",
    "EncodedImage": "hfstream.codec.encoded",
    "EncodedPatch": "hfstream.codec.encoded",
    "HybridCodec": "hfstream.codec.hybrid",
    "Schedule": "hfstream.codec.schedules",
    "Fixed": "hfstream.codec.rates",
    "Budget": "hfstream.codec.rates",
    "PerPatch": "hfstream.codec.rates",
}
__all__ = [
    "MISSING",
    "Budget",
    "EncodedImage",
    "EncodedPatch",
    "Fixed",
    "HybridCodec",
    "PerPatch",
    "Schedule",
]

if TYPE_CHECKING:
    from hfstream.codec.encoded import MISSING, EncodedImage, EncodedPatch
    from hfstream.codec.hybrid import HybridCodec
    from hfstream.codec.rates import Budget, Fixed, PerPatch
    from hfstream.codec.schedules import Schedule


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hfstream.codec' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
