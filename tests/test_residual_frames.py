"""Residual predicted frames: the differences from the moved reference, coded by the same
continuous stream, planned against pictures, and carried by one header flag."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hfstream.codec.frame_coding import packetize
from hfstream.codec.temporal import add_residual, residual_picture
from hfstream.eval.metrics import psnr
from hfstream.planning.temporal import encode_predicted
from hfstream.protocol.packetizer import Packetizer
from hfstream.protocol.wire import FLAG_RESIDUAL, WireError, parse_header
from hfstream.stream.progressive import FrameDecodeState, build_encoded, reassemble


def test_residual_pictures_round_trip():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    aligned = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    diff = residual_picture(image, aligned)
    back = add_residual(aligned, diff, np.zeros((1, 1), bool), 1)
    assert np.abs(back.astype(int) - image).max() <= 1  # halving loses the last bit
    assert (add_residual(aligned, diff, np.ones((1, 1), bool), 1) == aligned).all()


def test_a_change_of_light_is_coded_as_differences(codec, brighter):
    reference, frame = brighter
    pictures = encode_predicted(
        codec, frame, 400, reference=reference, reference_id=0, residual=False
    )
    planned = encode_predicted(codec, frame, 400, reference=reference, reference_id=0)
    assert planned.encoded.residual and not pictures.encoded.residual
    assert planned.plan.bytes <= 400
    shown = codec.decode(planned.encoded, reference=reference)
    assert (
        psnr(frame, shown) > psnr(frame, codec.decode(pictures.encoded, reference=reference)) + 10
    )


def test_a_residual_frame_travels_with_its_flag(codec, brighter):
    reference, frame = brighter
    enc = encode_predicted(codec, frame, 400, reference=reference, reference_id=6).encoded
    packets = packetize(enc, Packetizer(codec.model_id), frame_id=7).in_priority_order()
    header, _ = parse_header(packets[0][1])
    assert header.flags & FLAG_RESIDUAL and header.reference == 6
    state = reassemble(codec, [p for _, p in packets])
    assert state is not None and state.complete and state.residual
    got = build_encoded(codec, state, FrameDecodeState())
    assert got.residual
    assert (codec.decode(got, reference=reference) == codec.decode(enc, reference=reference)).all()
    # The flag on an intra frame (reference field 0) is refused.
    forged = packets[0][1][:38] + b"\x00\x00" + packets[0][1][40:]
    with pytest.raises(WireError, match="only a predicted frame"):
        parse_header(forged)
    with pytest.raises(ValueError, match="only a predicted frame"):
        replace(enc, reference=None)


def test_the_coding_comparison_runs_on_a_clip(small_image, tmp_path, capsys):
    from hfstream.media.video import VideoWriter
    from sim.temporal_coding import main as temporal_coding
    from sim.video_channel import pan_clip

    clip = tmp_path / "c.mp4"
    with VideoWriter(clip, fps=10) as w:
        for f in pan_clip(small_image, 3, 96, 128):
            w.write(f)
    assert temporal_coding(["--video", str(clip), "--frames", "3", "--step", "5"]) == 0
    table = capsys.readouterr().out
    assert "reuse (0 B)" in table and table.count("\n| ") == 7  # header and 6 rungs


def test_a_patch_s_motion_travels_in_the_packet_of_its_strings(codec, brighter):
    from hfstream.protocol.packetizer import PacketizerConfig
    from hfstream.protocol.wire import parse_tier0

    reference, frame = brighter
    enc = encode_predicted(codec, frame, 400, reference=reference, reference_id=6).encoded
    for per_packet in (1, 0):
        config = PacketizerConfig(tier0_patches=per_packet, parity_ratio=0)
        fp = packetize(enc, Packetizer(codec.model_id, config=config), frame_id=7)
        patches = []
        for packet in fp.tier0:
            _, payload = parse_header(packet)
            entries = parse_tier0(payload, 2, predicted=True)
            by_patch = {e.patch for e in entries}
            assert len(entries) == 2 * len(by_patch)  # each patch: its motion and strings
            patches += sorted(by_patch)
        assert sorted(patches) == [0, 1]
