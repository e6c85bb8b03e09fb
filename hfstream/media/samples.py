"""The bundled sample picture: matplotlib's ``grace_hopper.jpg`` (matplotlib comes with
the ``eval`` extra), so the demo, benches and tests need no file of their own and no
network."""

from __future__ import annotations

import numpy as np
from PIL import Image

from hfstream.extras import require


def bundled_image() -> np.ndarray:
    """The sample photo as a contiguous HxWx3 uint8 array (512x600)."""
    cbook = require("matplotlib.cbook", purpose="the bundled sample picture")
    with cbook.get_sample_data("grace_hopper.jpg") as f, Image.open(f) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB")))
