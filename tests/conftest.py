from __future__ import annotations

import numpy as np
import pytest

from hfstream.apps.demo import bundled_image
from hfstream.codec.hybrid import HybridCodec


@pytest.fixture(scope="session")
def codec() -> HybridCodec:
    """The real shipped model, the one the apps' ``shared_codec`` hands out too."""
    from hfstream.codec.shared import shared_codec

    return shared_codec()


@pytest.fixture(scope="session")
def small_image() -> np.ndarray:
    """A 240x300 crop of the bundled photo: two patches, padded on both axes."""
    return bundled_image()[100:340, 100:400].copy()
