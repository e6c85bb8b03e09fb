"""The continuous stream's rate ladder, per-patch coding and frame-wide synthesis."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from hfstream.codec.continuous import (
    ContinuousCodec,
    ContinuousConfig,
    fill_missing_blocks,
    from_blocks,
    ladder_lmbdas,
    to_blocks,
)
from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.rates import Fixed


@pytest.fixture(scope="module")
def ladder() -> ContinuousCodec:
    torch.manual_seed(0)
    model = ContinuousCodec(ContinuousConfig(n=16, m=24, rungs=3)).eval()
    model.update(force=True)
    return model


def test_blocks_round_trip_row_major():
    y = torch.arange(2 * 3 * 8 * 12, dtype=torch.float32).reshape(2, 3, 8, 12)
    blocks = to_blocks(y)
    assert blocks.shape == (2 * 2 * 3, 3, 4, 4)
    assert torch.equal(blocks[1], y[0, :, 0:4, 4:8])  # patch (0, 1) of the first frame
    assert torch.equal(blocks[3], y[0, :, 4:8, 0:4])  # patch (1, 0)
    assert torch.equal(from_blocks(blocks, 2, 3), y)


def test_missing_block_borrows_from_neighbours():
    blocks = torch.stack([torch.full((2, 4, 4), float(k)) for k in range(6)])  # 2x3 patches
    present = torch.tensor([True, True, True, True, False, True])
    filled = fill_missing_blocks(blocks, present, 2, 3)
    assert torch.allclose(filled[4], torch.full((2, 4, 4), (0 + 1 + 2 + 3 + 5) / 5))
    assert torch.equal(filled[present], blocks[present])
    alone = fill_missing_blocks(blocks[:1], torch.tensor([False]), 1, 1)
    assert torch.equal(alone, torch.zeros(1, 2, 4, 4))


def test_frame_coding_matches_the_training_latent(ladder):
    torch.manual_seed(1)
    low = torch.rand(1, 3, 64, 128)  # two patches side by side
    strings = ladder.compress_frame(low, [0, 2])
    assert len(strings) == 2
    decoded = ladder.decompress_latent(strings, [0, 2])
    expected = torch.cat([ladder.quantized_latent(low, 0)[:1], ladder.quantized_latent(low, 2)[1:]])
    assert torch.allclose(decoded, expected, atol=1e-5)
    # Each patch decodes on its own, whatever came with it.
    assert torch.equal(ladder.decompress_latent(strings[1:], [2])[0], decoded[1])


@pytest.fixture(scope="module")
def shipped_ladder() -> ContinuousCodec:
    """The shipped weights as a 3-rung ladder (gains at their start values)."""
    from conftest import with_rungs

    ladder = with_rungs(HybridCodec.from_pretrained().continuous, 3)
    ladder.update(force=True)
    return ladder


def test_higher_rung_spends_more_bytes(shipped_ladder):
    ladder = shipped_ladder
    torch.manual_seed(2)
    low = torch.rand(1, 3, 64, 64)
    sizes = [sum(map(len, ladder.compress_frame(low, [r])[0])) for r in range(3)]
    assert sizes[0] < sizes[1] < sizes[2]


def test_rungs_added_below_cost_less_and_keep_the_trained_ones(shipped_ladder):
    extended = shipped_ladder.extended_below([0.5, 0.7])
    assert extended.rungs == 5
    assert extended.config.default_rung == shipped_ladder.config.default_rung + 2
    torch.manual_seed(3)
    low = torch.rand(1, 3, 64, 128)
    sizes = [
        sum(len(s) for pair in extended.compress_frame(low, [r] * 2) for s in pair)
        for r in range(5)
    ]
    assert sizes[0] < sizes[1] < sizes[2] < sizes[3]
    assert extended.compress_frame(low, [2, 4]) == shipped_ladder.compress_frame(low, [0, 2])
    with pytest.raises(ValueError, match="should ascend"):
        shipped_ladder.extended_below([0.7, 0.5])
    with pytest.raises(ValueError, match="should ascend"):
        shipped_ladder.extended_below([1.5])


def test_bad_rungs_are_refused(ladder):
    low = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match="Invalid rung 3"):
        ladder.compress_frame(low, [3])
    with pytest.raises(ValueError, match="2 rungs given for 1 patches"):
        ladder.compress_frame(low, [0, 1])
    with pytest.raises(ValueError, match="Invalid rungs 0"):
        ContinuousCodec(ContinuousConfig(rungs=0))


def test_single_rate_weights_start_a_ladder():
    single = ContinuousCodec(ContinuousConfig(n=16, m=24))
    ladder = ContinuousCodec(ContinuousConfig(n=16, m=24, rungs=4))
    ladder.load_state_dict(single.state_dict())
    assert torch.equal(ladder.g_a[0].weight, single.g_a[0].weight)
    lm = ladder_lmbdas(4)
    assert lm == sorted(lm) and ladder.gain.shape == (4, 24)
    assert bool((ladder.gain[1:] > ladder.gain[:-1]).all())


def test_training_pass_gives_per_sample_bits(ladder):
    ladder.train()
    out = ladder(torch.rand(2, 3, 64, 128), torch.tensor([0, 2]))
    ladder.eval()
    assert out["x_hat"].shape == (2, 3, 64, 128)
    assert out["bits"].shape == (2,) and bool((out["bits"] > 0).all())


def test_ladder_table_predicts_bytes_and_error(shipped_ladder):
    """The encoder's per-rung table: bits close to what coding spends, error falling."""
    torch.manual_seed(3)
    x = torch.rand(1, 3, 64, 64).repeat_interleave(2, 2).repeat_interleave(2, 3)  # smooth
    low = torch.nn.functional.avg_pool2d(x, 1)[:, :, :64, :128].contiguous()
    low = torch.cat([low[:, :, :, :64], low[:, :, :, :64] * 0.2], dim=3)  # bright | dark
    bits, error, signal = shipped_ladder.ladder_table(low)
    assert bits.shape == error.shape == (2, 3) and signal.shape == (2,)
    assert bool((bits[:, 1:] > bits[:, :-1]).all())
    assert bool((error[:, 2] < error[:, 0]).all())
    assert float(signal[1]) < float(signal[0])
    for rung in range(3):
        spent = [8 * (len(y) + len(z)) for y, z in shipped_ladder.compress_frame(low, [rung] * 2)]
        for k in range(2):
            assert abs(spent[k] - float(bits[k, rung])) < 0.1 * float(bits[k, rung]) + 64


def test_a_lost_patch_is_filled_smoothly_from_the_arrived_pixels():
    from hfstream.codec.continuous import fill_missing_pixels

    g = torch.Generator().manual_seed(0)
    low = torch.rand((1, 3, 128, 192), generator=g)
    low[..., :64, :64] = torch.tensor([0.9, 0.1, 0.1])[:, None, None]  # a red patch
    present = torch.tensor([True, False, True, True, True, True])
    out = fill_missing_pixels(low, present, 2, 3)
    hole = (slice(None), slice(None), slice(0, 64), slice(64, 128))
    keep = torch.ones_like(low, dtype=torch.bool)
    keep[hole] = False
    assert torch.equal(out[keep], low[keep])  # arrived patches untouched
    filled = out[hole]
    assert filled.min() >= low[keep].min() and filled.max() <= low[keep].max()
    # Smooth: steps inside the hole are far below the random neighbours' steps ...
    inside = (filled[..., 1:, :] - filled[..., :-1, :]).abs().mean()
    around = (low[..., 64:, :][..., 1:, :] - low[..., 64:, :][..., :-1, :]).abs().mean()
    assert inside < 0.1 * around
    # ... and it leans to its red left neighbour near that border, not beyond it.
    assert filled[0, 0, :, :4].mean() > filled[0, 0, :, -4:].mean()
    assert torch.equal(fill_missing_pixels(low, torch.ones(6, dtype=torch.bool), 2, 3), low)
    assert torch.equal(fill_missing_pixels(low, torch.zeros(6, dtype=torch.bool), 2, 3), low)


def test_a_lost_patch_decodes_nearer_its_own_content_than_a_borrowed_latent(codec):
    """Against synthesising the neighbours' mean latent in the lost patch's place."""
    from conftest import bundled_image

    image = bundled_image()[:512, :512]  # 2 x 2 patches
    enc = codec.encode(image, "1_4", rate=Fixed(0))
    lost = [1]
    patches = tuple(
        replace(p, continuous=None) if i in lost else p for i, p in enumerate(enc.patches)
    )
    shown = codec.decode(replace(enc, patches=patches), mode="continuous")
    present = torch.tensor([i not in lost for i in range(4)])
    own = codec.latents([p for p in patches if p.continuous is not None])
    blocks = own.new_zeros((4, *own.shape[1:]))
    blocks[present] = own
    borrowed = from_blocks(fill_missing_blocks(blocks, present, 2, 2), 2, 2)
    low = codec.continuous.synthesize(borrowed)
    old = codec.continuous_picture(low, borrowed)[0].permute(1, 2, 0).numpy() * 255
    region = (slice(0, 256), slice(256, 512))  # patch 1
    err_new = np.abs(shown[region].astype(float) - image[region]).mean()
    err_old = np.abs(old[region] - image[region]).mean()
    assert err_new < err_old


def test_the_likelihood_floors_survive_a_float16_copy_of_the_weights():
    """A packed checkpoint stores float16, which flushes the 1e-9 floors to 0; with a zero
    floor a rare symbol's estimated bits were infinite (the planner then overflowed)."""
    model = ContinuousCodec(ContinuousConfig(n=8, m=8, rungs=2))
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    assert float(state["gaussian_conditional.likelihood_lower_bound.bound"]) == 0
    model.load_state_dict(state)
    for entropy_model in (model.entropy_bottleneck, model.gaussian_conditional):
        assert float(entropy_model.likelihood_lower_bound.bound) == pytest.approx(1e-9)


def test_a_ladder_table_synthesised_at_some_rungs_interpolates_the_others(shipped_ladder):
    """Measured rungs keep their error and every rung its bits; a rung between two
    measured ones gets their log-linear mean, and the ends must be measured."""
    torch.manual_seed(4)
    low = torch.rand(1, 3, 64, 128)
    bits, error, _ = shipped_ladder.ladder_table(low)
    fast_bits, fast_error, _ = shipped_ladder.ladder_table(low, synthesised=(0, 2))
    assert torch.equal(bits, fast_bits)
    assert torch.equal(error[:, [0, 2]], fast_error[:, [0, 2]])
    expected = (error[:, 0].log() / 2 + error[:, 2].log() / 2).exp()
    assert torch.allclose(fast_error[:, 1], expected)
    with pytest.raises(ValueError, match="first and last"):
        shipped_ladder.ladder_table(low, synthesised=(0, 1))
