"""The deblocking filter removes a step at a patch border and leaves the rest alone."""

from __future__ import annotations

import numpy as np
import pytest

from hfstream.codec.deblocking import REACH, deblock
from hfstream.eval.metrics import seam_ratio


def _ramp_picture(h: int = 512, w: int = 768) -> np.ndarray:
    """A smooth diagonal gradient with mild seeded texture: no seam of its own."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 40 + 0.15 * xx + 0.1 * yy + rng.normal(0, 2, (h, w))
    return np.clip(np.repeat(base[..., None], 3, axis=2), 0, 255).round().astype(np.uint8)


def test_offset_patches_lose_their_seam() -> None:
    clean = _ramp_picture()
    seamed = clean.astype(np.int16)
    seamed[:, 256:512] += 6  # one patch column a little brighter: a quantisation offset
    seamed[256:, :] -= 4
    seamed = np.clip(seamed, 0, 255).astype(np.uint8)
    before = seam_ratio(seamed) / seam_ratio(clean)
    out = deblock(seamed)
    after = seam_ratio(out) / seam_ratio(clean)
    assert before > 2.0
    assert after < 1.3
    # Only the borders' neighbourhoods change.
    changed = np.any(out != seamed, axis=2)
    far = np.ones(changed.shape, bool)
    for b in (256, 512):
        far[:, b - REACH : b + REACH] = False
    far[256 - REACH : 256 + REACH, :] = False
    assert not changed[far].any()
    # And the pixels the offset moved get closer to the clean picture.
    err_before = np.abs(seamed.astype(float) - clean).mean()
    err_after = np.abs(out.astype(float) - clean).mean()
    assert err_after < err_before


def test_a_smooth_gradient_across_a_border_is_left_alone() -> None:
    clean = _ramp_picture()
    out = deblock(clean)
    assert np.abs(out.astype(int) - clean).max() <= 2
    assert abs(seam_ratio(out) - seam_ratio(clean)) < 0.05


def test_a_single_patch_and_bad_input() -> None:
    one = _ramp_picture(200, 256)
    assert np.array_equal(deblock(one), one)
    with pytest.raises(ValueError, match="uint8"):
        deblock(one.astype(np.float32))
    with pytest.raises(ValueError, match="HxWxC"):
        deblock(one[..., 0])


def _whole_picture_deblock(picture: np.ndarray, patch: int = 256) -> np.ndarray:
    """The filter as its definition reads: the whole picture in floats, the vertical
    borders first, then the horizontal ones over the result."""
    import torch

    from hfstream.codec.deblocking import SMOOTHING, _filter_border, _gaussian

    kernel = _gaussian(SMOOTHING)
    x = torch.from_numpy(picture).permute(2, 0, 1).float()
    for axis in (2, 1):
        view = x if axis == 2 else x.transpose(1, 2)
        length = view.shape[2]
        for b in range(patch, length, patch):
            if b - REACH >= 0 and b + REACH <= length:
                strip = view[:, :, b - REACH : b + REACH].clone()
                _filter_border(strip, kernel)
                view[:, :, b - REACH : b + REACH] = strip
    return x.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


@pytest.mark.parametrize("shape", [(512, 768), (300, 700), (513, 257), (1024, 1536)])
def test_filtering_the_border_strips_alone_gives_the_whole_pictures_pixels(shape) -> None:
    rng = np.random.default_rng(1)
    blocks = rng.integers(0, 256, (shape[0] // 16 + 1, shape[1] // 16 + 1, 3), dtype=np.uint8)
    picture = np.kron(blocks, np.ones((16, 16, 1), np.uint8))[: shape[0], : shape[1]]
    noisy = np.clip(picture.astype(int) + rng.integers(-5, 6, picture.shape), 0, 255)
    picture = noisy.astype(np.uint8)
    out = deblock(picture)
    assert np.array_equal(out, _whole_picture_deblock(picture))
    assert not np.array_equal(out, picture)  # the borders did change
