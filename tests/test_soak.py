"""A small soak: a forged flood beside a real keyed stream, then a lossy stream."""

from __future__ import annotations

import asyncio

from sim.soak import FORGERIES, main, soak


def test_small_soak_decodes_every_real_frame_and_stays_bounded(codec, small_image):
    result = asyncio.run(
        soak(
            codec,
            small_image[:, :256],
            forged=1500,
            flood_frames=2,
            frames=40,
            loss=0.3,
            fps=200,
        )
    )
    flood, lossy = result.flood, result.loss
    assert flood.finals == 2  # every real frame beside the flood got its final picture
    assert flood.stats_max["frames_open"] <= 1  # no forged datagram opened a frame
    # Each forgery is refused at the tag (forged, altered) or the replay window.
    assert sum(result.drops.get(r, 0) for r in ("auth", "magic", "replay")) == 1500
    assert result.drops["replay"] == 1500 // len(FORGERIES)
    assert flood.forged_cpu_us > 0
    # The lossy stream: every container within its configured bound, whatever the count.
    assert lossy.stats_max["frames_open"] <= 8 and lossy.stats_max["decode_queue"] <= 32
    assert lossy.stats_max["decode_caches"] <= 2 and lossy.stats_max["updates_waiting"] <= 64
    assert lossy.stats_max["tasks"] == 3 and lossy.tasks_max <= 6
    assert 0 < lossy.finals <= 40


def test_soak_arguments_are_checked(capsys):
    import pytest

    with pytest.raises(SystemExit) as err:
        main(["--loss", "1.5"])
    assert err.value.code == 2
    assert "--loss must be in [0, 1)" in capsys.readouterr().err
