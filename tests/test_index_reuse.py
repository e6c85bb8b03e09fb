"""``sim.index_reuse``: what indices coded against the reference's would add to predicted
frames, measured on a small clip."""

from __future__ import annotations

import re


def test_the_index_reuse_measure_runs_on_a_clip(small_image, tmp_path, capsys):
    from hfstream.media.video import VideoWriter
    from sim.index_reuse import main as index_reuse
    from sim.video_channel import pan_clip

    clip = tmp_path / "c.mp4"
    with VideoWriter(clip, fps=10) as w:
        for f in pan_clip(small_image, 3, 96, 128):
            w.write(f)
    assert index_reuse(["--video", str(clip), "--frames", "3"]) == 0
    out = capsys.readouterr().out
    rows = [line.split(" | ") for line in out.splitlines() if re.match(r"^\d+ \| ", line)]
    assert [r[0] for r in rows] == ["1", "2"]  # one row per predicted frame
    for row in rows:
        assert 0.0 <= float(row[3]) <= 1.0 and 0.0 <= float(row[4]) <= 1.0  # shares
    # A 96x128 frame is one patch: 256 indices of 10 bits on their own.
    assert "indices per frame 256, 10 bits each" in out
    assert "320 B on their own" in out
    assert re.search(r"conditional bytes spent as tier 0 instead: [+-]\d+\.\d\d dB", out)
