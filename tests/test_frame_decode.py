"""Frames are coded and decoded whole: no patch seams, bands for large frames, rung choice."""

import copy

import numpy as np
import pytest
import torch

import hfstream.codec.frames as frames
from hfstream.codec.frames import row_bands
from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.modes import gain_at_share
from hfstream.codec.rates import Budget, Fixed, PerPatch
from hfstream.eval.metrics import psnr, seam_ratio
from hfstream.media.samples import bundled_image


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    """512x512 of the bundled photo: 2x2 patches."""
    return bundled_image()[:512, :512].copy()


def test_row_bands_cover_every_row_once():
    assert row_bands(2, 3) == [(0, 2, 0, 2)]
    bands = row_bands(10, 8)  # 80 patches: bands of one row with context around
    kept = [r for _, _, start, stop in bands for r in range(start, stop)]
    assert kept == list(range(10))
    for lo, hi, start, stop in bands:
        assert lo == max(0, start - 1) and hi == min(10, stop + 1)
        assert (hi - lo) * 8 <= frames.FRAME_PATCHES


def test_frame_decode_has_no_seams(codec, frame):
    enc = codec.encode(frame, schedule="1_4")
    ref = seam_ratio(frame)
    for mode in ("continuous", "hybrid", "vq"):
        out = codec.decode(enc.kept_only() if mode == "hybrid" else enc, mode=mode)
        assert seam_ratio(out) < 2.0 * ref, mode  # per-patch decoding gave 8-10x


def test_banded_decode_matches_the_whole_frame(codec, frame, monkeypatch):
    enc = codec.encode(frame, schedule="1_4").kept_only()
    whole = codec.decode(enc)
    monkeypatch.setattr(frames, "FRAME_PATCHES", 2)  # one patch row per band
    assert len(row_bands(*enc.grid)) == 2
    banded = codec.decode(enc)
    assert psnr(whole, banded) > 35.0
    assert abs(psnr(frame, whole) - psnr(frame, banded)) < 0.1


@pytest.fixture(scope="module")
def ladder_codec(codec) -> HybridCodec:
    """The shipped model with its continuous weights as a 4-rung ladder."""
    from conftest import with_rungs

    from hfstream.codec.legacy import load_correction
    from hfstream.codec.model_io import DEFAULT_MODEL_DIR, load_model

    ladder = with_rungs(codec.continuous, 4)
    ladder.update(force=True)
    return HybridCodec(
        codec.tokenizer,
        ladder,
        codec.predictor,
        codec.complexity,
        model_id=codec.model_id ^ 0x5A5A,
        reductions=codec.reductions,
        correction=load_correction(
            load_model(DEFAULT_MODEL_DIR), codec.tokenizer, codec.continuous.config.m
        ),
    )


def test_rungs_follow_the_request_and_the_budget(ladder_codec, frame):
    low = ladder_codec.encode(frame, schedule="1_4", rate=Fixed(0))
    high = ladder_codec.encode(frame, schedule="1_4", rate=Fixed(3))
    assert all(p.rung == 3 for p in high.patches)
    assert low.continuous_bytes < high.continuous_bytes
    budget = (low.continuous_bytes + high.continuous_bytes) // 2
    fitted = ladder_codec.encode(frame, schedule="1_4", rate=Budget(budget, rung=0))
    assert fitted.continuous_bytes <= budget * 1.05  # the table estimates, rANS adds a little
    assert fitted.continuous_bytes > low.continuous_bytes
    out = ladder_codec.decode(fitted.kept_only())
    assert out.shape == frame.shape


def test_quality_floor_lifts_a_dark_patch(ladder_codec, frame):
    dark = frame.copy()
    dark[:, :256] = (dark[:, :256] * 0.08).astype(np.uint8)  # a nearly black column
    enc = ladder_codec.encode(dark, schedule="1_4", rate=Fixed(0))
    rungs = np.array([p.rung for p in enc.patches]).reshape(enc.grid)
    assert rungs[:, 0].min() >= rungs[:, 1:].min()


def test_single_rate_model_refuses_rungs(codec, frame):
    from conftest import with_rungs

    single = copy.copy(codec)
    single.continuous = with_rungs(codec.continuous, 1)
    single.continuous.update(force=True)
    with pytest.raises(ValueError, match="single-rate continuous stream"):
        single.encode(frame, rate=Fixed(2))
    with pytest.raises(ValueError, match="single-rate continuous stream"):
        single.encode(frame, rate=Budget(500))
    with pytest.raises(ValueError, match="Invalid continuous budget"):
        codec.encode(frame, rate=Budget(0))


def test_frame_analysis_is_deterministic(codec, frame):
    a = codec.encode(frame, schedule="1_4")
    b = codec.encode(frame, schedule="1_4")
    assert [p.continuous for p in a.patches] == [p.continuous for p in b.patches]
    assert torch.equal(codec.latents(list(a.patches)), codec.latents(list(b.patches)))


def test_rung_table_estimates_what_each_rung_costs_and_leaves(ladder_codec, frame):
    table = ladder_codec.rung_table(frame)
    assert table.bits.shape == table.error.shape == (4, 4) and table.lost.shape == (4,)
    assert (np.diff(table.bits, axis=1) > 0).all()  # higher rungs cost more...
    assert (table.error[:, -1] < table.error[:, 0]).all()  # ...and leave less error
    assert (table.error >= table.thumb_error).all()  # up-sampling loses detail on top
    enc = ladder_codec.encode(frame, "1_4", rate=PerPatch((2,) * 4))  # Fixed(2) applies the floor
    measured = sum(len(y) + len(z) for y, z in (p.continuous for p in enc.patches))
    assert abs(table.bits[:, 2].sum() / 8 - measured) < 0.1 * measured


def test_recode_continuous_matches_a_fresh_encode(ladder_codec, frame):
    rungs = [0, 1, 3, 2]
    first = ladder_codec.encode(frame, "1_4", rate=Fixed(0))
    recoded = ladder_codec.recode_continuous(frame, first, rungs)
    fresh = ladder_codec.encode(frame, "1_4", rate=PerPatch(rungs))
    assert [p.rung for p in recoded.patches] == rungs
    for a, b in zip(recoded.patches, fresh.patches, strict=True):
        assert a.continuous == b.continuous and (a.indices == b.indices).all()


def test_encode_within_uses_a_clean_budget_and_buys_parity_under_loss(ladder_codec, frame):
    from hfstream.planning import Channel, encode_within

    budget = 0.08 * frame.shape[0] * frame.shape[1] / 8
    clean = encode_within(ladder_codec, frame, budget)
    lossy = encode_within(ladder_codec, frame, budget, channel=Channel(loss=0.3))
    assert clean.plan.parity_ratio == 0 and lossy.plan.parity_ratio > 0
    assert 0.85 * budget <= clean.plan.bytes <= budget and lossy.plan.bytes <= budget
    assert [p.rung for p in clean.encoded.patches] == list(clean.plan.rungs)


def test_encode_within_sends_no_indices_when_they_add_nothing(codec, frame):
    """A model whose measured index gains are all <= 0 (its receiver shows the continuous
    picture): tier 0 alone, no withheld indices, no index priors."""
    from hfstream.planning import encode_within

    original = codec.index_gain_db
    try:
        codec.index_gain_db = {"0": -0.5, "1_4": -0.2, "1_1": -0.01}
        planned = encode_within(codec, frame, 0.05 * frame.shape[0] * frame.shape[1] / 8)
    finally:
        codec.index_gain_db = original
    assert planned.plan.schedule == "0" and planned.priors is None
    assert not planned.packetizer.send_withheld


def test_indices_too_dear_at_their_floor_skip_the_priors(codec, frame):
    """Gains too small to pay even for tier 1's smallest framing: planned without the
    index priors; a large gain is planned with them. The floor is below the true price."""
    from hfstream.planning import encode_within, schedule_tier1_bytes, tier1_floor
    from hfstream.protocol.packetizer import PacketizerConfig

    enc = codec.encode(frame, "1_1")
    groups = PacketizerConfig().index_groups
    true_bytes = schedule_tier1_bytes(codec, enc, None, PacketizerConfig())
    for label, price in true_bytes.items():
        assert tier1_floor(label, len(enc.patches), groups) <= price
    budget = 0.05 * frame.shape[0] * frame.shape[1] / 8
    original = codec.index_gain_db
    try:
        codec.index_gain_db = {"0": 0.0, "1_16": 0.1}  # shown, but ~100 B buy more as rungs
        tiny = encode_within(codec, frame, budget)
        codec.index_gain_db = {"0": 0.0, "1_1": 9.0}
        large = encode_within(codec, frame, 10 * budget)
    finally:
        codec.index_gain_db = original
    assert tiny.plan.schedule == "0" and tiny.priors is None
    assert large.plan.schedule == "1_1" and large.priors is not None


def test_auto_mode_judges_by_the_indices_that_arrived(codec, frame):
    """A 1_4 frame whose withheld indices arrived too is shown as the 1_1 frame it is."""
    from hfstream.files import container

    enc = codec.encode(frame, "1_4")  # every index known
    kept = enc.kept_only()
    original = codec.index_gain_db
    try:
        codec.index_gain_db = {"0": 0.0, "1_4": 0.05, "1_2": 0.15, "1_1": 0.3}
        assert codec.auto_mode(kept) == "continuous"
        assert codec.auto_mode(enc) == "hybrid"
        bare = enc.without_indices()
        assert codec.auto_mode(bare) == "continuous"
        assert codec.auto_mode(bare, index_share=0.6) == "hybrid"  # past 1_2's half
        assert codec.auto_mode(bare, index_share=0.45) == "continuous"
        # An .hfs file is judged by the blobs it holds, before they are decoded.
        light = container.read_to_decode(container.write(enc, codec), codec)
        assert (np.stack([p.indices for p in light.patches]) == -1).all()
        held = container.read_to_decode(container.write(enc, codec, include_withheld=True), codec)
        assert (np.stack([p.indices for p in held.patches]) >= 0).all()
        assert np.array_equal(codec.decode(held), codec.decode(enc, mode="hybrid"))
    finally:
        codec.index_gain_db = original


def test_gain_at_share_takes_the_densest_schedule_within_it():
    gains = {"0": 0.0, "1_16": 0.02, "1_4": 0.07, "1_1": 0.33}
    assert gain_at_share(gains, 0.0) == 0.0
    assert gain_at_share(gains, 0.25) == 0.07
    assert gain_at_share(gains, 0.99) == 0.07
    assert gain_at_share(gains, 1.0) == 0.33
    assert gain_at_share({"1_1": 0.3}, 0.5) == 0.0


def test_gains_too_small_to_show_are_neither_shown_nor_planned(codec, frame):
    """Below ``MIN_SHOWN_GAIN_DB`` a schedule's frames decode as the continuous picture in
    ``auto`` mode, and the planner counts on nothing from it."""
    from hfstream.codec.modes import MIN_SHOWN_GAIN_DB
    from hfstream.planning import encode_within

    enc = codec.encode(frame, "1_4")
    original = codec.index_gain_db
    try:
        codec.index_gain_db = {"0": 0.0, "1_4": MIN_SHOWN_GAIN_DB / 2}
        assert codec.auto_mode(enc) == "continuous"
        assert codec.shown_gain_db == {"0": 0.0, "1_4": 0.0}
        planned = encode_within(codec, frame, 0.05 * frame.shape[0] * frame.shape[1] / 8)
        assert planned.priors is None and not planned.packetizer.send_withheld
        codec.index_gain_db = {"0": 0.0, "1_4": MIN_SHOWN_GAIN_DB}
        assert codec.auto_mode(enc) == "hybrid"
    finally:
        codec.index_gain_db = original


def test_a_frame_is_analysed_once_while_it_is_among_the_last_two(codec, monkeypatch):
    rng = np.random.default_rng(0)
    a, b, c = (rng.integers(0, 256, (64, 96, 3), dtype=np.uint8) for _ in range(3))
    continuous = codec.continuous
    first = frames.frame_bands(continuous, a)
    assert frames.frame_bands(continuous, a.copy()) is first  # the pixels, not the array
    frames.frame_bands(continuous, b)
    assert frames.frame_bands(continuous, a) is first
    frames.frame_bands(continuous, c)
    frames.frame_bands(continuous, b)  # a is now the least recent of three
    assert frames.frame_bands(continuous, a) is not first
    # Weights changed in place (trained, or loaded) since: analysed afresh.
    before = frames.frame_bands(continuous, a)
    with torch.no_grad():
        next(continuous.g_a.parameters()).add_(0.0)  # the same values, a new version
    after = frames.frame_bands(continuous, a)
    assert after is not before and frames.frame_bands(continuous, a) is after
    # A frame larger than the limit is never kept.
    monkeypatch.setattr(frames, "RECENT_BANDS_MAX_BYTES", a.nbytes - 1)
    assert frames.frame_bands(continuous, a) is not frames.frame_bands(continuous, a)
