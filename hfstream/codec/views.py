"""Views of a ``HybridCodec`` with another continuous stream in place of its picture
stream: the residual stream of residual predicted frames, the ``FINE`` stream of frames
coded at twice their size. A view shares every other part with the model, keeps its own
ŷc caches (the same strings mean another ŷc in another stream) and has no views of its
own, so that a residual frame at ``FINE`` is coded by the residual stream."""

from __future__ import annotations

import copy
from typing import Any, TypeVar

from hfstream.codec import fills
from hfstream.codec.caches import LRU
from hfstream.codec.continuous import ContinuousCodec
from hfstream.codec.latents import LATENT_CACHE
from hfstream.codec.upsampler import LearnedUpsampler

# The codec's type, not imported: ``codec.hybrid`` imports this module.
C = TypeVar("C", bound=Any)


def stream_view(
    codec: C,
    stream: ContinuousCodec,
    *,
    upsampler: LearnedUpsampler | None,
    temporal: bool,
) -> C:
    """``codec`` (a ``HybridCodec``) coding with ``stream``, shown through ``upsampler``
    (None: the stream's interpolation), with the model's temporal synthesis where
    ``temporal``."""
    view = copy.copy(codec)
    view.continuous = stream
    view.upsampler = upsampler
    if not temporal:
        view.temporal = None
    view.residual_stream = view.fine_stream = view.fine_upsampler = None
    view.fine_error_bias_db = None
    view._residual_coder = view._fine_coder = None
    view._latents = LRU(LATENT_CACHE)
    view._prior_fills = LRU(fills.PRIOR_FILL_CACHE)
    return view
