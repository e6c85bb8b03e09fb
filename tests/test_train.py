"""Every training stage runs (two steps each, tiny data) and export gives a loadable model."""

import numpy as np
import pytest
from PIL import Image

from hfstream.codec.hybrid import HybridCodec
from hfstream.train.__main__ import main as train


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:300, 0:320]
    for i in range(3):
        base = 127 + 100 * np.sin(xx / (10 + 5 * i))[..., None] * np.cos(yy / 17)[..., None]
        img = np.clip(base + rng.normal(0, 10, (300, 320, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"p{i}.png")
    return folder


def test_all_stages_and_export(photos, tmp_path):
    out, model = str(tmp_path / "run"), tmp_path / "model"
    common = ["--data", str(photos), "--out", out, "--device", "cpu"]
    train(["continuous", *common, "--steps", "2", "--batch", "2"])
    train(["tokenizer", *common, "--steps", "2", "--batch", "2", "--crop", "64"])
    train(["correction", *common, "--steps", "2", "--batch", "1"])
    train(["predictor", *common, "--steps", "2", "--batch", "2", "--samples", "16"])
    # Resuming a finished stage does nothing and keeps its checkpoint.
    train(["tokenizer", *common, "--steps", "2", "--batch", "2", "--crop", "64"])
    train(["export", *common, "--model-dir", str(model), "--complexity-samples", "20"])
    codec = HybridCodec.from_pretrained(model)
    img = np.asarray(Image.open(photos / "p0.png"))
    enc = codec.encode(img, schedule="1_4")
    assert codec.decode(enc.kept_only()).shape == img.shape


def test_missing_data_and_missing_stage(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        train(["continuous", "--data", str(tmp_path / "nope"), "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="train the tokenizer stage first"):
        train(["correction", "--data", str(tmp_path), "--out", str(tmp_path / "empty")])
