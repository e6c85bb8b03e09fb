"""``sim.budget_sweep``: hfstream photo by photo across budgets, and the budget rules."""

from __future__ import annotations

import csv

from PIL import Image

from hfstream.media.samples import bundled_image
from sim.budget_sweep import main, summary


def test_the_summary_counts_photos_that_got_worse_and_the_lowest_use():
    rows = [
        {"photo": 0, "budget_bpp": 0.1, "use": 0.97, "scale": "1", "psnr": 28.0},
        {"photo": 0, "budget_bpp": 0.2, "use": 0.50, "scale": "FINE", "psnr": 27.5},
        {"photo": 1, "budget_bpp": 0.1, "use": 0.99, "scale": "1", "psnr": 25.0},
        {"photo": 1, "budget_bpp": 0.2, "use": 0.90, "scale": "FINE", "psnr": 26.0},
    ]
    lines = summary(rows, [0.1, 0.2], []).splitlines()
    assert lines[1].split() == ["0.1", "0.980", "0.970", "0/2", "26.50", "0"]
    assert lines[2].split() == ["0.2", "0.700", "0.500", "2/2", "26.75", "1"]


def test_the_sweep_plans_each_photo_at_each_budget(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    image = bundled_image()
    Image.fromarray(image[:256, :256]).save(photos / "a.png")
    Image.fromarray(image[256:512, 256:512]).save(photos / "b.png")
    out = tmp_path / "out"
    assert main([str(photos), "--budgets", "0.3", "0.1", "--out", str(out)]) == 0
    with open(out / "budget_rows.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["photo"], r["budget_bpp"]) for r in rows] == [
        ("0", "0.1"),
        ("0", "0.3"),
        ("1", "0.1"),
        ("1", "0.3"),
    ]
    for r in rows:
        assert 0 < float(r["use"]) <= 1.0 and float(r["psnr"]) > 15
    assert "lowest use" in capsys.readouterr().out
