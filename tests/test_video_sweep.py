"""VP8 / H.264 through PyAV over a lossy channel, and the video sweep end to end."""

import json

import numpy as np
import pytest

from hfstream.eval.metrics import psnr
from sim.loss import NoLoss, Pattern
from sim.video_channel import (
    decode_clip,
    encode_clip,
    fit_bitrate,
    packet_bytes,
    pan_clip,
    video_deliver,
)
from sim.video_sweep import DEFAULT_METHODS, worst_share
from sim.video_sweep import main as video_sweep


@pytest.fixture(scope="module")
def clip(small_image):
    return pan_clip(small_image, 8, 64, 96)


def test_pan_clip_moves_across_the_photo(small_image):
    frames = pan_clip(small_image, 5, 64, 96)
    assert len(frames) == 5 and all(f.shape == (64, 96, 3) for f in frames)
    assert not np.array_equal(frames[0], frames[-1])
    big = pan_clip(small_image[:32, :40], 3, 64, 96)  # smaller photo: scaled up first
    assert big[0].shape == (64, 96, 3)


@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_codec_round_trip_and_key_frame_loss(clip, codec):
    coded = encode_clip(clip, codec, 400_000, fps=10, gop=4)
    assert len(coded) == len(clip)
    shown, fresh = decode_clip(coded, [True] * len(coded), codec, clip[0].shape)
    assert all(fresh)
    clean = [psnr(a, b) for a, b in zip(clip, shown, strict=True)]
    assert np.mean(clean) > 25
    # Without the first key frame the frames up to the next one (frame 4) are lost or
    # concealed against nothing: frozen grey (VP8) or far below the clean pictures (H.264).
    received = [False] + [True] * (len(coded) - 1)
    shown, fresh = decode_clip(coded, received, codec, clip[0].shape)
    assert not fresh[0] and (shown[0] == 128).all()
    if codec == "vp8":
        assert not any(fresh[:4])
    lossy = [psnr(a, b) for a, b in zip(clip, shown, strict=True)]
    assert np.mean(lossy[:4]) < np.mean(clean[:4]) - 5
    assert all(fresh[4:]) and np.mean(lossy[4:]) > 25


def test_bitrate_search_fits_the_budget(clip):
    budget = 3000
    coded, rate = fit_bitrate(clip, "h264", budget, fps=10, gop=8, mtu=1200)
    assert packet_bytes(coded, 1200) <= budget
    assert rate > 0


def test_lost_piece_removes_its_whole_frame(clip):
    coded = encode_clip(clip, "vp8", 400_000, fps=10, gop=30)
    pieces = [len(range(0, len(c), 1176)) for c in coded]
    # Lose exactly one piece of the last frame: it freezes on the one before.
    pattern = [False] * (sum(pieces) - 1) + [True]
    d = video_deliver(clip, "vp8", 0, Pattern(pattern), coded=coded)
    assert d.fresh == [True] * (len(clip) - 1) + [False]
    assert np.array_equal(d.shown[-1], d.shown[-2])
    assert d.packets_lost == 1 and d.packets_sent == sum(pieces)
    clean = video_deliver(clip, "vp8", 0, NoLoss(), coded=coded)
    assert all(clean.fresh) and clean.packets_lost == 0


def test_worst_share():
    assert worst_share([5.0, 1.0, 3.0, 2.0] * 5) == 1.0
    assert worst_share([4.0, 2.0]) == 2.0


def test_video_sweep_end_to_end_and_resume(small_image, tmp_path):
    from PIL import Image

    img = tmp_path / "p.png"
    Image.fromarray(small_image).save(img)
    out = tmp_path / "vs"
    argv = [
        "--image",
        str(img),
        "--frames",
        "3",
        "--size",
        "64x96",
        "--rates",
        "0",
        "0.5",
        "--loss-models",
        "bernoulli",
        "--seeds",
        "1",
        "--bpp",
        "1.5",  # 64x96 frames: room for tier 0 with its 56-byte header and tag
        "--out",
        str(out),
    ]
    assert video_sweep(argv) == 0
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    # By default every method but hfstream-live (run only when asked for).
    assert {r["method"] for r in rows} == set(DEFAULT_METHODS) and len(rows) == 2 * len(
        DEFAULT_METHODS
    )
    for r in rows:
        # The WebRTC rows fit the budget over 1 + the loss rate; their resends are random.
        if r["loss_rate"] == 0 or not r["method"].endswith("-webrtc"):
            assert r["bytes_sent"] <= r["budget_bytes"]
        assert len(r["frame_psnr"]) == len(r["frame_vmaf"]) == len(r["frame_delay_ms"]) == 3
        assert 0 <= r["vmaf_worst10"] <= r["vmaf"] <= 100
        if r["loss_rate"] == 0:
            assert r["frozen"] == 0 and r["packets_lost"] == 0
            assert r["delay_ms"] == r["delay_p95_ms"] == 50.0
    assert (out / "summary.csv").exists() and (out / "video_quality_vs_loss.png").exists()
    summary_md = (out / "summary.md").read_text()
    assert "| hfstream | bernoulli |" in summary_md and "| h264-webrtc | bernoulli |" in summary_md
    assert "Mean frame VMAF" in summary_md and "delay" in summary_md
    assert video_sweep(argv) == 0  # resumes: nothing new
    assert len((out / "results.jsonl").read_text().splitlines()) == 2 * len(DEFAULT_METHODS)
    with pytest.raises(SystemExit):
        video_sweep(["--size", "65x96", "--out", str(out)])


def test_several_clips_and_the_round_trip_in_the_case_key(small_image, tmp_path, capsys):
    from hfstream.media.video import VideoWriter

    videos = []
    for name, photo in (("a.mp4", small_image), ("b.mp4", small_image[::-1])):
        videos += ["--video", str(tmp_path / name)]
        with VideoWriter(tmp_path / name, fps=10) as w:
            for f in pan_clip(photo, 4, 64, 96):
                w.write(f)
    out = tmp_path / "vs"
    argv = [*videos, "--frames", "4", "--methods", "vp8-webrtc", "--rates", "0.3"]
    argv += ["--loss-models", "bernoulli", "--seeds", "1", "--bpp", "1", "--out", str(out)]
    assert video_sweep(argv) == 0
    assert video_sweep([*argv, "--rtt-ms", "60"]) == 0  # another case: run anew
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert sorted((r["source"][-5:], r["rtt_ms"]) for r in rows) == [
        ("a.mp4", 60.0),
        ("a.mp4", 100.0),
        ("b.mp4", 60.0),
        ("b.mp4", 100.0),
    ]
    assert "vp8-webrtc" in capsys.readouterr().out
    assert video_sweep([*argv, "--first-seed", "3"]) == 0  # more realizations
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["seed"] for r in rows if r["rtt_ms"] == 100.0) == [0, 0, 3, 3]
    with pytest.raises(SystemExit):
        video_sweep([*argv, "--rtt-ms", "500", "--latency-ms", "200"])
    assert "under the one-way delay" in capsys.readouterr().err
