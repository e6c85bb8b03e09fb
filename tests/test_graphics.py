"""The graphics set made in code: the same pictures every run, flat and hard-edged."""

import numpy as np
from PIL import Image

from hfstream.media.graphics import PAINTERS, graphics_set, main


def test_the_set_is_the_same_every_run_and_graphic():
    first, again = graphics_set(), graphics_set()
    assert [n for n, _ in first] == list(PAINTERS)
    for (name, a), (_, b) in zip(first, again, strict=True):
        assert a.shape == (512, 768, 3) and a.dtype == np.uint8 and (a == b).all(), name
    pictures = dict(first)
    # Flat areas: a few colours cover most of the shapes and the screen.
    for name in ("shapes", "screen"):
        _, counts = np.unique(pictures[name].reshape(-1, 3), axis=0, return_counts=True)
        assert np.sort(counts)[-8:].sum() > 0.8 * 512 * 768, name
    assert not (graphics_set(seed=1)[1][1] == pictures["shapes"]).all()


def test_the_command_writes_every_picture(tmp_path, capsys):
    assert main([str(tmp_path / "g")]) == 0
    written = sorted(p.stem for p in (tmp_path / "g").glob("*.png"))
    assert written == sorted(PAINTERS)
    assert Image.open(tmp_path / "g" / "text.png").size == (768, 512)
    assert main([]) == 2 and "usage" in capsys.readouterr().err
