"""Every training stage runs (two steps each, tiny data) and export gives a loadable model."""

import numpy as np
import pytest
import torch
from PIL import Image

from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.rates import PerPatch
from hfstream.media.samples import bundled_image
from hfstream.train.__main__ import main as train
from hfstream.train.stage_average import average_states


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
    train(["continuous", *common, "--steps", "2", "--batch", "2", "--crop", "256", "--rungs", "3"])
    train(["tokenizer", *common, "--steps", "2", "--batch", "2", "--crop", "64"])
    train(["correction", *common, "--steps", "2", "--batch", "1", "--snapshot-every", "1"])
    snaps = [f"{out}/correction.step{i}.ckpt" for i in (1, 2)]
    train(["average", "--out", out, *snaps])
    assert (tmp_path / "run" / "correction.before-average.ckpt").exists()
    train(["predictor", *common, "--steps", "2", "--batch", "2", "--samples", "16"])
    # Resuming a finished stage does nothing and keeps its checkpoint.
    train(["tokenizer", *common, "--steps", "2", "--batch", "2", "--crop", "64"])
    up = ["--steps", "2", "--batch", "1", "--crop", "256", "--width", "8", "--blocks", "1"]
    train(["upsampler", *common, *up])
    refine = ["--steps", "2", "--batch", "1", "--crop", "256", "--width", "8", "--blocks", "1"]
    train(["refiner", *common, *refine, "--code-blocks", "1"])
    train(["export", *common, "--model-dir", str(model), "--complexity-samples", "20"])
    codec = HybridCodec.from_pretrained(model)
    assert codec.upsampler is not None and codec.upsampler.config.width == 8
    assert codec.refiner is not None and codec.refiner.config.blocks == 1
    img = np.asarray(Image.open(photos / "p0.png"))
    enc = codec.encode(img, schedule="1_4")
    assert codec.decode(enc.kept_only()).shape == img.shape
    assert codec.decode(enc, mode="continuous").shape == img.shape


def test_correction_on_multi_patch_crops_with_the_vq_decoder(tmp_path):
    """Crops of 2x2 patches decode frame-wide; the fine-tuned VQ decoder is checkpointed
    beside the correction decoder and exported with it."""
    from hfstream.train.common import Checkpoint

    folder = tmp_path / "big"
    folder.mkdir()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (520, 530, 3), dtype=np.uint8)).save(folder / "a.png")
    out = tmp_path / "run"
    train(["init", "--out", str(out)])
    common = ["--data", str(folder), "--out", str(out), "--device", "cpu"]
    before = {
        k: v.clone()
        for k, v in HybridCodec.from_pretrained().tokenizer.decoder.state_dict().items()
    }
    train(
        [
            "correction",
            *common,
            "--steps",
            "1",
            "--batch",
            "2",
            "--crop",
            "512",
            "--vq-decoder-lr",
            "1e-3",
            "--plain-share",
            "0.5",
        ]
    )
    states = Checkpoint(out / "correction.ckpt").load()["states"]
    assert set(states) == {"model", "opt", "vq_decoder"}
    moved = [k for k, v in states["vq_decoder"].items() if not torch.equal(v, before[k])]
    assert moved  # the VQ decoder was trained
    train(["export", *common, "--model-dir", str(tmp_path / "m"), "--complexity-samples", "4"])
    codec = HybridCodec.from_pretrained(tmp_path / "m")
    w = codec.tokenizer.decoder.state_dict()[moved[0]]
    assert torch.allclose(w, states["vq_decoder"][moved[0]].half().float())


def test_missing_data_and_missing_stage(tmp_path, capsys):
    assert train(["continuous", "--data", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err
    assert train(["tokenizer", "--data", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "No images" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="train the tokenizer stage first"):
        train(["correction", "--data", str(tmp_path), "--out", str(tmp_path / "empty")])


def test_init_from_shipped_model_then_fine_tune(photos, tmp_path):
    """``init`` seeds every stage from the shipped weights; a stage then fine-tunes them."""
    import torch

    from hfstream.train.common import Checkpoint

    out = tmp_path / "ft"
    train(["init", "--out", str(out)])
    from hfstream.codec.legacy import load_correction
    from hfstream.codec.model_io import DEFAULT_MODEL_DIR, load_model

    shipped = HybridCodec.from_pretrained()
    correction = load_correction(
        load_model(DEFAULT_MODEL_DIR), shipped.tokenizer, shipped.continuous.config.m
    )
    state = Checkpoint(out / "correction.ckpt").load()
    assert state["step"] == 0 and set(state["states"]) == {"model"}
    for k, v in correction.state_dict().items():
        assert torch.equal(state["states"]["model"][k], v)
    train(["init", "--out", str(out)])  # a second init keeps what is there
    common = ["--data", str(photos), "--out", str(out), "--device", "cpu"]
    train(["correction", *common, "--steps", "1", "--batch", "4"])
    after = Checkpoint(out / "correction.ckpt").load()
    assert after["step"] == 1 and "opt" in after["states"]


def test_training_codes_mix_kinds():
    """Each sample's code map is the truth, a predicted / soft / nearest fill as drawn."""
    import torch

    from hfstream.train.stage_correction import training_codes

    codec = HybridCodec.from_pretrained()
    tok, pred = codec.tokenizer, codec.predictor
    rng = np.random.default_rng(0)
    idx = torch.from_numpy(rng.integers(0, 1024, (3, 16, 16)))
    y_hat = torch.zeros(3, 128, 4, 4)
    truth = tok.codebook.embed(idx)
    q, certainty = training_codes(tok, pred, idx, y_hat, rng=rng, mix=np.array([1.0, 0, 0, 0]))
    assert torch.equal(q, truth)
    assert certainty.shape == (3, 2, 16, 16) and bool((certainty == 1).all())
    q, certainty = training_codes(tok, pred, idx, y_hat, rng=rng, mix=np.array([0, 1.0, 0, 0]))
    received, confidence = certainty[:, 0], certainty[:, 1]
    assert received.mean() < 0.6  # at most half the indices kept, some of them lost
    assert bool((confidence[received == 1] == 1).all())
    guessed = confidence[received == 0]
    assert float(guessed.min()) > 0 and float(guessed.max()) < 1  # the predictor's belief
    # Random indices are not what the predictor guesses: most positions change, and every
    # code vector is still a codebook word (unit length).
    assert (q != truth).any(dim=1).float().mean() > 0.5
    assert torch.allclose(q.norm(dim=1), torch.ones(3, 16, 16), atol=1e-4)
    q, _ = training_codes(tok, pred, idx, y_hat, rng=rng, mix=np.array([0, 0, 1.0, 0]))
    assert (q.norm(dim=1) < 0.999).float().mean() > 0.5  # expected vectors are shorter


def test_average_states_means_floats_and_keeps_counters():
    a = {"w": torch.tensor([0.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([2.0, 4.0]), "n": torch.tensor(5)}
    mean = average_states([a, b])
    assert torch.equal(mean["w"], torch.tensor([1.0, 3.0]))
    assert mean["n"].item() == 5
    with pytest.raises(SystemExit, match="different shapes"):
        average_states([a, {"w": torch.zeros(3), "n": torch.tensor(1)}])
    with pytest.raises(SystemExit, match="other tensors"):
        average_states([a, {"w": torch.zeros(2)}])


def test_pack_unpack_resumes_where_it_stopped(photos, tmp_path):
    """A packed checkpoint restores weights (to float16 precision), optimiser state and
    step; unpack keeps a newer checkpoint unless forced."""
    from hfstream.train.common import Checkpoint
    from hfstream.train.portable import load_portable

    out, packed = tmp_path / "a", tmp_path / "c.safetensors"
    common = ["--data", str(photos), "--device", "cpu", "--crop", "256", "--rungs", "2"]
    train(["continuous", *common, "--out", str(out), "--steps", "2", "--batch", "2"])
    train(["pack", "--out", str(out), "--to", str(packed)])
    before = Checkpoint(out / "continuous.ckpt").load()
    state = load_portable(packed)
    assert state["step"] == 2 and state["args"]["rungs"] == 2
    w = before["states"]["model"]["g_a.0.weight"]
    assert torch.allclose(state["states"]["model"]["g_a.0.weight"], w, atol=1e-3, rtol=1e-3)
    assert set(state["states"]["opt"]["state"]) == set(before["states"]["opt"]["state"])
    fresh = tmp_path / "b"
    train(["unpack", "--out", str(fresh), "--source", str(packed)])
    train(["continuous", *common, "--out", str(fresh), "--steps", "3", "--batch", "2"])
    assert Checkpoint(fresh / "continuous.ckpt").load()["step"] == 3
    train(["unpack", "--out", str(fresh), "--source", str(packed)])  # step 3 > 2: kept
    assert Checkpoint(fresh / "continuous.ckpt").load()["step"] == 3
    train(["unpack", "--out", str(fresh), "--source", str(packed), "--force"])
    assert Checkpoint(fresh / "continuous.ckpt").load()["step"] == 2


def test_unpack_refuses_a_file_that_is_not_a_checkpoint(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(SystemExit, match="not a safetensors file"):
        train(["unpack", "--out", str(tmp_path), "--source", str(bad)])
    with pytest.raises(SystemExit, match="does not exist"):
        train(["unpack", "--out", str(tmp_path), "--source", str(tmp_path / "none")])


def test_a_non_finite_step_is_skipped_and_never_saved(tmp_path):
    """A NaN loss leaves the weights as they were; a checkpoint with a NaN weight is
    refused and the last good one stays."""
    from hfstream.train.common import Checkpoint, optimizer_step

    layer = torch.nn.Linear(3, 2)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    opt = torch.optim.Adam(layer.parameters(), lr=0.1)
    x = torch.ones(4, 3)
    assert not optimizer_step(opt, layer(x).sum() * float("nan"), layer.parameters())
    assert all(torch.equal(v, before[k]) for k, v in layer.state_dict().items())
    assert optimizer_step(opt, layer(x).sum(), layer.parameters())
    ckpt = Checkpoint(tmp_path / "s.ckpt")
    ckpt.save(1, {"model": layer.state_dict(), "opt": opt.state_dict()}, {})
    with torch.no_grad():
        layer.weight[0, 0] = float("nan")
    with pytest.raises(SystemExit, match="no longer finite"):
        ckpt.save(2, {"model": layer.state_dict()}, {})
    assert ckpt.load()["step"] == 1


def test_extend_adds_rungs_below_and_keeps_the_trained_ones(codec, tmp_path):
    dst = tmp_path / "extended"
    assert train(["extend", "--factors", "0.5", "--model-dir", str(dst), "--version", "99"]) == 0
    wider = HybridCodec.from_pretrained(dst)
    assert wider.model_id != codec.model_id
    assert wider.continuous.config.rungs == codec.continuous.config.rungs + 1
    assert wider.continuous.config.default_rung == codec.continuous.config.default_rung + 1
    image = bundled_image()[:256, :512]
    # A trained rung codes the very same strings under its new number.
    old = codec.encode(image, "0", rate=PerPatch((0, 0))).patches
    same = wider.encode(image, "0", rate=PerPatch((1, 1))).patches
    assert [p.continuous for p in old] == [p.continuous for p in same]
    # The new rung is coarser: fewer bytes.
    low = wider.encode(image, "0", rate=PerPatch((0, 0))).patches

    def size(patches) -> int:
        return sum(len(p.continuous[0]) + len(p.continuous[1]) for p in patches)

    assert size(low) < size(old)


def test_extend_refuses_bad_factors(tmp_path):
    with pytest.raises(SystemExit, match="ascend"):
        train(["extend", "--factors", "0.7", "0.5", "--model-dir", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="Cannot read"):
        train(
            [
                "extend",
                "--factors",
                "0.5",
                "--from",
                str(tmp_path),
                "--model-dir",
                str(tmp_path / "y"),
            ]
        )


def test_only_rungs_trains_those_gains_and_nothing_else(photos, tmp_path):
    """``--only-rungs`` moves the chosen rungs' gain rows; every other weight, the other
    rungs' gains included, stays bit-identical."""
    from hfstream.train.common import Checkpoint

    out = tmp_path / "run"
    common = ["--data", str(photos), "--out", str(out), "--device", "cpu", "--crop", "256"]
    train(["continuous", *common, "--steps", "1", "--batch", "2", "--rungs", "3"])
    before = Checkpoint(out / "continuous.ckpt").load()["states"]["model"]
    only = ["--steps", "3", "--batch", "2", "--rungs", "3", "--only-rungs", "0", "--lr", "1e-2"]
    train(["continuous", *common, *only])
    after = Checkpoint(out / "continuous.ckpt").load()["states"]["model"]
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved == {"gain", "inverse_gain"}
    for table in ("gain", "inverse_gain"):
        assert not torch.equal(before[table][0], after[table][0])
        assert torch.equal(before[table][1:], after[table][1:])
    with pytest.raises(ValueError, match="Invalid rung 5"):
        train(["continuous", *common, *only[:-4], "--only-rungs", "5"])


def test_extend_takes_trained_gains_from_a_checkpoint(tmp_path):
    """``extend --gains-from`` puts a run's trained gains on the new rungs, and refuses a
    checkpoint of another ladder."""
    from safetensors.torch import load_file

    from hfstream.train.common import Checkpoint

    scaled, run = tmp_path / "scaled", tmp_path / "run"
    train(["extend", "--factors", "0.5", "--model-dir", str(scaled)])
    train(["init", "--model", str(scaled), "--out", str(run)])
    ckpt = Checkpoint(run / "continuous.ckpt")
    state = ckpt.load()
    state["states"]["model"]["gain"][0] *= 1.25  # what --only-rungs 0 would have learned
    ckpt.save(1, state["states"], state["args"])
    trained = tmp_path / "trained"
    gains = ["--gains-from", str(run / "continuous.ckpt")]
    train(["extend", "--factors", "0.5", "--model-dir", str(trained), *gains])
    a = load_file(str(scaled / "weights.safetensors"))
    b = load_file(str(trained / "weights.safetensors"))
    want = 1.25 * a["continuous.gain"][0].float()
    assert torch.allclose(b["continuous.gain"][0].float(), want, rtol=2e-3)
    assert torch.equal(b["continuous.gain"][1:], a["continuous.gain"][1:])
    # The gain tables alone, as committed, give the same model.
    from safetensors.torch import save_file

    tables = {k: state["states"]["model"][k].contiguous() for k in ("gain", "inverse_gain")}
    save_file(tables, str(tmp_path / "gains.safetensors"))
    alone = tmp_path / "alone"
    train(
        ["extend", "--factors", "0.5", "--model-dir", str(alone)]
        + ["--gains-from", str(tmp_path / "gains.safetensors")]
    )
    assert (alone / "weights.safetensors").read_bytes() == (
        trained / "weights.safetensors"
    ).read_bytes()
    with pytest.raises(SystemExit, match="gain is"):  # two rungs added: another ladder
        train(["extend", "--factors", "0.4", "0.5", "--model-dir", str(tmp_path / "x"), *gains])


def test_a_share_of_crops_comes_from_graphics_made_in_code(photos):
    from hfstream.train.data import PhotoCrops

    plain = PhotoCrops(photos, 256, seed=3)
    assert not plain.graphics
    mixed = PhotoCrops(photos, 256, seed=3, graphics_share=1.0)
    assert len(mixed.graphics) >= 20
    crop = mixed.sample()
    assert crop.shape == (256, 256, 3)
    # Graphics are flat where photos are noisy: far fewer distinct colours per crop.
    colours = len(np.unique(crop.reshape(-1, 3), axis=0))
    assert colours < len(np.unique(plain.sample().reshape(-1, 3), axis=0))
    with pytest.raises(ValueError, match="graphics_share"):
        PhotoCrops(photos, 256, graphics_share=1.5)
