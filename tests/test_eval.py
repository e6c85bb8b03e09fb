"""The evaluation rows on the shipped model: every method present, bytes consistent."""

import pytest

from hfstream.eval.rd import evaluate_image

# Every method of the benchmark on one image: over a minute on a 2-core CPU.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rows(codec, small_image):
    rows = evaluate_image(codec, small_image, iterative_steps=2, vmaf=True)
    return {r["method"]: r for r in rows}


def test_every_method_has_a_row(rows):
    for s in ("1_2", "1_4", "1_9", "1_16", "auto"):
        assert f"hybrid {s}" in rows
    for s in ("1_4", "1_9"):
        for fill in ("nearest fill", "soft fill", "iterative 2"):
            assert f"hybrid {s} {fill}" in rows
        for fill in ("predictor fill", "nearest fill", "soft fill"):
            assert f"vq {s} {fill}" in rows
    for name in ("continuous", "vq (all indices)", "hybrid (all indices)", "jpeg", "webp", "avif"):
        assert name in rows


def test_bytes_grow_with_the_indices_sent(rows):
    order = ["continuous", "hybrid 1_16", "hybrid 1_9", "hybrid 1_4", "hybrid 1_2"]
    sizes = [rows[m]["bytes"] for m in order] + [rows["hybrid (all indices)"]["bytes"]]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    for s in ("1_2", "1_4", "1_9"):
        assert rows[f"hybrid {s}"]["bytes"] < rows[f"hybrid {s}"]["bytes_fixed"]
    ladder = [rows[f"hybrid 1_4 codebook {k}"]["bytes"] for k in (512, 256, 128, 64)]
    assert ladder == sorted(ladder, reverse=True) and ladder[0] <= rows["hybrid 1_4"]["bytes"]


def test_classic_codecs_get_the_hybrid_1_4_budget(rows):
    budget = rows["hybrid 1_4"]["bytes"]
    for name in ("jpeg", "webp", "avif"):
        assert rows[name]["bytes"] is None or rows[name]["bytes"] <= budget


def test_quality_is_in_range_and_the_fill_matters_without_the_correction(rows):
    for r in rows.values():
        if r["psnr"] is not None:
            assert 5 < r["psnr"] < 60 and 0 < r["ms_ssim"] <= 1 and 0 <= r["vmaf"] <= 100
    scores = {round(r["vmaf"], 2) for r in rows.values() if r["psnr"] is not None}
    assert len(scores) > 3  # VMAF tells the pictures apart
    assert rows["vq 1_4 predictor fill"]["psnr"] > rows["vq 1_4 nearest fill"]["psnr"]
    assert rows["hybrid (all indices)"]["psnr"] > rows["vq 1_4 nearest fill"]["psnr"]


def test_budget_rows_stay_within_their_budget_and_get_better_with_more(rows, small_image):
    pixels = small_image.shape[0] * small_image.shape[1]
    ours = [rows[f"hfstream {b:g} bpp"] for b in (0.01, 0.02, 0.03, 0.04, 0.05, 0.06)]
    for b, r in zip((0.01, 0.02, 0.03, 0.04, 0.05, 0.06), ours, strict=True):
        # Below rung 0 the planner sends tier 0 anyway; otherwise within the budget.
        assert r["bytes"] <= b * pixels / 8 or r["schedule"] == "0"
        for name in ("jpeg", "webp", "avif"):
            classic = rows[f"{name} {b:g} bpp"]
            assert classic["bytes"] is None or classic["bytes"] <= r["bytes"]
    # The small image's tier 0 at rung 0 is over the lowest budgets: equal is allowed.
    sizes = [r["bytes"] for r in ours]
    assert sizes == sorted(sizes) and ours[-1]["psnr"] >= ours[0]["psnr"]
