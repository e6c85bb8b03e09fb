from __future__ import annotations

import numpy as np
import pytest

from hfstream.codec.hybrid import HybridCodec
from hfstream.media.samples import bundled_image


@pytest.fixture(scope="session")
def codec() -> HybridCodec:
    """The real shipped model, the one the apps' ``shared_codec`` hands out too."""
    from hfstream.codec.shared import shared_codec

    return shared_codec()


@pytest.fixture(scope="session")
def small_image() -> np.ndarray:
    """A 240x300 crop of the bundled photo: two patches, padded on both axes."""
    return bundled_image()[100:340, 100:400].copy()


@pytest.fixture(scope="session")
def brighter(codec) -> tuple[np.ndarray, np.ndarray]:
    """A reference picture (decoded) and the next frame: the same scene 24 levels
    brighter, a change that differences code far better than pictures."""
    from PIL import Image

    from hfstream.codec.rates import Fixed

    scene = np.asarray(
        Image.fromarray(bundled_image()).resize((640, 448), Image.Resampling.LANCZOS)
    )
    reference = codec.decode(codec.encode_tier0(scene[64:320, 64:576], rate=Fixed(5)))
    return reference, np.clip(reference.astype(int) + 24, 0, 255).astype(np.uint8)


def with_rungs(continuous, rungs: int):
    """The shipped continuous weights with ``rungs`` rungs: a single-rate stream, or a
    ladder whose gains start at their initial values (the shipped ladder's, when it has
    as many rungs), so tests do not depend on how many rungs the shipped model has."""
    import dataclasses

    from hfstream.codec.continuous import ContinuousCodec

    default = min(continuous.config.default_rung, max(rungs - 1, 0))
    out = ContinuousCodec(dataclasses.replace(continuous.config, rungs=rungs, default_rung=default))
    state = continuous.state_dict()
    if continuous.config.rungs != rungs:
        state = {k: v for k, v in state.items() if k not in ("gain", "inverse_gain")}
    out.load_state_dict(state)
    return out.eval()


def scaled_stream_state(continuous, *, gain: float = 1.0, rungs: int = 0) -> tuple[dict, dict]:
    """(state, config as a dict) of ``continuous`` with its gains times ``gain`` (finer
    quantisation: strings another stream reads wrong), or its first ``rungs`` rungs: what
    a training run of another stream (residual, FINE) would leave in its checkpoint."""
    import dataclasses

    state = {k: v.clone() for k, v in continuous.state_dict().items()}
    state["gain"] = state["gain"] * gain
    state["inverse_gain"] = state["inverse_gain"] / gain
    config = continuous.config
    if rungs:
        config = dataclasses.replace(config, rungs=rungs, default_rung=0)
        state["gain"], state["inverse_gain"] = state["gain"][:rungs], state["inverse_gain"][:rungs]
    return state, dataclasses.asdict(config)
