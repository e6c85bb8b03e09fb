"""Per-patch normalisation statistics in frame-wide decoder passes."""

import threading

import pytest
import torch
from torch import nn

from hfstream.codec.tiling import PatchGroupNorm, from_tiles, patch_grid, to_tiles


def _norms() -> tuple[nn.GroupNorm, PatchGroupNorm]:
    torch.manual_seed(0)
    plain = nn.GroupNorm(4, 8)
    nn.init.normal_(plain.weight)
    nn.init.normal_(plain.bias)
    tiled = PatchGroupNorm(4, 8)
    tiled.load_state_dict(plain.state_dict())
    return plain, tiled


def test_tiles_round_trip_row_major():
    x = torch.randn(2, 3, 8, 12)
    t = to_tiles(x, 2, 3)
    assert t.shape == (12, 3, 4, 4)
    assert torch.equal(t[4], x[0, :, 4:8, 4:8])  # frame 0, tile (1, 1)
    assert torch.equal(from_tiles(t, 2, 3), x)


def test_frame_pass_normalises_each_patch_alone():
    plain, tiled = _norms()
    frame = torch.randn(1, 8, 32, 48) * torch.linspace(0.1, 5, 48)  # patches differ in scale
    assert torch.allclose(tiled(frame), plain(frame))  # no grid: a plain GroupNorm
    with patch_grid(2, 3):
        out = tiled(frame)
    expected = from_tiles(plain(to_tiles(frame, 2, 3)), 2, 3)
    assert torch.allclose(out, expected, atol=1e-6)
    assert not torch.allclose(out, plain(frame), atol=1e-3)
    assert torch.allclose(tiled(frame), plain(frame))  # the grid ended with the block


def test_grid_is_private_to_a_thread():
    plain, tiled = _norms()
    frame = torch.randn(1, 8, 32, 48) * torch.linspace(0.1, 5, 48)
    seen = {}

    def other() -> None:
        seen["out"] = tiled(frame)

    with patch_grid(2, 3):
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert torch.allclose(seen["out"], plain(frame))


def test_bad_grids_are_refused():
    _, tiled = _norms()
    with pytest.raises(ValueError, match="Invalid patch grid 0x2"), patch_grid(0, 2):
        pass
    with pytest.raises(ValueError, match="does not split into 3x3 tiles"), patch_grid(3, 3):
        tiled(torch.randn(1, 8, 32, 32))
