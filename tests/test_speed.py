import numpy as np
import pytest

from hfstream.codec.hybrid import HybridCodec
from hfstream.eval import speed


def test_frame_covers_and_crops_to_768x512():
    tall = np.arange(600 * 500 * 3, dtype=np.uint8).reshape(600, 500, 3)
    wide = np.zeros((520, 1000, 3), np.uint8)
    wide[:, 116:884] = 200  # the centre 768 columns
    assert speed.frame(tall).shape == (512, 768, 3)
    out = speed.frame(wide)
    assert out.shape == (512, 768, 3)
    assert (out == 200).all()


@pytest.mark.slow  # times every step and fits AVIF and WebP to a byte budget
def test_speed_prints_every_step_and_the_classic_ratios(capsys):
    assert speed.main(["--threads", "1", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    steps = speed.hybrid_steps(HybridCodec.from_pretrained())
    rows = ("up-sampler", "receive hybrid (read + decode)", "receive (read + decode)", "encode")
    for step in (*steps, *rows, "encode refined (50 steps)", "planned encode"):
        assert f"| {step} | " in out
    assert "hfstream receive / avif" in out
    assert "hfstream receive / webp" in out
