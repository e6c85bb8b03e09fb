"""Encode-time refinement of the continuous latent: better pictures for the bytes, ordinary
strings, reproducible encodes, checked arguments."""

from __future__ import annotations

import numpy as np
import pytest

from hfstream.codec.continuous import REFERENCE_LMBDA
from hfstream.codec.rates import Fixed
from hfstream.codec.refinement import DEFAULT_REFINE_STEPS, check_refine_steps, rung_lmbdas
from hfstream.eval.metrics import psnr
from hfstream.files import container
from hfstream.planning import encode_within
from tests.conftest import with_rungs

STEPS = 20


def _cost(codec, image, enc) -> tuple[float, int]:
    """(PSNR of the continuous picture, bytes of the continuous strings)."""
    picture = codec.decode(enc.without_indices(), mode="continuous")
    return psnr(image, picture), enc.continuous_bytes


@pytest.fixture(scope="module")
def encodes(codec, small_image):
    plain = codec.encode(small_image, "1_4", rate=Fixed(1))
    refined = codec.encode(small_image, "1_4", rate=Fixed(1), refine_steps=STEPS)
    return plain, refined


def test_refinement_buys_quality_for_about_the_same_bytes(codec, small_image, encodes):
    plain, refined = encodes
    q0, b0 = _cost(codec, small_image, plain)
    q1, b1 = _cost(codec, small_image, refined)
    assert q1 > q0 + 0.1
    assert b1 <= 1.1 * b0


def test_refined_strings_are_ordinary_strings(codec, small_image, encodes):
    """The receiver needs nothing new: an .hfs file of the refined encode reads back to
    the same strings and decodes to the picture ``decode`` gives."""
    _, refined = encodes
    back = container.read(container.write(refined, codec), codec)
    assert [p.continuous for p in back.patches] == [p.continuous for p in refined.patches]
    np.testing.assert_array_equal(
        codec.decode(back.kept_only(), mode="continuous"),
        codec.decode(refined.kept_only(), mode="continuous"),
    )


def test_refinement_changes_only_the_continuous_strings(encodes):
    plain, refined = encodes
    assert [p.continuous for p in plain.patches] != [p.continuous for p in refined.patches]
    for a, b in zip(plain.patches, refined.patches, strict=True):
        np.testing.assert_array_equal(a.indices, b.indices)
        assert (a.rung, a.schedule) == (b.rung, b.schedule)


def test_refined_encodes_are_reproducible(codec, small_image, encodes):
    again = codec.encode(small_image, "1_4", rate=Fixed(1), refine_steps=STEPS)
    assert [p.continuous for p in again.patches] == [p.continuous for p in encodes[1].patches]


def test_no_refinement_is_the_plain_encode(codec, small_image, encodes):
    zero = codec.encode(small_image, "1_4", rate=Fixed(1), refine_steps=0)
    assert [p.continuous for p in zero.patches] == [p.continuous for p in encodes[0].patches]


@pytest.mark.parametrize("steps", [-1, 1001, 2.5, "10"])
def test_bad_step_counts_are_refused(codec, small_image, steps):
    with pytest.raises(ValueError, match="refine steps"):
        check_refine_steps(steps)
    with pytest.raises(ValueError, match="refine steps"):
        codec.encode(small_image, "1_4", refine_steps=steps)


def test_every_rung_stands_for_a_higher_lambda(codec):
    lmbdas = rung_lmbdas(codec.continuous)
    assert lmbdas.shape == (codec.continuous.rungs,)
    assert bool((lmbdas[1:] > lmbdas[:-1]).all())
    assert rung_lmbdas(with_rungs(codec.continuous, 1)).tolist() == pytest.approx([REFERENCE_LMBDA])


def test_a_planned_encode_with_refinement_keeps_its_budget(codec, small_image):
    budget = 0.05 * small_image.shape[0] * small_image.shape[1] / 8
    planned = encode_within(codec, small_image, budget, refine_steps=5)
    assert planned.encoded.continuous_bytes + planned.plan.tier1_bytes <= budget
    assert [p.rung for p in planned.encoded.patches] == list(planned.plan.rungs)


def test_defaults_agree():
    """The CLI and the sweep name the default without importing torch."""
    from hfstream.apps.args import REFINE_STEPS as cli_default
    from sim.sweep import REFINE_STEPS as sweep_default

    assert cli_default == sweep_default == DEFAULT_REFINE_STEPS


def test_refinement_reports_its_progress(codec, small_image):
    done: list[int] = []
    codec.encode(small_image, "1_4", rate=Fixed(1), refine_steps=3, refine_progress=done.append)
    assert done == [2, 2, 2]  # one call per step, with the frame's two patches
