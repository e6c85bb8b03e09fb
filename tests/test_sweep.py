"""A small sweep end to end: reproducible, resumable, locally and on Ray."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from sim.channel import fec_ratio_for
from sim.sweep import Case, run_sweep


@pytest.fixture(scope="module")
def folder(tmp_path_factory, small_image):
    d = tmp_path_factory.mktemp("images")
    Image.fromarray(small_image[:, :256]).save(d / "a.png")
    return d


def _cases(folder, methods=("hfstream", "jpeg-none", "webp-fec"), rates=(0.0, 0.3)):
    # 0.15 bpp: a single 240x256 patch needs more than 0.05 bpp for tier 0 and its parity.
    return [
        Case(str(folder / "a.png"), m, "bernoulli", r, seed, bpp=0.15)
        for m in methods
        for r in rates
        for seed in (0, 1)
    ]


def test_same_seed_same_results_and_resume(folder, tmp_path):
    cases = _cases(folder)
    a = run_sweep(cases, tmp_path / "a", workers=1)
    b = run_sweep(cases, tmp_path / "b", workers=1)
    strip = [{k: v for k, v in r.items()} for r in a]
    assert strip == b
    assert {r["method"] for r in a} == {"hfstream", "jpeg-none", "webp-fec"}
    assert all(r["bytes_sent"] <= r["budget"] for r in a if r["method"] == "hfstream")
    # Resuming runs nothing new and gives the same rows.
    lines = (tmp_path / "a" / "results.jsonl").read_text().splitlines()
    again = run_sweep(cases, tmp_path / "a", workers=1)
    assert again == a and len((tmp_path / "a" / "results.jsonl").read_text().splitlines()) == len(
        lines
    )
    assert (tmp_path / "a" / "summary.csv").exists()
    assert "| hfstream | bernoulli |" in (tmp_path / "a" / "summary.md").read_text()
    assert (tmp_path / "a" / "quality_vs_loss_bernoulli.png").exists()
    assert all(json.loads(line)["key"] for line in lines)


def test_hfstream_degrades_gracefully_where_unprotected_jpeg_fails(folder, tmp_path):
    rows = run_sweep(_cases(folder, ("hfstream", "jpeg-none"), (0.3,)), tmp_path / "s", workers=1)
    hf = [r for r in rows if r["method"] == "hfstream"]
    assert all(r["decodable"] for r in hf)


def test_fec_ratio_is_tuned_to_the_loss():
    assert fec_ratio_for(4, 0.0) == 0.0
    assert fec_ratio_for(4, 0.2) > fec_ratio_for(4, 0.05)


@pytest.mark.slow  # starts a local Ray cluster
def test_small_sweep_on_ray_local(folder, tmp_path):
    pytest.importorskip("ray")
    rows = run_sweep(_cases(folder, ("hfstream",), (0.1,)), tmp_path / "ray", executor="ray")
    local = run_sweep(_cases(folder, ("hfstream",), (0.1,)), tmp_path / "local", workers=1)
    assert [r["psnr"] for r in rows] == [r["psnr"] for r in local]
    assert np.isfinite([r["psnr"] for r in rows]).all()


def test_planned_packets_fit_the_budget_and_protect_tier0_only_under_loss(codec, small_image):
    from hfstream.protocol.wire import TAG_SIZE, PacketType, parse_header
    from sim.channel import hfstream_packets

    def wire(packets):  # bytes on the wire: each packet is sealed with its tag
        return sum(len(p) + TAG_SIZE for p in packets)

    def kinds(packets):
        return [parse_header(p)[0].type for p in packets]

    top = str(codec.continuous.rungs - 1)
    clean, detail = hfstream_packets(codec, small_image, 100_000, "hybrid", fec=True)
    # Everything at the top rung (coded FINE: the full size cannot spend the budget).
    assert re.search(rf"rungs ({top})+ parity 0", detail), detail
    assert PacketType.PARITY not in kinds(clean)  # no loss: parity would only cost
    roomy, detail = hfstream_packets(codec, small_image, 100_000, "hybrid", True, loss=0.3)
    assert re.search(rf"rungs ({top})+ ", detail) and PacketType.PARITY in kinds(roomy)
    # Every patch at rung 0 without parity: what the cheapest tier 0 costs.
    cheapest, detail = hfstream_packets(codec, small_image, 1, "continuous", fec=False)
    assert detail.endswith(" over budget")
    tier0 = wire(cheapest)
    tight, detail = hfstream_packets(codec, small_image, tier0 + 10, "hybrid", True, loss=0.3)
    assert detail.startswith("0 ") and "parity 0" in detail, detail
    assert wire(tight) <= tier0 + 10
    assert PacketType.PARITY not in kinds(tight)
    nofec, detail = hfstream_packets(codec, small_image, 100_000, "hybrid", False, loss=0.3)
    assert PacketType.PARITY not in kinds(nofec) and wire(nofec) <= 100_000
    over, detail = hfstream_packets(codec, small_image, tier0 // 2, "hybrid", fec=True)
    assert detail.endswith(" over budget")


def test_warmup_loss_estimates_the_rate_and_is_deterministic():
    from sim.sweep import Case, warmup_loss

    case = Case("photo.png", "hfstream", "bernoulli", 0.3, seed=0)
    assert warmup_loss(case) == warmup_loss(case)
    rate, run = warmup_loss(case)
    assert abs(rate - 0.3) <= 0.15 and run is not None and run < 2.5  # about 1 / 0.7
    bursty = warmup_loss(Case("photo.png", "hfstream", "gilbert", 0.3, seed=0, burst=6.0))
    assert bursty[1] is not None and bursty[1] > run
    assert warmup_loss(Case("photo.png", "hfstream", "bernoulli", 0.0, seed=0)) == (0.0, None)


def test_loss_realization_depends_on_seed_and_subject_not_method():
    from sim.sweep import make_loss

    def fates(seed, subject):
        loss = make_loss("bernoulli", 0.3, seed, subject=subject)
        return [loss.lost() for _ in range(200)]

    assert fates(0, "a.png") == fates(0, "a.png")
    assert fates(0, "a.png") != fates(0, "b.png")
    assert fates(0, "a.png") != fates(1, "a.png")
    with pytest.raises(ValueError, match="Invalid loss model"):
        make_loss("sometimes", 0.3, 0)


def test_the_key_of_a_learned_case_names_the_model(tmp_path):
    """A resumed sweep reruns the learned methods, and only them, after the model changed."""
    from hfstream.codec.model_io import DEFAULT_MODEL_DIR

    config = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(config))
    methods = ("vq", "jpeg-none")
    cases = [Case("a.png", m, "bernoulli", 0.1, 0, model=str(tmp_path)) for m in methods]
    before = [c.key for c in cases]
    config["version"] += 1
    (tmp_path / "config.json").write_text(json.dumps(config))
    after = [c.key for c in cases]
    assert before[0] != after[0] and before[1] == after[1]


def test_rows_kept_from_an_earlier_summary_join_the_new_one(tmp_path):
    from sim.sweep import read_summary, write_summary

    kept = {
        "method": "webp-fec",
        "loss_model": "bernoulli",
        "loss_rate": 0.2,
        "cases": 32,
        "psnr": 25.8,
        "ms_ssim": 0.83,
        "haarpsi": 0.54,
        "decodable": 0.97,
        "bpp_sent": 0.048,
    }
    write_summary([], tmp_path, [kept])
    (back,) = read_summary(tmp_path / "summary.csv")
    assert back == kept
    assert "webp-fec" in (tmp_path / "summary.md").read_text()


def test_arq_delivery_resends_lost_tier0_within_the_budget():
    from hfstream.protocol.wire import TAG_SIZE
    from sim.channel import arq_delivery

    tiered = [(0, b"a" * 100), (0, b"b" * 100), (1, b"c" * 100), (2, b"d" * 100)]
    size = 100 + TAG_SIZE

    def channel(fates):
        it = iter(fates)
        return lambda: next(it)

    # a is lost twice and arrives on its third send; then tier 2 goes out.
    arrived, sent_bytes, sent = arq_delivery(
        tiered, channel([True, False, False, True, False, False]), 10 * size, 4
    )
    assert arrived == [0, 1, 2, 3] and sent == 6 and sent_bytes == 6 * size
    # At most `rounds` sends of a packet: a is given up after two.
    arrived, _, sent = arq_delivery(tiered, channel([True, False, False, True, False]), 10**4, 2)
    assert arrived == [1, 2, 3] and sent == 5
    # The budget stops resends and tier 2; tiers 0 and 1 go out as planned.
    arrived, sent_bytes, sent = arq_delivery(tiered, channel([True] * 3), 3 * size, 4)
    assert arrived == [] and sent == 3 and sent_bytes == 3 * size


def test_a_resend_credit_lets_lost_tier0_go_again_over_the_budget_but_not_tier2():
    from hfstream.protocol.wire import TAG_SIZE
    from sim.channel import arq_outcome

    tiered = [(0, b"a" * 100), (1, b"c" * 100), (2, b"d" * 100)]
    size = 100 + TAG_SIZE
    fates = iter([True, False, False, False])
    out = arq_outcome(tiered, lambda: next(fates), 2 * size, 3, resend_credit=size)
    # a is resent with the credit; tier 2 stays within the budget, which is spent.
    assert out.arrived == [0, 1] and out.packets_sent == 3 and out.bytes_sent == 3 * size
    fates = iter([True, False, False])
    out = arq_outcome(tiered, lambda: next(fates), 2 * size, 3, resend_credit=size - 1)
    assert out.arrived == [1] and out.packets_sent == 2


def test_arq_resends_only_what_parity_cannot_rebuild(codec, small_image):
    from hfstream.protocol.wire import PacketType, parse_header
    from sim.channel import arq_delivery, hfstream_tiered_packets, tier0_blocks

    tiered, _ = hfstream_tiered_packets(codec, small_image, 100_000, "hybrid", True, loss=0.3)
    kinds = [parse_header(p)[0].type for _, p in tiered]
    data = [i for i, t in enumerate(kinds) if t == PacketType.TIER0]
    parity = [i for i, t in enumerate(kinds) if t == PacketType.PARITY]
    assert data and parity
    assert tier0_blocks(tiered) == [(data, parity)]
    first_pass = [i for i, (tier, _) in enumerate(tiered) if tier < 2]

    def channel(lost_positions):
        sent = iter(range(10**6))
        return lambda: next(sent) in lost_positions

    blocks = tier0_blocks(tiered)
    # The first data packet is lost and parity rebuilds it: nothing is sent again.
    _, _, sent = arq_delivery(tiered, channel({0}), 10**6, 4, blocks)
    assert sent == len(tiered)
    # Every tier-0 packet is lost: the data packets (not the parity) are sent again.
    gone = {first_pass.index(i) for i in data + parity}
    arrived, _, sent = arq_delivery(tiered, channel(gone), 10**6, 4, blocks)
    assert sent == len(tiered) + len(data) and set(data) <= set(arrived)
